"""Constraint modules: one per statement, compiled from the checked plan.

Each module answers, for a batch θ `[n, k]`, whether it `accepts` each environment and what it adds
to the log density (`-inf` where a hard constraint fails, the weight where a soft one holds). The
factor-level statements (`invariant`, `shift`, `prior`) assert a support; the density they imply
lives in the Guidance's per-factor marginals, which `compile` builds from the same plan. Modules
hold tensors as buffers and never parameters: a spec is a belief; learning belongs to the steerer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import torch
from torch import Tensor

from gmhf.core.expression_compiler import compile_condition
from gmhf.dsl import ast
from gmhf.dsl.expressions import ExprContext
from gmhf.dsl.intervals import Truth

if TYPE_CHECKING:
    from gmhf.core.factors import FactorSpace
    from gmhf.core.registry import Registry
    from gmhf.dsl.check import CheckedSpec, FactorPlan, Located

__all__ = ["CompileContext", "Constraint", "Expect", "Invariant", "Prefer", "Prior", "Require", "Role", "Shift", "Truncate"]

#: What a constraint does in sampling: `hard` rejects (by `accepts`), `soft` reweights (by
#: `log_weight`), `data` is checked on generated data (by `holds`), `support` is enforced by the
#: factor marginals (a factor-level statement, or a `require` that truncates one factor).
Role = Literal["hard", "soft", "data", "support"]


@dataclass
class CompileContext:
    """What `Constraint.from_statement` may use: the plan, the factor space, the registry."""

    spec: CheckedSpec
    registry: Registry

    @property
    def space(self) -> FactorSpace:
        """The domain's factor space."""
        return self.spec.space

    def column(self, name: str) -> int:
        """Column of factor `name` in θ."""
        return self.spec.space.index(name)

    def plan(self, name: str) -> FactorPlan:
        """The checked belief about factor `name`."""
        return self.spec.factors[name]

    def condition(self, expr: ast.Expr) -> Callable[[dict[str, Tensor]], Tensor]:
        """Compile a checked condition to a batched function of named columns."""
        return compile_condition(expr, self.spec.space, self.registry)

    def certain(self, expr: ast.Expr) -> bool | None:
        """True (False) when interval arithmetic proves `expr` holds for every (no) θ in the supports."""
        supports = {name: plan.support for name, plan in self.spec.factors.items()}
        truth = ExprContext(self.spec.space, self.registry, "", "prefer", supports=supports).truth(expr)
        return None if truth is Truth.MAYBE else truth is Truth.TRUE


