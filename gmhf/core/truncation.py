"""Exact truncation of a one-dimensional distribution to [low, high].

Three ways, chosen once at construction:

* **inverse CDF** (the base has a CDF and its inverse): u is drawn between F(low) and F(high),
  in log space, on the side of the median the interval lies on (lower tail: log F; upper tail:
  log S with S = 1 − F), then inverted. Nothing underflows or rounds away however far out in a tail
  the interval lies, as long as its mass is a positive float64.
* **flat** (the interval is so narrow for the distribution that F(high) − F(low) keeps few
  significant digits): rejection from the uniform on [low, high], accepting with probability
  density / maximum density, which is exact; the mass comes from Gauss–Legendre quadrature.
* **rejection** (no CDF): batched rejection from the base, in proportion to a probed acceptance.

Draws never fall on an end of the interval (an event of probability zero): they are kept to the
float64 values strictly inside it, so an excluded bound (`frequency`'s 0 in `(0, 5]`) is never drawn.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gmhf.core.special import DTYPE, LOG_TINY, gauss_legendre_log_integral, log1mexp

__all__ = ["EmptyTruncation", "Tails", "Truncated"]

#: Below this relative mass, (F(high) − F(low)) / F(high), the inverse CDF loses digits: use the flat sampler.
FLAT_BELOW = 1e-3
#: The flat sampler needs min/max density over [low, high] at least this (so ≤ 10 proposals per draw).
FLAT_ACCEPTANCE = 0.1
#: log u above this: the linear inverse CDF (torch, fast) is as exact as the log-space one.
LINEAR_ABOVE = -700.0


class EmptyTruncation(ValueError):
    """A truncation interval that holds no probability mass of its distribution."""


class Tails:
    """The CDF, survival function, their logs and inverses of `base`, with fallbacks for what it lacks.

    A base needs `cdf` and `icdf`; `sf`/`isf` (upper tails) and `log_cdf`/`log_sf`/`icdf_log`/
    `isf_log` (far tails) are used when it has them, else derived, losing the tail they protect.
    """

    def __init__(self, base: Any) -> None:
        self.base = base

    def cdf(self, x: Tensor) -> Tensor:
        return torch.as_tensor(self.base.cdf(x), dtype=DTYPE)

    def icdf(self, u: Tensor) -> Tensor:
        return torch.as_tensor(self.base.icdf(u), dtype=DTYPE)

    def sf(self, x: Tensor) -> Tensor:
        return self.base.sf(x) if hasattr(self.base, "sf") else 1 - self.cdf(x)

    def isf(self, s: Tensor) -> Tensor:
        return self.base.isf(s) if hasattr(self.base, "isf") else self.icdf(1 - s)

    def log_cdf(self, x: Tensor) -> Tensor:
        return self.base.log_cdf(x) if hasattr(self.base, "log_cdf") else self.cdf(x).log()

    def log_sf(self, x: Tensor) -> Tensor:
        return self.base.log_sf(x) if hasattr(self.base, "log_sf") else self.sf(x).log()

    def icdf_log(self, log_u: Tensor) -> Tensor:
        return self.base.icdf_log(log_u) if hasattr(self.base, "icdf_log") else self.icdf(log_u.exp())

    def isf_log(self, log_s: Tensor) -> Tensor:
        return self.base.isf_log(log_s) if hasattr(self.base, "isf_log") else self.isf(log_s.exp())


def has_cdf(base: Any) -> bool:
    """Whether `base` (or the base under an offset or scale) has a CDF and its inverse."""
    from gmhf.core.distributions import Affine  # a sibling that imports this module

    inner = base.base if isinstance(base, Affine) else base
    return hasattr(inner, "cdf") and hasattr(inner, "icdf")


def _inside(low: float, high: float) -> tuple[float, float]:
    """The float64 values strictly inside [low, high], or [low, high] when there are none."""
    a, b = math.nextafter(low, high), math.nextafter(high, low)
    return (a, b) if a <= b else (low, high)


class Truncated:
    """`base` restricted to [low, high] and renormalised (see the module docstring for how).

    Raises:
        EmptyTruncation: when the mass in [low, high] is not a positive float64.
    """

    def __init__(self, base: Any, low: float, high: float) -> None:
        self.base = base
        self.low, self.high = max(low, base.low), min(high, base.high)
        self._in = _inside(self.low, self.high)
        self.method = "cdf" if has_cdf(base) else "rejection"
        self.upper = False  # inverse CDF through the survival function
        if self.method == "cdf":
            self.tails = Tails(base)
            self._log_mass = self._setup_cdf()
            if not self._log_mass > math.log(FLAT_BELOW) + self._lb or not math.isfinite(self._log_mass):
                self._setup_flat()
        else:
            probe = base.sample(20_000, torch.Generator().manual_seed(0))
            mass = float(((probe >= self.low) & (probe <= self.high)).double().mean())
            self._log_mass = math.log(mass) if mass > 0 else -math.inf
        if not self._log_mass >= LOG_TINY:
            raise EmptyTruncation(f"no probability mass of the distribution lies in [{low:g}, {high:g}] "
                                  f"(none that float64 can represent)")
        self.mass = math.exp(self._log_mass)

    def _setup_cdf(self) -> float:
        """log F or log S at the ends: [la, lb] with la <= lb; returns the log mass between them."""
        bounds = torch.tensor([self.low, self.high], dtype=DTYPE)
        lf = self.tails.log_cdf(bounds)
        if float(lf[0]) > math.log(0.5):  # upper tail: S keeps the digits F rounds away
            self.upper = True
            ls = self.tails.log_sf(bounds)
            self._la, self._lb = float(ls[1]), float(ls[0])
        else:
            self._la, self._lb = float(lf[0]), float(lf[1])
        if not self._lb > -math.inf or not self._la <= self._lb:
            return -math.inf
        self._relative = -math.expm1(self._la - self._lb)  # (b − a) / b
        return self._lb + float(log1mexp(torch.tensor(self._la - self._lb, dtype=DTYPE)))

    def _setup_flat(self) -> None:
        """Switch to the flat sampler when the density over [low, high] is nearly constant."""
        mode = getattr(self.base, "mode", None)
        points = [self.low, self.high] + ([mode] if mode is not None and self.low < mode < self.high else [])
        log_p = self.base.log_prob(torch.tensor(points, dtype=DTYPE))
        top, bottom = float(log_p.max()), float(log_p.min())
        if not (math.isfinite(top) and bottom - top >= math.log(FLAT_ACCEPTANCE)):
            return  # not flat: keep the inverse CDF (or its refusal)
        self.method, self._log_top = "flat", top
        lo, hi = torch.tensor([self.low], dtype=DTYPE), torch.tensor([self.high], dtype=DTYPE)
        self._log_mass = float(gauss_legendre_log_integral(self.base.log_prob, lo, hi)[0])

    # ------------------------------------------------------------------ sampling and density
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """`n` exact draws, strictly inside [low, high]."""
        if self.method == "cdf":
            x = self.icdf(torch.rand(n, generator=generator, dtype=DTYPE))
        elif self.method == "flat":
            x = self._sample_flat(n, generator)
        else:
            x = self._sample_rejection(n, generator)
        return x.clamp(*self._in)

    def _sample_flat(self, n: int, generator: torch.Generator) -> Tensor:
        out: list[Tensor] = []
        have, rate = 0, math.exp(self._log_mass - self._log_top) / (self.high - self.low)
        while have < n:
            m = int((n - have) / rate * 1.1) + 16
            x = self.low + torch.rand(m, generator=generator, dtype=DTYPE) * (self.high - self.low)
            keep = torch.rand(m, generator=generator, dtype=DTYPE).log() < self.base.log_prob(x) - self._log_top
            out.append(x[keep])
            have += int(keep.sum())
        return torch.cat(out)[:n]

    def _sample_rejection(self, n: int, generator: torch.Generator) -> Tensor:
        out: list[Tensor] = []
        have = 0
        while have < n:
            draw = self.base.sample(int((n - have) / self.mass * 1.2) + 16, generator)
            draw = draw[(draw >= self.low) & (draw <= self.high)]
            out.append(draw)
            have += len(draw)
        return torch.cat(out)[:n]

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density `[n]`; `-inf` outside [low, high]."""
        x = x.to(DTYPE)
        value = self.base.log_prob(x) - self._log_mass
        return value.masked_fill((x < self.low) | (x > self.high) | torch.isnan(x), -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        """The truncated CDF `[n]`."""
        x = x.to(DTYPE)
        if self.method == "flat":
            end = x.clamp(self.low, self.high)
            log_part = gauss_legendre_log_integral(self.base.log_prob, torch.full_like(end, self.low), end)
            return (log_part - self._log_mass).exp().masked_fill(end <= self.low, 0.0).clamp(0, 1)
        if self.upper:  # (S(low) − S(x)) / (S(low) − S(high))
            value = -torch.expm1(self.tails.log_sf(x) - self._lb) / self._relative
        else:  # (F(x) − F(low)) / (F(high) − F(low))
            value = (torch.exp(self.tails.log_cdf(x) - self._lb) - (1 - self._relative)) / self._relative
        return value.clamp(0, 1)

    def icdf(self, u: Tensor) -> Tensor:
        """The inverse of `cdf`, kept within [low, high]."""
        u = u.to(DTYPE)
        if self.method == "flat":
            return self._icdf_flat(u)
        if self._la > LINEAR_ABOVE:  # both ends are normal floats: the linear inverse is as exact, and faster
            a, width = math.exp(self._la), math.exp(self._lb) * self._relative
            x = self.tails.isf(a + (1 - u) * width) if self.upper else self.tails.icdf(a + u * width)
        elif self.upper:  # log S = log(S(low) − u (S(low) − S(high)))
            x = self.tails.isf_log(self._lb + torch.log1p(-u * self._relative))
        else:  # log F = log(F(high) − (1 − u) (F(high) − F(low)))
            x = self.tails.icdf_log(self._lb + torch.log1p(-(1 - u) * self._relative))
        return x.clamp(self.low, self.high)

    def _icdf_flat(self, u: Tensor) -> Tensor:
        """Newton's method from the uniform guess (the density is nearly constant, so a few steps do)."""
        x = self.low + u * (self.high - self.low)
        for _ in range(4):
            step = (self.cdf(x) - u) / (self.base.log_prob(x) - self._log_mass).exp()
            x = (x - step).clamp(self.low, self.high)
        return x
