"""What plugins register: statement kinds, distributions, functions and domains, by name.

The entries are plain, torch-free descriptions; anything heavy (a torch class, a sampler) is named
as `"module:attribute"` and imported on first use, so `gmhf check` stays light. `Registry` is filled
by the plugin manager through the `gmhf_*` hooks and read by the checker and the compiler.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gmhf.core.domain import Domain

__all__ = ["DistributionKind", "FunctionKind", "Registry", "StatementKind", "resolve"]

Interval = tuple[float, float]


def resolve(target: Any) -> Any:
    """Import `"module:attribute"` targets; pass anything else through."""
    if isinstance(target, str):
        module, _, attribute = target.partition(":")
        value: Any = importlib.import_module(module)
        for part in attribute.split("."):
            value = getattr(value, part)
        return value
    return target


@dataclass(frozen=True)
class StatementKind:
    """A statement keyword and the constraint class that compiles it.

    Built-in keywords have their syntax in the grammar file (`syntax=None`); a plugin keyword gives
    its argument syntax as a Lark expansion over the grammar's rules, e.g. `'NAME "within" sum'`.
    """

    keyword: str
    constraint: Any  # a Constraint subclass or "module:Class"
    syntax: str | None = None
    description: str = ""

    def load(self) -> Any:
        """The constraint class, imported if it was named by path."""
        return resolve(self.constraint)


@dataclass(frozen=True)
class DistributionKind:
    """A distribution usable in `prior F ~ name(...)` and as a factor's source.

    `validate(args)` returns a message when parameters are out of range (σ ≤ 0 …), `support(args)`
    the (low, high) the density lives on; both run without torch. `factory(args)` builds the
    batched torch distribution (see `gmhf.core.distributions.Distribution1D`).
    """

    name: str
    params: tuple[str, ...]
    factory: Any  # Callable[[tuple[float, ...]], Distribution1D] or "module:function"
    validate: Callable[[tuple[float, ...]], str | None] = lambda args: None
    support: Callable[[tuple[float, ...]], Interval] = lambda args: (float("-inf"), float("inf"))
    #: Takes `level: weight` arguments instead of positional ones (as `choice`).
    named: bool = False
    description: str = ""

    def build(self, args: tuple[float, ...]) -> Any:
        """The torch distribution for these (already validated) parameters."""
        return resolve(self.factory)(args)


@dataclass(frozen=True)
class FunctionKind:
    """A function callable in expressions.

    `torch` computes it on batched tensors; `interval` (optional, torch-free) maps argument intervals
    to a result interval so `check` can prove a `require` unsatisfiable. With `reduces=True`, one
    argument means "over the whole array" (as `max(abs(y))`) and several mean elementwise.
    """

    name: str
    min_args: int
    max_args: int
    torch: Any  # Callable[..., Tensor] or "module:function"
    interval: Callable[..., Interval] | None = None
    reduces: bool = False
    description: str = ""


@dataclass
class Registry:
    """Everything registered, by name, with the plugin each entry came from."""

    domains: dict[str, Domain] = field(default_factory=dict)
    statements: dict[str, StatementKind] = field(default_factory=dict)
    distributions: dict[str, DistributionKind] = field(default_factory=dict)
    functions: dict[str, FunctionKind] = field(default_factory=dict)
    learners: dict[str, Any] = field(default_factory=dict)
    experts: dict[str, Any] = field(default_factory=dict)
    #: (kind, name) -> plugin name
    origins: dict[tuple[str, str], str] = field(default_factory=dict)

    def extensions(self) -> dict[str, str]:
        """Plugin statement keywords and their syntax, for the parser."""
        return {k: s.syntax for k, s in self.statements.items() if s.syntax is not None}
