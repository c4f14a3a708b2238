"""Factor spaces: the latent physical parameters θ a domain declares, with bounds and a source.

Torch-free on purpose: `gmhf check` reads factor spaces without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Factor", "FactorSpace", "Observable", "SourceDist"]


class SourceDist(BaseModel):
    """A distribution by registered name and arguments, e.g. `uniform(0.1, 5.0)`."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    args: tuple[float, ...] = ()
    #: Level weights, for `choice` over a categorical factor's levels.
    weights: tuple[tuple[str, float], ...] = ()

    def __str__(self) -> str:
        if self.weights:
            return f"{self.name}(" + ", ".join(f"{k}: {w:g}" for k, w in self.weights) + ")"
        return f"{self.name}(" + ", ".join(f"{a:g}" for a in self.args) + ")"


class Factor(BaseModel):
    """One latent parameter: its kind, physical bounds (or levels) and source distribution."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: Literal["real", "integer", "categorical"] = "real"
    low: float = -math.inf
    high: float = math.inf
    #: Whether the physical bound itself is excluded, as `frequency`'s 0 in (0, 5].
    low_open: bool = False
    high_open: bool = False
    levels: tuple[str, ...] = ()
    source: SourceDist
    unit: str = ""
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Factor:
        if self.kind == "categorical":
            if len(self.levels) < 1 or len(set(self.levels)) != len(self.levels):
                raise ValueError(f"categorical factor `{self.name}` needs distinct levels, got {self.levels!r}.")
        elif not self.low < self.high:
            raise ValueError(f"factor `{self.name}` needs low < high, got [{self.low}, {self.high}].")
        return self

    @classmethod
    def real(cls, name: str, low: float, high: float, *, source: tuple[str, float, float] | SourceDist,
             low_open: bool = False, unit: str = "", description: str = "") -> Factor:
        """A real factor with physical bounds [low, high] and a source like `("uniform", 0.1, 5.0)`."""
        return cls(name=name, kind="real", low=low, high=high, low_open=low_open, source=_source(source),
                   unit=unit, description=description)

    @classmethod
    def integer(cls, name: str, low: int, high: int, *, source: tuple[str, float, float] | SourceDist,
                unit: str = "", description: str = "") -> Factor:
        """An integer factor on {low, …, high}."""
        return cls(name=name, kind="integer", low=low, high=high, source=_source(source), unit=unit,
                   description=description)

    @classmethod
    def categorical(cls, name: str, levels: Sequence[str], *, weights: Sequence[float] | None = None,
                    description: str = "") -> Factor:
        """A categorical factor; its source is uniform over the levels unless `weights` are given."""
        weights = list(weights) if weights is not None else [1.0] * len(levels)
        source = SourceDist(name="choice", weights=tuple(zip(levels, weights, strict=True)))
        return cls(name=name, kind="categorical", levels=tuple(levels), source=source, description=description)

    def bounds_text(self) -> str:
        """The physical bounds as an interval, e.g. `(0, 5]`, or the levels."""
        if self.kind == "categorical":
            return "{" + ", ".join(self.levels) + "}"
        left = "(" if self.low_open else "["
        right = "]" if not self.high_open else ")"
        return f"{left}{self.low:g}, {self.high:g}{right}"


def _source(source: tuple[str, float, float] | SourceDist) -> SourceDist:
    if isinstance(source, SourceDist):
        return source
    name, *args = source
    return SourceDist(name=name, args=tuple(float(a) for a in args))


class Observable(BaseModel):
    """A quantity of generated data that `expect` statements may name."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    #: `scalar`: one value per environment; `array`: a vector per environment (reduce it with max, min…).
    shape: Literal["scalar", "array"] = "array"
    description: str = ""


class FactorSpace(BaseModel):
    """The ordered factors of a domain and the observables of its data."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    factors: tuple[Factor, ...]
    observables: tuple[Observable, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> FactorSpace:
        names = [f.name for f in self.factors] + [o.name for o in self.observables]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"factor and observable names must be unique, got duplicates {duplicates!r}.")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Factor names in column order."""
        return tuple(f.name for f in self.factors)

    def __getitem__(self, name: str) -> Factor:
        for factor in self.factors:
            if factor.name == name:
                return factor
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.factors)

    def __iter__(self) -> Iterator[Factor]:  # type: ignore[override]
        return iter(self.factors)

    def __len__(self) -> int:
        return len(self.factors)

    def index(self, name: str) -> int:
        """Column of `name` in a θ tensor."""
        return self.names.index(name)

    def observable(self, name: str) -> Observable | None:
        """The observable called `name`, if the domain has one."""
        return next((o for o in self.observables if o.name == name), None)