class Constraint(torch.nn.Module):
    """Base class for statement kinds: a batched predicate and log-weight over θ `[n, k]`.

    Subclasses set `keyword` (and `syntax` for a new keyword) and `role`, implement
    `from_statement`, and override `accepts` (hard constraints) or `log_weight` (soft ones). The
    sampler and `explain` go by `role` alone. Batched methods never branch in Python on tensor
    values, so `torch.func.vmap` and `torch.compile` keep working.
    """

    keyword: ClassVar[str]
    syntax: ClassVar[str | None] = None
    #: What the constraint does in sampling (see `Role`).
    role: ClassVar[Role] = "hard"
    #: Kept for plugins written before `role`: `hard = False` on a class means `role = "soft"`.
    hard: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "role" not in cls.__dict__ and "hard" in cls.__dict__:
            cls.role = "hard" if cls.__dict__["hard"] else "soft"
        if cls.role not in get_args(Role):
            raise TypeError(f"`role` of {cls.__name__} must be one of {', '.join(get_args(Role))}, got {cls.role!r}.")
        cls.hard = cls.role != "soft"

    def __init__(self, *, where: str = "", factors: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.where = where
        self.factors = factors

    @classmethod
    def from_statement(cls, located: Located, context: CompileContext) -> Constraint:
        """Build the module for one checked statement."""
        raise TypeError(f"{cls.__name__} does not implement `from_statement`.")

    @classmethod
    def check(cls, stmt: ast.CustomStatement, space: FactorSpace) -> list[tuple[str, Any]]:
        """Torch-free checks of a plugin statement: (message, node) pairs; empty when fine."""
        return []

    def accepts(self, theta: Tensor) -> Tensor:
        """Boolean `[n]`: True where θ satisfies the constraint."""
        return torch.ones(theta.shape[0], dtype=torch.bool)

    def log_weight(self, theta: Tensor) -> Tensor:
        """Unnormalised log-weight `[n]` a soft constraint adds where θ is accepted."""
        return torch.zeros(theta.shape[0], dtype=theta.dtype)

    def max_log_weight(self) -> float:
        """An upper bound of `log_weight`: soft constraints are sampled exactly by accepting with
        probability exp(log_weight − bound), so a soft kind must override this."""
        return 0.0

    def log_prob(self, theta: Tensor) -> Tensor:
        """`log_weight` where accepted, `-inf` elsewhere."""
        return self.log_weight(theta).masked_fill(~self.accepts(theta), -math.inf)

    def extra_repr(self) -> str:
        return f"{', '.join(self.factors)}{' at ' + self.where if self.where else ''}"


def _named(theta: Tensor, space: FactorSpace) -> dict[str, Tensor]:
    return {name: theta[:, i] for i, name in enumerate(space.names)}


def _columns(theta: Tensor, lookup: tuple[tuple[str, int], ...]) -> dict[str, Tensor]:
    """Only the columns a condition reads (it may read 2 of 200 factors)."""
    return {name: theta[:, i] for name, i in lookup}


class _Support(Constraint):
    """A factor-level statement: accepts θ whose factor lies in the support the plan gives it."""

    role = "support"
    bounds: Tensor
    levels: Tensor

    def __init__(self, factor: str, column: int, low: float, high: float, levels: tuple[float, ...] | None,
                 *, where: str = "") -> None:
        super().__init__(where=where, factors=(factor,))
        self.column = column
        self.register_buffer("bounds", torch.tensor([low, high], dtype=torch.float64))
        self.register_buffer("levels", torch.tensor(levels or (), dtype=torch.float64))
        self.restricted = levels is not None

    @classmethod
    def from_statement(cls, located: Located, context: CompileContext) -> Constraint:
        names = getattr(located.statement, "factors", None) or (located.statement.factor,)  # type: ignore[union-attr]
        parts: list[Constraint] = []
        for name in names:
            plan = context.plan(name.id)
            parts.append(cls(name.id, context.column(name.id), plan.low, plan.high, _allowed(plan),
                             where=located.where))
        return parts[0] if len(parts) == 1 else _All(parts, where=located.where)

    def accepts(self, theta: Tensor) -> Tensor:
        x = theta[:, self.column]
        inside = (x >= self.bounds[0]) & (x <= self.bounds[1])
        if self.restricted:
            inside = inside & (x.unsqueeze(-1) == self.levels).any(-1)
        return inside


def _allowed(plan: FactorPlan) -> tuple[float, ...] | None:
    if plan.factor.kind == "categorical":
        return tuple(float(i) for i, w in enumerate(plan.dist[1]) if w > 0)
    return plan.levels


class _All(Constraint):
    """Several factor supports asserted by one statement (`invariant a, b`)."""

    keyword = "invariant"
    role = "support"

    def __init__(self, parts: list[Constraint], *, where: str = "") -> None:
        super().__init__(where=where, factors=tuple(f for p in parts for f in p.factors))
        self.parts = torch.nn.ModuleList(parts)

    def accepts(self, theta: Tensor) -> Tensor:
        out = torch.ones(theta.shape[0], dtype=torch.bool)
        for part in self.parts:
            out = out & part.accepts(theta)  # type: ignore[operator]
        return out


class Invariant(_Support):
    """`invariant F, …`: F keeps its source distribution; the steerer may never move it."""

    keyword = "invariant"


class Shift(_Support):
    """`shift F …`: F's believed target support (interval, levels, or the moved source support)."""

    keyword = "shift"


class Prior(_Support):
    """`prior F …`: F follows the expert's belief density (held by the Guidance's marginal for F)."""

    keyword = "prior"


class Require(Constraint):
    """`require E`: hard; a single-factor bound truncates that factor, anything else rejects."""

    keyword = "require"
    condition: Callable[[dict[str, Tensor]], Tensor]

    def __init__(self, condition: Callable[[dict[str, Tensor]], Tensor], space: FactorSpace, *,
                 where: str = "", factors: tuple[str, ...] = ()) -> None:
        super().__init__(where=where, factors=factors)
        self.condition = condition
        self.space = space
        self.lookup = tuple((name, space.index(name)) for name in factors)

    @classmethod
    def from_statement(cls, located: Located, context: CompileContext) -> Constraint:
        expr = located.statement.expr  # type: ignore[union-attr]
        truncating = located in context.spec.truncating
        return (Truncate if truncating else cls)(context.condition(expr), context.space, where=located.where,
                                                 factors=_factors_in(expr, context.space))

    def accepts(self, theta: Tensor) -> Tensor:
        return self.condition(_columns(theta, self.lookup))


class Truncate(Require):
    """`require` bounding one factor by constants: the factor's marginal is truncated, nothing rejects.

    `Require.from_statement` builds this class instead of `Require` for such a statement, so its
    role (`support`) is declared on the class rather than recognised later.
    """

    role = "support"


class Prefer(Constraint):
    """`prefer E weight w`: soft; density times exp(w) where E holds.

    `always` is what interval arithmetic proves about E over the factor supports (True: E holds
    for every θ, False: for none, None: unknown); it tightens the sampler's ceiling, so a negative
    weight on a certain condition accepts every draw instead of almost none.
    """

    keyword = "prefer"
    role = "soft"
    condition: Callable[[dict[str, Tensor]], Tensor]

    def __init__(self, condition: Callable[[dict[str, Tensor]], Tensor], space: FactorSpace, weight: float, *,
                 always: bool | None = None, where: str = "", factors: tuple[str, ...] = ()) -> None:
        super().__init__(where=where, factors=factors)
        self.condition = condition
        self.space = space
        self.lookup = tuple((name, space.index(name)) for name in factors)
        self.weight = float(weight)
        self.always = always

    @classmethod
    def from_statement(cls, located: Located, context: CompileContext) -> Constraint:
        stmt = located.statement
        return cls(context.condition(stmt.expr), context.space, stmt.weight,  # type: ignore[union-attr]
                   always=context.certain(stmt.expr),  # type: ignore[union-attr]
                   where=located.where, factors=_factors_in(stmt.expr, context.space))  # type: ignore[union-attr]

    def log_weight(self, theta: Tensor) -> Tensor:
        return self.condition(_columns(theta, self.lookup)).to(theta.dtype) * self.weight

    def max_log_weight(self) -> float:
        if self.always is not None:  # E is constant: its weight is exactly w or exactly 0
            return self.weight if self.always else 0.0
        return max(self.weight, 0.0)


class Expect(Constraint):
    """`expect E`: a condition on generated data; θ alone is always accepted."""

    keyword = "expect"
    role = "data"
    condition: Callable[[dict[str, Tensor]], Tensor]

    def __init__(self, condition: Callable[[dict[str, Tensor]], Tensor], space: FactorSpace, *,
                 where: str = "") -> None:
        super().__init__(where=where)
        self.condition = condition
        self.space = space

    @classmethod
    def from_statement(cls, located: Located, context: CompileContext) -> Constraint:
        return cls(context.condition(located.statement.expr), context.space,  # type: ignore[union-attr]
                   where=located.where)

    def holds(self, theta: Tensor, observables: dict[str, Tensor]) -> Tensor:
        """Boolean `[n]`: whether each environment's generated data satisfies the expectation."""
        return self.condition({**_named(theta, self.space), **observables})


def _factors_in(expr: Any, space: FactorSpace) -> tuple[str, ...]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, ast.Name) and node.id in space and node.id not in found:
            found.append(node.id)
        elif isinstance(node, ast.Node):
            for name in type(node).model_fields:
                value = getattr(node, name)
                for child in value if isinstance(value, tuple) else (value,):
                    walk(child)
    walk(expr)
    return tuple(found)
