"""Reading a spec file's text: UTF-8 only, a leading byte-order mark dropped.

A file that is not UTF-8 (a Latin-1 comment, a binary file) is a mistake in the input, reported as
a `SpecError` at the first bad byte, not an internal error.
"""

from __future__ import annotations

import os
from pathlib import Path

from gmhf.dsl.ast import Span
from gmhf.dsl.errors import Diagnostic, SpecError

__all__ = ["MAX_USE_DEPTH", "decode_spec", "not_a_spec_file", "read_spec_file"]

#: The UTF-8 byte-order mark some Windows editors put at the start of a file.
BOM = "\ufeff"
#: Files a chain of `use`s may nest (a deeper chain is a spec error, not a RecursionError).
MAX_USE_DEPTH = 64


def not_a_spec_file(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be read as a spec file (None when it is a regular file)."""
    file = Path(path)
    if file.is_file():
        return None
    if file.is_dir():
        return "a directory, not a spec file"
    if file.exists():
        return "not a regular file (a pipe, socket or device)"
    return "no such file"


def read_spec_file(path: str | os.PathLike[str], *, shown: str | None = None) -> str:
    """The text of the spec file `path` (`shown` is the name diagnostics use; default: `path`).

    Raises:
        SpecError: the file is not UTF-8 text.
        OSError: it cannot be read.
    """
    return decode_spec(Path(path).read_bytes(), shown=str(path) if shown is None else shown)


def decode_spec(data: bytes, *, shown: str) -> str:
    """`data` decoded as UTF-8 without a leading BOM; a `SpecError` at the first byte that is not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[:error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        span = Span(line=line, column=column, end_line=line, end_column=column + 1)
        raise SpecError([Diagnostic.at(shown, span, f"not UTF-8 text (byte 0x{data[error.start]:02X} at line {line})",
                                       hint="save the file as UTF-8")]) from None
    return text.removeprefix(BOM)
