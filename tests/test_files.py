"""gmhf.files.write_atomic: whole files or none, modes kept, nothing left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gmhf.files import write_atomic


def test_writes_text_as_utf8_and_bytes_as_is(tmp_path: Path) -> None:
    """Text becomes UTF-8; bytes are written unchanged; an existing file is replaced."""
    path = tmp_path / "a.txt"
    write_atomic(path, "δ = 0.4\n")
    assert path.read_bytes() == "δ = 0.4\n".encode()
    write_atomic(str(path), b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["a.txt"]  # no temporary file left behind


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_keeps_the_mode_of_an_existing_file_and_gives_new_ones_the_umask(tmp_path: Path) -> None:
    """A replaced file keeps its permission bits (mkstemp's 0o600 never leaks); a new one follows the umask."""
    old = tmp_path / "old.guide"
    old.write_text("x")
    old.chmod(0o640)
    write_atomic(old, "y")
    assert stat.S_IMODE(old.stat().st_mode) == 0o640
    mask = os.umask(0o022)
    os.umask(mask)
    new = tmp_path / "new.guide"
    write_atomic(new, "z")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~mask


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_writes_through_a_symbolic_link(tmp_path: Path) -> None:
    """A linked spec stays linked: the link's target is what gets replaced."""
    real = tmp_path / "real.guide"
    real.write_text("old")
    link = tmp_path / "link.guide"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_a_failed_write_leaves_the_file_and_the_folder_as_they_were(tmp_path: Path) -> None:
    """If writing fails (here: text that cannot be encoded), the old content stays and no temp file remains."""
    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(path, 42)  # type: ignore[arg-type]
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["keep.txt"]


def test_a_missing_folder_raises(tmp_path: Path) -> None:
    """The folder must exist: write_atomic does not create it."""
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "nope" / "x.txt", "x")
