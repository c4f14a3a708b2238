"""Golden diagnostics: each file in tests/specs/invalid/ against its .expected rendering.

Set GMHF_UPDATE_GOLDEN=1 to rewrite the .expected files (then read the diff before committing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gmhf
from gmhf.api import check_text
from gmhf.dsl.errors import SpecError

INVALID = Path(__file__).parent / "specs" / "invalid"
CASES = sorted(INVALID.glob("*.guide"))
#: Errors only a compiled Guidance can find (the 10,000-draw probe), not the torch-free checker.
LOAD_ONLY = {"require_probe"}


def _diagnose(path: Path) -> SpecError:
    relative = os.path.relpath(path, Path.cwd())
    with pytest.raises(SpecError) as caught:
        gmhf.load(relative)
    return caught.value


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_diagnostics(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each invalid spec fails with exactly the recorded messages, lines, columns and hints."""
    monkeypatch.chdir(path.parent)
    error = _diagnose(path)
    rendered = str(error).replace(str(path.parent) + os.sep, "") + "\n"
    expected = path.with_suffix(".expected")
    if os.environ.get("GMHF_UPDATE_GOLDEN"):
        expected.write_text(rendered, encoding="utf-8")
    assert rendered == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", [p for p in CASES if p.stem not in LOAD_ONLY], ids=lambda p: p.stem)
def test_check_finds_the_same_without_compiling(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The torch-free checker reports the same diagnostics as `load` for every static mistake."""
    monkeypatch.chdir(path.parent)
    with pytest.raises(SpecError) as caught:
        check_text(path.read_text(encoding="utf-8"), path=path.name)
    assert [d.model_dump() for d in caught.value.diagnostics] == [d.model_dump() for d in _diagnose(path).diagnostics]


def test_every_diagnostic_lies_inside_its_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Line and column of every diagnostic point at a real position of the file they name."""
    monkeypatch.chdir(INVALID)
    for path in CASES:
        error = _diagnose(path)
        for d in error.diagnostics:
            lines = (INVALID / d.path).read_text(encoding="utf-8").splitlines()
            assert 1 <= d.line <= len(lines), (path.name, d)
            assert 1 <= d.column <= len(lines[d.line - 1]) + 1, (path.name, d)


def test_spec_error_carries_the_first_location() -> None:
    """SpecError exposes path, line, column, end and hint of its first error as attributes."""
    with pytest.raises(SpecError) as caught:
        gmhf.load("domain sinusoid\nshift amplitud in 1 .. 2")
    error = caught.value
    assert (error.path, error.line, error.column, error.end) == ("<string>", 2, 7, (2, 15))
    assert error.hint == "did you mean `amplitude`?"


def test_several_errors_are_reported_in_file_order() -> None:
    """Recovery at the next statement: all mistakes of a file, sorted by position."""
    with pytest.raises(SpecError) as caught:
        check_text((INVALID / "several_errors.guide").read_text(encoding="utf-8"), path="s.guide")
    positions = [(d.line, d.column) for d in caught.value.errors]
    assert positions == sorted(positions) and len(positions) >= 5
