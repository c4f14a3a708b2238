"""What checking a spec produces, and the state the statement rules share while it runs.

`check` (dsl/check.py) drives the walk over a spec's statements and `statements.py` holds one rule
per statement kind; both import this module and neither imports the other back, so the rules can
be read, and tested, without the driver. The result types (`CheckedSpec`, `FactorPlan`, `Located`)
are re-exported from `gmhf.dsl.check`, where callers import them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gmhf.dsl import ast
from gmhf.dsl.errors import Diagnostic, did_you_mean
from gmhf.dsl.expressions import ExprContext, constant
from gmhf.dsl.intervals import Interval

if TYPE_CHECKING:
    from gmhf.core.factors import Factor, FactorSpace
    from gmhf.core.registry import Registry

__all__ = ["CheckedSpec", "Checker", "FactorPlan", "Located", "Mode"]

Mode = Literal["source", "invariant", "interval", "levels", "offset", "scale", "prior"]


@dataclass(frozen=True, eq=False)  # identity: two equal statements in a file are still two
class Located:
    """A statement and the file it came from (specs may `use` others)."""

    statement: ast.Statement
    path: str

    @property
    def where(self) -> str:
        """`path:line` of the statement."""
        span = self.statement.span
        return f"{self.path}:{span.line if span else 1}"


@dataclass
class FactorPlan:
    """The expert's belief about one factor, before torch."""

    factor: Factor
    mode: Mode = "source"
    #: Distribution name and parameters; for `choice`, the weights in level order.
    dist: tuple[str, tuple[float, ...]] = ("", ())
    #: Offset or scale applied to the source distribution (`shift … by`).
    offset: float = 0.0
    scale: float = 1.0
    low: float = -math.inf
    high: float = math.inf
    #: Allowed level codes of a categorical factor (or allowed integers), when restricted.
    levels: tuple[float, ...] | None = None
    #: Flagged by `shift` or `prior`: the steerer refines it.
    flagged: bool = False
    invariant: bool = False
    touched_by: list[Located] = field(default_factory=list)

    @property
    def support(self) -> Interval:
        """The interval the believed distribution lives on."""
        return (self.low, self.high)


@dataclass
class CheckedSpec:
    """A spec that passed every check: what `compile` turns into constraint modules."""

    domain: str
    space: FactorSpace
    factors: dict[str, FactorPlan]
    statements: list[Located]
    requires: list[Located]
    truncating: list[Located]
    prefers: list[Located]
    expects: list[Located]
    custom: list[Located]
    trust: float = 1.0
    sources: dict[str, str] = field(default_factory=dict)
    #: Likely mistakes that do not stop the spec (severity "warning"); `gmhf check` prints them.
    warnings: list[Diagnostic] = field(default_factory=list)


class Checker:
    """The findings of one `check` so far, and the lookups every statement rule needs.

    Rules report through `error` and `conflict` instead of raising, so one run lists every mistake
    in a file and the files it `use`s.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.diagnostics: list[Diagnostic] = []
        self.sources: dict[str, str] = {}

    @property
    def errors(self) -> bool:
        """Whether any finding so far is an error (notes and warnings are not)."""
        return any(d.severity == "error" for d in self.diagnostics)

    def error(self, located: Located | str, node: Any, message: str, hint: str | None = None) -> None:
        """Report `message` at `node` of `located` (or of the file `located` names)."""
        path = located if isinstance(located, str) else located.path
        keyword = getattr(located.statement, "keyword", None) if isinstance(located, Located) else None
        self.diagnostics.append(Diagnostic.at(path, getattr(node, "span", None), message, hint=hint,
                                              statement=keyword))

    def warn(self, located: Located, node: Any, message: str, hint: str | None = None) -> None:
        """Report a likely mistake at `node` that does not stop the spec."""
        self.diagnostics.append(Diagnostic.at(located.path, getattr(node, "span", None), message, hint=hint,
                                              severity="warning", statement=located.statement.keyword))

    def conflict(self, later: Located, node: Any, message: str, earlier: Located, note: str) -> None:
        """Report a clash at `later`, with a note pointing at the `earlier` statement it clashes with."""
        self.error(later, node, message)
        self.diagnostics.append(Diagnostic.at(earlier.path, earlier.statement.span, note, severity="note"))

    def factor(self, item: Located, name: ast.Name, space: FactorSpace) -> Factor | None:
        """The factor `name` refers to, or None after reporting it unknown (with a suggestion)."""
        if name.id in space:
            return space[name.id]
        extra = " (an observable; only `expect` may use it)" if space.observable(name.id) else ""
        self.error(item, name, f"unknown factor `{name.id}`{extra}", did_you_mean(name.id, space.names))
        return None

    def constant(self, item: Located, expr: ast.Expr, space: FactorSpace) -> float | None:
        """Evaluate a bound or parameter; report a diagnostic for anything but a number."""
        context = ExprContext(space, self.registry, item.path, "constant")
        value = constant(expr, context)
        self.diagnostics.extend(context.diagnostics)
        return value
