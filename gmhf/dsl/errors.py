"""Spec diagnostics: `path:line:col: error: message`, the source line, a caret, and a hint.

A `Diagnostic` is one finding; a `SpecError` carries one or more of them (the first one's location is
also on the exception, as attributes). Messages are lower case without a final period, like a
compiler's; `hint` holds the "did you mean" or the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gmhf.dsl.ast import Span
from gmhf.errors import GmhfError

__all__ = ["Diagnostic", "SpecError", "by_position", "did_you_mean", "render"]


class Diagnostic(BaseModel):
    """One finding in a spec file."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    message: str
    #: "warning": a likely mistake that does not stop the spec (`CheckedSpec.warnings`).
    severity: Literal["error", "warning", "note"] = "error"
    hint: str | None = None
    #: The statement keyword the finding is about, when there is one.
    statement: str | None = None

    @classmethod
    def at(
        cls, path: str, span: Span | None, message: str, *, hint: str | None = None,
        severity: Literal["error", "warning", "note"] = "error", statement: str | None = None,
    ) -> Diagnostic:
        """Build a diagnostic at a node's span (line 1, column 1 when the node has none)."""
        if span is None:
            span = Span(line=1, column=1, end_line=1, end_column=2)
        return cls(
            path=path, line=span.line, column=span.column, end_line=span.end_line,
            end_column=span.end_column, message=message, hint=hint, severity=severity, statement=statement,
        )

    def render(self, source: str | None) -> str:
        """Format as the compiler-style block: location line, source line, caret, hint."""
        out = [f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message}"]
        lines = source.splitlines() if source is not None else []
        if 1 <= self.line <= len(lines):
            text = lines[self.line - 1].expandtabs(1)
            width = 1
            if self.end_line == self.line and self.end_column > self.column:
                width = self.end_column - self.column
            width = max(1, min(width, len(text) - self.column + 1))
            out.append(f"  {text}")
            out.append("  " + " " * (self.column - 1) + "^" + "~" * (width - 1))
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


class SpecError(GmhfError):
    """A spec has mistakes. `diagnostics` lists them all; `str()` renders them with source lines.

    The first error's location is also available as `path`, `line`, `column`, `end` and `hint`.
    """

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> None:
        if not diagnostics:
            raise ValueError("`diagnostics` must hold at least one Diagnostic.")
        self.diagnostics = tuple(diagnostics)
        self.sources = dict(sources or {})
        first = next((d for d in self.diagnostics if d.severity == "error"), self.diagnostics[0])
        self.path = first.path
        self.line = first.line
        self.column = first.column
        self.end = (first.end_line, first.end_column)
        self.hint = first.hint
        super().__init__(render(self.diagnostics, self.sources))

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """Only the diagnostics of severity `error`."""
        return tuple(d for d in self.diagnostics if d.severity == "error")


def render(diagnostics: Iterable[Diagnostic], sources: dict[str, str]) -> str:
    """Render diagnostics in order, each with its own file's source line."""
    return "\n".join(d.render(sources.get(d.path)) for d in diagnostics)


def by_position(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Findings by file (in order of first mention), line and column; each note stays after its finding."""
    groups: list[list[Diagnostic]] = []
    for d in diagnostics:
        if d.severity == "note" and groups:
            groups[-1].append(d)
        else:
            groups.append([d])
    files = {g[0].path: None for g in groups}
    order = {path: i for i, path in enumerate(files)}
    groups.sort(key=lambda g: (order[g[0].path], g[0].line, g[0].column))
    return [d for g in groups for d in g]


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean" hint from the closest registered names, or a list of them when none is close."""
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    if pool and len(pool) <= 12:
        return "expected one of " + ", ".join(f"`{c}`" for c in pool)
    return None
