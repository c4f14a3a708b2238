"""Writing files so that a crash never leaves a half-written one: the one place gmhf does it.

(And `strict`, which makes a document JSON can hold, for the files and the `--json` outputs alike.)

At the bottom of the layers: imports only the standard library, so the CLI, the run directory and
the web app can all use it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import stat
import tempfile
from typing import Any


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Replace `path` with `data` (text is written as UTF-8) so that it never holds a partial file.

    The data goes to a temporary file in the same folder, is flushed to disk, renamed over `path`
    (atomic on POSIX and Windows), and the folder is synced so the rename itself survives a power
    cut. An existing file keeps its permission bits (and its owner and group where
    the caller may set them); a new one gets the usual `0o666 & ~umask`.
    A symbolic link is written through (its target is replaced), as editors do.

    Args:
        path: The file to create or replace; its folder must exist.
        data: The whole new content.

    Raises:
        OSError: The folder is missing or not writable, or the disk is full; `path` is unchanged.
    """
    target = os.path.realpath(path)
    folder, name = os.path.split(target)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        before: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        before = None
    mode = stat.S_IMODE(before.st_mode) if before is not None else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # mkstemp made it 0o600
        if before is not None and hasattr(os, "chown") and (before.st_uid, before.st_gid) != _owner(tmp):
            with contextlib.suppress(PermissionError):  # only root may give a file away; keep what we can
                os.chown(tmp, before.st_uid, before.st_gid)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _owner(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_uid, info.st_gid


@functools.cache
def _umask() -> int:
    # os.umask can only be read by setting it; do that once, not on every write.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: str) -> None:
    # Makes the rename durable; folders cannot be opened for syncing on Windows, where it is skipped.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def strict(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (containers copied, the rest as is): JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict(item) for item in value]
    return value
