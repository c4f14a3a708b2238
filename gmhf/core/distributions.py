"""Batched one-dimensional distributions, with exact truncation where a CDF is known.

Every belief about one factor compiles to one of these: a base family (uniform, normal, …), possibly
offset or scaled (`shift … by`), truncated to the physical bounds, a shift's support and single-factor
`require` bounds, or made discrete (integer and categorical factors). Sampling draws the whole batch
at once from an explicit `torch.Generator`, by the inverse CDF when there is one (no rejection
loop, so truncation costs nothing however thin the slice), else by batched rejection.
Values are float64: they are physical parameters, and float32 would round the bounds.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = [
    "Affine", "Beta", "Choice", "Distribution1D", "EmptyTruncation", "LogNormal", "Normal", "Truncated", "Uniform",
    "discretize",
    "truncate",
]

DTYPE = torch.float64
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@runtime_checkable
class Distribution1D(Protocol):
    """What a distribution plugin's factory returns: a batched sampler and density on [low, high]."""

    low: float
    high: float

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """`n` draws as a float64 tensor `[n]`."""
        ...

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density `[n]` at `x` `[n]`; `-inf` outside the support."""
        ...


def _outside(x: Tensor, low: float, high: float) -> Tensor:
    return (x < low) | (x > high) | torch.isnan(x)


class Uniform:
    """Uniform on [a, b]."""

    def __init__(self, a: float, b: float) -> None:
        self.low, self.high = float(a), float(b)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.icdf(torch.rand(n, generator=generator, dtype=DTYPE))

    def log_prob(self, x: Tensor) -> Tensor:
        value = torch.full_like(x, -math.log(self.high - self.low), dtype=DTYPE)
        return value.masked_fill(_outside(x, self.low, self.high), -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        return ((x - self.low) / (self.high - self.low)).clamp(0, 1)

    def icdf(self, u: Tensor) -> Tensor:
        return self.low + u * (self.high - self.low)


class Normal:
    """Normal with mean `mu` and standard deviation `sigma`."""

    low, high = -math.inf, math.inf

    def __init__(self, mu: float, sigma: float) -> None:
        self.mu, self.sigma = float(mu), float(sigma)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.mu + self.sigma * torch.randn(n, generator=generator, dtype=DTYPE)

    def log_prob(self, x: Tensor) -> Tensor:
        z = (x.to(DTYPE) - self.mu) / self.sigma
        return -0.5 * z * z - math.log(self.sigma) - _LOG_SQRT_2PI

    def cdf(self, x: Tensor) -> Tensor:
        return torch.special.ndtr((x.to(DTYPE) - self.mu) / self.sigma)

    def icdf(self, u: Tensor) -> Tensor:
        return self.mu + self.sigma * torch.special.ndtri(u)

    def sf(self, x: Tensor) -> Tensor:
        """1 − cdf, without the cancellation that loses an upper tail."""
        return torch.special.ndtr((self.mu - x.to(DTYPE)) / self.sigma)

    def isf(self, u: Tensor) -> Tensor:
        return self.mu - self.sigma * torch.special.ndtri(u)


class LogNormal:
    """exp(Normal(mu, sigma)): positive, for scale-like factors."""

    low, high = 0.0, math.inf

    def __init__(self, mu: float, sigma: float) -> None:
        self.normal = Normal(mu, sigma)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.normal.sample(n, generator).exp()

    def log_prob(self, x: Tensor) -> Tensor:
        x = x.to(DTYPE)
        safe = x.clamp_min(1e-300)
        value = self.normal.log_prob(safe.log()) - safe.log()
        return value.masked_fill(x <= 0, -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        return self.normal.cdf(x.to(DTYPE).clamp_min(1e-300).log()).masked_fill(x <= 0, 0.0)

    def icdf(self, u: Tensor) -> Tensor:
        return self.normal.icdf(u).exp()

    def sf(self, x: Tensor) -> Tensor:
        return self.normal.sf(x.to(DTYPE).clamp_min(1e-300).log()).masked_fill(x <= 0, 1.0)

    def isf(self, u: Tensor) -> Tensor:
        return self.normal.isf(u).exp()


class Beta:
    """Beta(a, b) on [0, 1]; its CDF is tabulated once on a fine grid, so truncation stays exact."""

    low, high = 0.0, 1.0
    _GRID = 8193

    def __init__(self, a: float, b: float) -> None:
        self.a, self.b = float(a), float(b)
        self._norm = math.lgamma(self.a + self.b) - math.lgamma(self.a) - math.lgamma(self.b)
        # Tabulate on a grid dense near the ends, where beta densities may be infinite.
        s = torch.linspace(0, 1, self._GRID, dtype=DTYPE)
        grid = 0.5 - 0.5 * torch.cos(math.pi * s)
        mid = 0.5 * (grid[1:] + grid[:-1])
        mass = self.log_prob(mid).exp() * (grid[1:] - grid[:-1])
        cdf = torch.cat([torch.zeros(1, dtype=DTYPE), torch.cumsum(mass, 0)])
        self._grid, self._cdf = grid, cdf / cdf[-1]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.icdf(torch.rand(n, generator=generator, dtype=DTYPE))

    def log_prob(self, x: Tensor) -> Tensor:
        x = x.to(DTYPE)
        inside = x.clamp(1e-300, 1 - 1e-16)
        value = (self.a - 1) * inside.log() + (self.b - 1) * torch.log1p(-inside) + self._norm
        return value.masked_fill(_outside(x, 0.0, 1.0), -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        return _interp(x.to(DTYPE).clamp(0, 1), self._grid, self._cdf)

    def icdf(self, u: Tensor) -> Tensor:
        return _interp(u, self._cdf, self._grid)


def _interp(x: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
    """Piecewise-linear interpolation of (xs, ys) at x; xs increasing."""
    index = torch.searchsorted(xs, x.contiguous()).clamp(1, len(xs) - 1)
    x0, x1, y0, y1 = xs[index - 1], xs[index], ys[index - 1], ys[index]
    width = (x1 - x0).clamp_min(1e-300)
    return y0 + (y1 - y0) * ((x - x0) / width).clamp(0, 1)


class Choice:
    """A discrete distribution over `values` (codes of a categorical factor, or integers)."""

    def __init__(self, values: Tensor, weights: Tensor) -> None:
        weights = weights.to(DTYPE)
        self.values = values.to(DTYPE)
        self.probs = weights / weights.sum()
        self._cumulative = torch.cumsum(self.probs, 0)
        self._cumulative[-1] = 1.0
        self.low, self.high = float(self.values.min()), float(self.values.max())

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        u = torch.rand(n, generator=generator, dtype=DTYPE)
        index = torch.searchsorted(self._cumulative, u, right=True).clamp_max(len(self.values) - 1)
        return self.values[index]

    def log_prob(self, x: Tensor) -> Tensor:
        match = x.to(DTYPE).unsqueeze(-1) == self.values
        logp = self.probs.log().expand_as(match)
        return torch.where(match, logp, -math.inf).amax(-1)


class Affine:
    """`shift + scale * base`: a source offset (`by +d`) or scaled (`by *k`)."""

    def __init__(self, base: Distribution1D, shift: float = 0.0, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError(f"`scale` must be positive, got {scale!r}.")
        self.base, self.shift, self.scale = base, float(shift), float(scale)
        self.low = shift + scale * base.low
        self.high = shift + scale * base.high

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.shift + self.scale * self.base.sample(n, generator)

    def log_prob(self, x: Tensor) -> Tensor:
        return self.base.log_prob((x.to(DTYPE) - self.shift) / self.scale) - math.log(self.scale)

    def cdf(self, x: Tensor) -> Tensor:
        return self.base.cdf((x.to(DTYPE) - self.shift) / self.scale)  # type: ignore[attr-defined]

    def icdf(self, u: Tensor) -> Tensor:
        return self.shift + self.scale * self.base.icdf(u)  # type: ignore[attr-defined]


class EmptyTruncation(ValueError):
    """A truncation interval that holds no probability mass of its distribution."""


class Truncated:
    """`base` restricted to [low, high] and renormalised.

    With a CDF: inverse-CDF sampling on [F(low), F(high)] (exact, one pass); in an upper tail,
    where 1 − F rounds away what is left, through the survival function S = 1 − F instead, when
    the base has one. Without a CDF: batched rejection, drawing extra in proportion to the
    acceptance rate measured by a fixed-seed probe.

    Raises:
        EmptyTruncation: when no probability mass (representable in float64) lies in [low, high].
    """

    def __init__(self, base: Distribution1D, low: float, high: float) -> None:
        self.base = base
        self.low, self.high = max(low, base.low), min(high, base.high)
        self.exact = hasattr(base, "cdf") and hasattr(base, "icdf")
        self.upper = False  # sampling through the survival function
        if self.exact:
            bounds = torch.tensor([self.low, self.high], dtype=DTYPE)
            self._u0, self._u1 = (float(b) for b in base.cdf(bounds))  # type: ignore[attr-defined]
            if self._u0 > 0.5 and hasattr(base, "sf") and hasattr(base, "isf"):
                self.upper = True
                self._u0, self._u1 = (float(b) for b in base.sf(bounds))  # S(low) >= S(high)
                self.mass = self._u0 - self._u1
            else:
                self.mass = self._u1 - self._u0
        else:
            probe = base.sample(20_000, torch.Generator().manual_seed(0))
            self.mass = float(((probe >= self.low) & (probe <= self.high)).double().mean())
        if not self.mass > 0:
            raise EmptyTruncation(f"no probability mass of the distribution lies in [{low:g}, {high:g}] "
                                  f"(none that float64 can represent)")
        self._log_mass = math.log(self.mass)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        if self.exact:
            return self.icdf(torch.rand(n, generator=generator, dtype=DTYPE))
        out: list[Tensor] = []
        have = 0
        while have < n:
            draw = self.base.sample(int((n - have) / self.mass * 1.2) + 16, generator)
            draw = draw[(draw >= self.low) & (draw <= self.high)]
            out.append(draw)
            have += len(draw)
        return torch.cat(out)[:n]

    def log_prob(self, x: Tensor) -> Tensor:
        value = self.base.log_prob(x) - self._log_mass
        return value.masked_fill(_outside(x, self.low, self.high), -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        if self.upper:
            return ((self._u0 - self.base.sf(x)) / self.mass).clamp(0, 1)  # type: ignore[attr-defined]
        return ((self.base.cdf(x) - self._u0) / self.mass).clamp(0, 1)  # type: ignore[attr-defined]

    def icdf(self, u: Tensor) -> Tensor:
        """The inverse CDF, clamped to the bounds to guard the last ulp of the base's inverse."""
        if self.upper:
            x: Tensor = self.base.isf(self._u0 - u * self.mass)  # type: ignore[attr-defined]
        else:
            x = self.base.icdf(self._u0 + u * self.mass)  # type: ignore[attr-defined]
        return x.clamp(self.low, self.high)


