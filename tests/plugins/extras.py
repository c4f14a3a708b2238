"""A test plugin adding one statement keyword (`cap F at x`), one distribution and one function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import gmhf
from gmhf.core.constraints import CompileContext, Constraint
from gmhf.dsl import ast


class Cap(Constraint):
    """`cap F at x`: reject environments where F exceeds x."""

    keyword = "cap"
    syntax = 'NAME "at" sum'

    def __init__(self, column: int, limit: float, *, where: str = "", factor: str = "") -> None:
        super().__init__(where=where, factors=(factor,))
        self.column = column
        self.register_buffer("limit", torch.tensor(limit, dtype=torch.float64))

    @classmethod
    def check(cls, stmt: ast.CustomStatement, space: Any) -> list[tuple[str, Any]]:
        name, limit = stmt.parts[0], stmt.parts[2]
        problems = []
        if name.id not in space:
            problems.append((f"unknown factor `{name.id}`", name))
        if not isinstance(limit, ast.Number):
            problems.append(("`cap` needs a number", limit))
        return problems

    @classmethod
    def from_statement(cls, located: Any, context: CompileContext) -> Constraint:
        name, _, limit = located.statement.parts
        return cls(context.column(name.id), limit.value, where=located.where, factor=name.id)

    def accepts(self, theta: torch.Tensor) -> torch.Tensor:
        return theta[:, self.column] <= self.limit


class Triangular:
    """Triangular(low, mode, high) with an exact inverse CDF."""

    def __init__(self, low: float, mode: float, high: float) -> None:
        self.low, self.mode, self.high = low, mode, high
        self.split = (mode - low) / (high - low)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.icdf(torch.rand(n, generator=generator, dtype=torch.float64))

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        a, c, b = self.low, self.mode, self.high
        x = x.clamp(a, b)
        left = (x - a) ** 2 / ((b - a) * (c - a))
        right = 1 - (b - x) ** 2 / ((b - a) * (b - c))
        return torch.where(x <= c, left, right)

    def icdf(self, u: torch.Tensor) -> torch.Tensor:
        a, c, b = self.low, self.mode, self.high
        left = a + torch.sqrt(u * (b - a) * (c - a))
        right = b - torch.sqrt((1 - u) * (b - a) * (b - c))
        return torch.where(u <= self.split, left, right)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        a, c, b = self.low, self.mode, self.high
        density = torch.where(x <= c, 2 * (x - a) / ((b - a) * (c - a)), 2 * (b - x) / ((b - a) * (b - c)))
        inside = (x >= a) & (x <= b)
        return torch.where(inside, density.clamp_min(1e-300).log(), -torch.inf)


def triangular(args: tuple[float, ...]) -> Triangular:
    return Triangular(*args)


def _square_interval(x: tuple[float, float]) -> tuple[float, float]:
    ends = (x[0] ** 2, x[1] ** 2)
    return (0.0 if x[0] <= 0 <= x[1] else min(ends), max(ends))


@gmhf.hookimpl
def gmhf_statements(register: Callable[..., None]) -> None:
    register(Cap)


@gmhf.hookimpl
def gmhf_distributions(register: Callable[..., None]) -> None:
    register(gmhf.DistributionKind(
        name="triangular", params=("low", "mode", "high"), factory=triangular,
        validate=lambda a: None if a[0] <= a[1] <= a[2] and a[0] < a[2] else "needs low <= mode <= high",
        support=lambda a: (a[0], a[2])))


@gmhf.hookimpl
def gmhf_functions(register: Callable[..., None]) -> None:
    register(gmhf.FunctionKind(name="sq", min_args=1, max_args=1, torch=lambda x: x * x,
                               interval=_square_interval))
