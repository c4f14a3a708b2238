"""gmhf.console.progress_wanted: bars only for a person at a terminal, never in CI."""

from __future__ import annotations

import io
import sys

import pytest

from gmhf.console import progress_wanted


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_wants_progress_unless_ci_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TTY gets bars; `CI` (set by every CI service) turns them off; an empty `CI` counts as unset."""
    monkeypatch.delenv("CI", raising=False)
    assert progress_wanted(_Terminal())
    monkeypatch.setenv("CI", "")
    assert progress_wanted(_Terminal())
    monkeypatch.setenv("CI", "true")
    assert not progress_wanted(_Terminal())


def test_pipes_closed_streams_and_stand_ins_want_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a TTY, closed, or without isatty at all: no bar, and no exception."""
    monkeypatch.delenv("CI", raising=False)
    assert not progress_wanted(io.StringIO())
    closed = io.StringIO()
    closed.close()  # isatty now raises ValueError
    assert not progress_wanted(closed)
    assert not progress_wanted(object())  # type: ignore[arg-type]


def test_the_default_is_stderr_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default stream is looked up on each call, so a replaced sys.stderr is the one asked."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert progress_wanted()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress_wanted()