def truncate(base: Distribution1D, low: float, high: float) -> Distribution1D:
    """`base` restricted to [low, high], or `base` itself when that changes nothing."""
    if low <= base.low and high >= base.high:
        return base
    if isinstance(base, Choice):
        keep = (base.values >= low) & (base.values <= high)
        return Choice(base.values[keep], base.probs[keep])
    return Truncated(base, low, high)


def discretize(base: Distribution1D, low: int, high: int) -> Choice:
    """An integer factor's distribution: P(k) ∝ density of `base` at k, for k in [low, high]."""
    values = torch.arange(low, high + 1, dtype=DTYPE)
    if isinstance(base, Uniform):
        weights = ((values >= base.low) & (values <= base.high)).to(DTYPE)
    else:
        weights = base.log_prob(values).exp()
    if not float(weights.sum()) > 0:
        raise ValueError(f"no integer in [{low}, {high}] has positive probability.")
    keep = weights > 0
    return Choice(values[keep], weights[keep])


# Factories named by the built-in distribution kinds (args are already validated).
def uniform(args: tuple[float, ...]) -> Uniform:
    """Factory for `uniform(a, b)`."""
    return Uniform(*args)


def normal(args: tuple[float, ...]) -> Normal:
    """Factory for `normal(mu, sigma)`."""
    return Normal(*args)


def lognormal(args: tuple[float, ...]) -> LogNormal:
    """Factory for `lognormal(mu, sigma)` (parameters of the underlying normal)."""
    return LogNormal(*args)


def beta(args: tuple[float, ...]) -> Beta:
    """Factory for `beta(a, b)`."""
    return Beta(*args)


def choice(args: tuple[float, ...]) -> Choice:
    """Factory for `choice(level: weight, …)`: `args` are the weights in level order."""
    weights = torch.tensor(args, dtype=DTYPE)
    return Choice(torch.arange(len(args), dtype=DTYPE), weights)
