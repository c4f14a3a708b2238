"""Batched one-dimensional distributions, with exact truncation where a CDF is known.

Every belief about one factor compiles to one of these: a base family (uniform, normal, …), possibly
offset or scaled (`shift … by`), truncated to the physical bounds, a shift's support and single-factor
`require` bounds, or made discrete (integer and categorical factors). Sampling draws the whole batch
at once from an explicit `torch.Generator`, by the inverse CDF when there is one, else by batched
rejection. The built-in families are exact over their parameter range (`gmhf.core.parameters`):
their CDFs come in log and survival form too (`log_cdf`, `sf`, `icdf_log`, …), which
`gmhf.core.truncation` uses to truncate exactly however far out in a tail.
Values are float64: they are physical parameters, and float32 would round the bounds.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from gmhf.core.parameters import beta_problem, location_scale_problem, require
from gmhf.core.special import DTYPE, LOG_TINY, betainc, betaincc, betainccinv, betaincinv, betaln, ndtri_exp
from gmhf.core.truncation import EmptyTruncation, Tails, Truncated

__all__ = [
    "Affine", "Beta", "Choice", "Distribution1D", "EmptyTruncation", "LogNormal", "Normal", "Truncated", "Uniform",
    "truncate",
]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_TINY, _HUGE = math.ulp(0.0), 1.7976931348623157e308  # the extreme positive float64 values
_BELOW_ONE = math.nextafter(1.0, 0.0)


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
        if not (math.isfinite(a) and math.isfinite(b) and a < b):
            raise ValueError(f"bad parameters for `uniform`: needs finite low < high, got {a!r} and {b!r}.")
        self.low, self.high = float(a), float(b)
        self.mode = 0.5 * (self.low + self.high)

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
    """Normal with mean `mu` and standard deviation `sigma`; exact CDFs in both tails, in log space too."""

    low, high = -math.inf, math.inf

    def __init__(self, mu: float, sigma: float) -> None:
        require("normal", location_scale_problem((mu, sigma)))
        self.mu, self.sigma = float(mu), float(sigma)
        self.mode = self.mu

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.mu + self.sigma * torch.randn(n, generator=generator, dtype=DTYPE)

    def _z(self, x: Tensor) -> Tensor:
        return (x.to(DTYPE) - self.mu) / self.sigma

    def log_prob(self, x: Tensor) -> Tensor:
        z = self._z(x)
        return -0.5 * z * z - math.log(self.sigma) - _LOG_SQRT_2PI

    def cdf(self, x: Tensor) -> Tensor:
        return torch.special.ndtr(self._z(x))

    def sf(self, x: Tensor) -> Tensor:
        """1 − cdf, without the cancellation that loses an upper tail."""
        return torch.special.ndtr(-self._z(x))

    def log_cdf(self, x: Tensor) -> Tensor:
        return torch.special.log_ndtr(self._z(x))

    def log_sf(self, x: Tensor) -> Tensor:
        return torch.special.log_ndtr(-self._z(x))

    def icdf(self, u: Tensor) -> Tensor:
        return self.mu + self.sigma * torch.special.ndtri(u)

    def isf(self, s: Tensor) -> Tensor:
        return self.mu - self.sigma * torch.special.ndtri(s)

    def icdf_log(self, log_u: Tensor) -> Tensor:
        """The quantile of the probability exp(`log_u`), exact however far out in the lower tail."""
        return self.mu + self.sigma * ndtri_exp(log_u)

    def isf_log(self, log_s: Tensor) -> Tensor:
        return self.mu - self.sigma * ndtri_exp(log_s)


class LogNormal:
    """exp(Normal(mu, sigma)): positive, for scale-like factors; every CDF goes through the normal's."""

    low, high = 0.0, math.inf

    def __init__(self, mu: float, sigma: float) -> None:
        require("lognormal", location_scale_problem((mu, sigma)))
        self.normal = Normal(mu, sigma)
        self.mode = math.exp(mu - sigma * sigma) if mu - sigma * sigma > LOG_TINY else None

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Draws rounded into the positive floats (never 0 nor inf, where exp under- or overflows)."""
        return self.normal.sample(n, generator).exp().clamp(_TINY, _HUGE)

    def _log(self, x: Tensor) -> Tensor:
        return x.to(DTYPE).clamp_min(_TINY).log()

    def log_prob(self, x: Tensor) -> Tensor:
        log_x = self._log(x)
        return (self.normal.log_prob(log_x) - log_x).masked_fill(x <= 0, -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        return self.normal.cdf(self._log(x)).masked_fill(x <= 0, 0.0)

    def sf(self, x: Tensor) -> Tensor:
        return self.normal.sf(self._log(x)).masked_fill(x <= 0, 1.0)

    def log_cdf(self, x: Tensor) -> Tensor:
        return self.normal.log_cdf(self._log(x)).masked_fill(x <= 0, -math.inf)

    def log_sf(self, x: Tensor) -> Tensor:
        return self.normal.log_sf(self._log(x)).masked_fill(x <= 0, 0.0)

    def icdf(self, u: Tensor) -> Tensor:
        return self.normal.icdf(u).exp()

    def isf(self, s: Tensor) -> Tensor:
        return self.normal.isf(s).exp()

    def icdf_log(self, log_u: Tensor) -> Tensor:
        return self.normal.icdf_log(log_u).exp()

    def isf_log(self, log_s: Tensor) -> Tensor:
        return self.normal.isf_log(log_s).exp()


class Beta:
    """Beta(a, b) on [0, 1], by the inverse of the regularised incomplete beta function.

    Each CDF and inverse works on the side where its value is small (I_x(a, b) below the median,
    1 − I_x(a, b) = I_{1−x}(b, a) above it), so neither tail loses digits. Shapes must lie in
    `BETA_SHAPES`. A draw closer to 0 or 1 than float64 resolves is rounded (to 1, or up to 2.2e-308).
    """

    low, high = 0.0, 1.0

    def __init__(self, a: float, b: float) -> None:
        require("beta", beta_problem((a, b)))
        self.a, self.b = float(a), float(b)
        self._log_norm = -betaln(self.a, self.b)
        unimodal = self.a >= 1 and self.b >= 1 and self.a + self.b > 2
        self.mode = (self.a - 1) / (self.a + self.b - 2) if unimodal else 0.5  # else the maximum is at an end

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.icdf(torch.rand(n, generator=generator, dtype=DTYPE))

    def log_prob(self, x: Tensor) -> Tensor:
        x = x.to(DTYPE)
        inside = x.clamp(_TINY, _BELOW_ONE)
        value = (self.a - 1) * inside.log() + (self.b - 1) * torch.log1p(-inside) + self._log_norm
        return value.masked_fill(_outside(x, 0.0, 1.0), -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        return betainc(self.a, self.b, x.to(DTYPE).clamp(0, 1))

    def sf(self, x: Tensor) -> Tensor:
        return betaincc(self.a, self.b, x.to(DTYPE).clamp(0, 1))

    def log_cdf(self, x: Tensor) -> Tensor:
        return self.cdf(x).log()

    def log_sf(self, x: Tensor) -> Tensor:
        return self.sf(x).log()

    def icdf(self, u: Tensor) -> Tensor:
        return self._invert(u.to(DTYPE), upper=False)

    def isf(self, s: Tensor) -> Tensor:
        return self._invert(s.to(DTYPE), upper=True)

    def icdf_log(self, log_u: Tensor) -> Tensor:
        return self.icdf(log_u.exp())

    def isf_log(self, log_s: Tensor) -> Tensor:
        return self.isf(log_s.exp())

    def _invert(self, p: Tensor, upper: bool) -> Tensor:
        """x with F(x) = p (S(x) = p when `upper`): rows with p > ½ invert the other side at 1 − p (exact there)."""
        small = p <= 0.5
        own, other = (betainccinv, betaincinv) if upper else (betaincinv, betainccinv)
        out = torch.empty_like(p)
        out[small] = own(self.a, self.b, p[small])
        out[~small] = other(self.a, self.b, 1 - p[~small])
        return out


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
    """`shift + scale * base`: a source offset (`by +d`) or scaled (`by *k`), with the base's exact tails."""

    def __init__(self, base: Distribution1D, shift: float = 0.0, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError(f"`scale` must be positive, got {scale!r}.")
        self.base, self.shift, self.scale = base, float(shift), float(scale)
        self.low = shift + scale * base.low
        self.high = shift + scale * base.high
        self._tails = Tails(base)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.shift + self.scale * self.base.sample(n, generator)

    def log_prob(self, x: Tensor) -> Tensor:
        return self.base.log_prob((x.to(DTYPE) - self.shift) / self.scale) - math.log(self.scale)

    def _x(self, z: Tensor) -> Tensor:
        return self.shift + self.scale * z

    def _z(self, x: Tensor) -> Tensor:
        return (x.to(DTYPE) - self.shift) / self.scale

    @property
    def mode(self) -> float | None:
        """The base's mode, moved (None when the base has none)."""
        mode = getattr(self.base, "mode", None)
        return None if mode is None else self.shift + self.scale * mode

    # The base's tail-safe CDFs, forwarded (scale > 0 keeps lower and upper tails apart).
    def cdf(self, x: Tensor) -> Tensor:
        return self._tails.cdf(self._z(x))

    def sf(self, x: Tensor) -> Tensor:
        return self._tails.sf(self._z(x))

    def log_cdf(self, x: Tensor) -> Tensor:
        return self._tails.log_cdf(self._z(x))

    def log_sf(self, x: Tensor) -> Tensor:
        return self._tails.log_sf(self._z(x))

    def icdf(self, u: Tensor) -> Tensor:
        return self._x(self._tails.icdf(u))

    def isf(self, s: Tensor) -> Tensor:
        return self._x(self._tails.isf(s))

    def icdf_log(self, log_u: Tensor) -> Tensor:
        return self._x(self._tails.icdf_log(log_u))

    def isf_log(self, log_s: Tensor) -> Tensor:
        return self._x(self._tails.isf_log(log_s))


def truncate(base: Distribution1D, low: float, high: float) -> Distribution1D:
    """`base` restricted to [low, high], or `base` itself when that changes nothing."""
    if low <= base.low and high >= base.high:
        return base
    if isinstance(base, Choice):
        keep = (base.values >= low) & (base.values <= high)
        return Choice(base.values[keep], base.probs[keep])
    return Truncated(base, low, high)


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
