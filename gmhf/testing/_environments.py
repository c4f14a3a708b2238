"""Environments as points of a cube: each factor's coordinate in [-1, 1] maps to a believed value.

`from_guidance` and the pytest plugin both draw θ through these coordinates, so both shrink toward
the same place. Coordinate 0 is the factor's *anchor*: the source median, moved to the nearest value
the spec believes possible (categorical factors: the level the source favours most). A coordinate s
moves away from the anchor in probability: |s| is the believed mass lying between the anchor and the
value (folded around the anchor: on both sides while both have room, then on the longer side), so
a uniform |s| with a fair sign draws exactly the spec's marginal, and a smaller |s| is always a value
nearer the source. Integer and categorical factors order their allowed values by closeness to the
source and let |s| pick by cumulative mass the same way.

Hypothesis draws each coordinate as an integer i in [-2**20, 2**20]: its shrinker makes integers
small by exact binary search, so θ shrinks toward the source to within 0.1% of the mass next to
the anchor and far less farther out (floats would shrink toward "simple" values such as 1.0, the
far end). Hypothesis draws small
integers far more often than large ones, so |s| is a log of |i|, stretched so that about 1% of draws
land exactly on the anchor, a few percent exactly on the far end of the support, and the rest spread
between. The batched `shrink` below minimises the same integers for expensive simulators.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core import distributions as D
from gmhf.core.theta import Theta

if TYPE_CHECKING:
    from gmhf.core.factors import Factor
    from gmhf.core.guidance import Guidance
    from gmhf.core.registry import Registry

__all__ = ["RESOLUTION", "Sampler", "median", "shrink", "spread"]

#: Coordinates are integers in [-RESOLUTION, RESOLUTION].
RESOLUTION = 2**20
#: |s| = stretch(log1p(|i| / _SCALE) / log1p(RESOLUTION / _SCALE)), stretched from [_EDGES] to [0, 1].
_SCALE = 100.0
_EDGES = (0.03, 0.97)
#: Draws used when a distribution has no inverse CDF (empirical quantiles) or no median.
EMPIRICAL_DRAWS = 4096
_PROBE_P = torch.tensor([0.25, 0.5, 0.75], dtype=D.DTYPE)


def _exact(dist: Any) -> bool:
    """Whether `dist` has a working CDF and inverse CDF (Truncated without one still has the methods)."""
    try:
        q, c = dist.icdf(_PROBE_P), dist.cdf(_PROBE_P)
    except (AttributeError, TypeError, RuntimeError):  # RuntimeError covers NotImplementedError
        return False
    return bool(torch.isfinite(torch.as_tensor(q)).all()) and bool(torch.isfinite(torch.as_tensor(c)).all())


def _interp(x: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
    """Piecewise-linear (xs, ys) at x, flat beyond the ends; xs non-decreasing."""
    x = x.to(D.DTYPE).clamp(float(xs[0]), float(xs[-1])).contiguous()
    i = torch.searchsorted(xs, x).clamp(1, len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * ((x - x0) / (x1 - x0).clamp_min(1e-300)).clamp(0, 1)


def median(dist: Any) -> float:
    """The median of a 1-D distribution: its inverse CDF at 0.5, else that of fixed-seed draws."""
    if _exact(dist):
        return float(dist.icdf(torch.tensor([0.5], dtype=D.DTYPE))[0])
    draws = dist.sample(EMPIRICAL_DRAWS, torch.Generator().manual_seed(0))
    return float(draws.median())


class _Continuous:
    """A real factor: fold |s| around the anchor's CDF value, then invert the CDF."""

    def __init__(self, dist: Any, anchor: float) -> None:
        self.low, self.high = float(dist.low), float(dist.high)
        if _exact(dist):
            self.quantile: Callable[[Tensor], Tensor] = lambda p: dist.icdf(p).to(D.DTYPE)
            self.cdf: Callable[[Tensor], Tensor] = lambda x: dist.cdf(x).to(D.DTYPE)
        else:  # empirical quantiles of fixed-seed draws, reaching the support's finite ends
            draws = dist.sample(EMPIRICAL_DRAWS, torch.Generator().manual_seed(0)).to(D.DTYPE).sort().values
            ends = [torch.tensor([e], dtype=D.DTYPE) for e in (self.low, self.high)]
            xs = torch.cat([ends[0], draws] if math.isfinite(self.low) else [draws])
            xs = torch.cat([xs, ends[1]] if math.isfinite(self.high) else [xs])
            ps = torch.linspace(0, 1, len(xs), dtype=D.DTYPE)
            self.quantile = lambda p: _interp(p, ps, xs)
            self.cdf = lambda x: _interp(x, xs, ps)
        self.anchor = min(max(anchor, self.low), self.high)
        self.p_anchor = float(self.cdf(torch.tensor([self.anchor], dtype=D.DTYPE))[0])

    def values(self, s: Tensor) -> Tensor:
        t, up = s.abs(), s >= 0
        room = min(self.p_anchor, 1 - self.p_anchor)
        near = torch.where(up, self.p_anchor + t / 2, self.p_anchor - t / 2)  # both sides have room
        far = (self.p_anchor + (t - room)) if 1 - self.p_anchor >= self.p_anchor else (self.p_anchor - (t - room))
        p = torch.where(t <= 2 * room, near, far).clamp(0, 1)
        x = self.quantile(p)
        bad = ~torch.isfinite(x)
        if bool(bad.any()):  # an unbounded end: stay a hair inside it
            x = torch.where(bad, self.quantile(p.clamp(1e-12, 1 - 1e-12)), x)
        x = x.clamp(self.low, self.high)
        return torch.where(s == 0, torch.full_like(x, self.anchor), x)


class _Discrete:
    """An integer or categorical factor: values ordered by closeness to the source, |s| picks by mass."""

    def __init__(self, values: Tensor, probs: Tensor, closeness: Tensor) -> None:
        keep = probs > 0
        values, probs, closeness = values[keep], probs[keep], closeness[keep]
        order = sorted(range(len(values)), key=lambda i: (float(closeness[i]), float(values[i])))
        self.ordered = values[order].to(D.DTYPE)
        cumulative = torch.cumsum(probs[order] / probs.sum(), 0).to(D.DTYPE)
        cumulative[-1] = 1.0
        self.cumulative = cumulative
        self.anchor = float(self.ordered[0])

    def values(self, s: Tensor) -> Tensor:
        index = torch.searchsorted(self.cumulative, s.abs().contiguous(), right=True)
        return self.ordered[index.clamp_max(len(self.ordered) - 1)]


def spread(coordinates: Tensor) -> Tensor:
    """Integer coordinates to s in [-1, 1]: monotone in |i|, sign kept (see the module docstring)."""
    i = coordinates.to(D.DTYPE)
    t = torch.log1p(i.abs() / _SCALE) / math.log1p(RESOLUTION / _SCALE)
    t = ((t - _EDGES[0]) / (_EDGES[1] - _EDGES[0])).clamp(0, 1)
    return torch.where(i < 0, -t, t)


def _source_dist(factor: Factor, registry: Registry) -> Any:
    kind = registry.distributions.get(factor.source.name)
    return None if kind is None else kind.build(factor.source.args)


def _axis(factor: Factor, dist: Any, registry: Registry) -> _Continuous | _Discrete:
    if factor.kind == "categorical":
        weights = dict(factor.source.weights)
        codes = torch.arange(len(factor.levels), dtype=D.DTYPE)
        probs = dist.probs if isinstance(dist, D.Choice) and len(dist.values) == len(codes) else dist.log_prob(codes).exp()
        closeness = torch.tensor([-weights.get(level, 0.0) for level in factor.levels], dtype=D.DTYPE)
        return _Discrete(codes, probs, closeness)
    source = _source_dist(factor, registry)
    centre = median(source) if source is not None else median(dist)
    if factor.kind == "integer":
        if isinstance(dist, D.Choice):
            values, probs = dist.values, dist.probs
        else:
            values = torch.arange(math.ceil(dist.low), math.floor(dist.high) + 1, dtype=D.DTYPE)
            probs = dist.log_prob(values).exp()
        return _Discrete(values, probs, (values - centre).abs())
    return _Continuous(dist, centre)


class Sampler:
    """Maps coordinates `[m, k]` in [-1, 1] to θ `[m, k]` of a compiled spec, and back to records."""

    def __init__(self, guidance: Guidance) -> None:
        from gmhf.plugins.manager import plugin_host

        registry = plugin_host().registry
        self.guidance = guidance
        self.space = guidance.space
        self.axes = [_axis(f, guidance.marginals[f.name], registry) for f in guidance.space]
        rate = float(guidance.explain()["acceptance_rate"])
        # Attempts per row before the example is rejected: enough for a 99.9% chance at the measured rate.
        self.attempts = 1 if rate >= 1 else min(32, max(2, math.ceil(math.log(1e-3) / math.log1p(-rate))))

    @property
    def anchor(self) -> Tensor:
        """θ at coordinate 0: every factor at its source-nearest believed value `[k]`."""
        return torch.tensor([a.anchor for a in self.axes], dtype=D.DTYPE)

    def values(self, coordinates: Tensor) -> Tensor:
        """θ `[m, k]` for integer coordinates `[m, k]` in [-RESOLUTION, RESOLUTION]."""
        s = spread(coordinates)
        if s.shape[0] == 0:
            return torch.zeros(0, len(self.axes), dtype=D.DTYPE)
        return torch.stack([axis.values(s[:, i]) for i, axis in enumerate(self.axes)], 1)

    def accepts(self, values: Tensor) -> Tensor:
        """Boolean `[m]`: inside every support and every hard constraint of the spec."""
        return self.guidance.accepts(values) if values.shape[0] else torch.zeros(0, dtype=torch.bool)

    def theta(self, values: Tensor) -> Theta:
        """A named batch, as `Guidance.sample` returns it."""
        levels = {f.name: f.levels for f in self.space if f.kind == "categorical"}
        integers = tuple(f.name for f in self.space if f.kind == "integer")
        return Theta(values, self.space.names, levels, integers)

    def describe(self, values: Tensor) -> str:
        """One environment as `name=value, …` with four significant digits and level names."""
        (record,) = self.theta(values.reshape(1, -1)).to_records()
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())


def _key(c: Tensor) -> tuple[int, int]:
    return int((c != 0).sum()), int(c.abs().sum())


def _moves(c: Tensor) -> list[tuple[int, Tensor]]:
    """(coordinate, candidate) pairs one coordinate nearer 0: a 1/16 grid, power-of-two steps, |v| for v < 0."""
    out = []
    for j, v in enumerate(c.tolist()):
        sign = 1 if v > 0 else -1
        steps = {int(v * f / 16) for f in range(16)} | {v - sign * (1 << m) for m in range(abs(v).bit_length())}
        steps |= {-v} if v < 0 else set()
        for w in sorted(steps - {v}, key=abs):
            moved = c.clone()
            moved[j] = w
            out.append((j, moved))
    return out


def _trades(c: Tensor) -> list[Tensor]:
    """Candidates that put one coordinate back at 0 and move another farther out to make up for it.

    Single moves cannot leave a point where a factor needs its source value *and* another factor a
    larger departure (a wave needing more amplitude once the noise is back at the source's); one
    factor fewer away from the source is nearer it, as in Hypothesis' own ordering.
    """
    out = []
    nonzero = [j for j, v in enumerate(c.tolist()) if v != 0]
    for j in nonzero:
        for other in nonzero:
            if other == j:
                continue
            v = int(c[other])
            room = RESOLUTION - abs(v)
            for k in range(1, 9):
                traded = c.clone()
                traded[j] = 0
                traded[other] = v + (1 if v > 0 else -1) * (room * k // 8)
                out.append(traded)
    return out


def shrink(sampler: Sampler, start: Tensor, fails: Callable[[Tensor], Tensor], *, rounds: int = 48) -> Tensor:
    """Move failing coordinates `[k]` toward 0 while `fails(θ [m, k]) -> bool [m]` stays true.

    Each round evaluates, in one batch (one simulator call), every one-coordinate move toward 0 and
    every trade of one coordinate back to 0 for another farther out; then it tries the best move of
    every coordinate at once. So an expensive simulator costs two calls a round, not one per step.
    The result is a local minimum of (coordinates away from 0, sum of |coordinates|).
    """
    best = start.clone()
    for _ in range(rounds):
        moves = _moves(best)
        trades = _trades(best)
        if not moves:
            break
        candidates = torch.stack([c for _, c in moves] + trades)
        values = sampler.values(candidates)
        ok = sampler.accepts(values)
        if bool(ok.any()):
            ok[ok.clone()] = fails(values[ok])
        failing = ok.tolist()
        better: dict[int, Tensor] = {}
        for (j, c), failed in zip(moves, failing[:len(moves)], strict=True):
            if failed and _key(c) < _key(better.get(j, best)):
                better[j] = c
        traded = [c for c, failed in zip(trades, failing[len(moves):], strict=True) if failed and _key(c) < _key(best)]
        if not better and not traded:
            break
        single = min([*better.values(), *traded], key=_key)
        combined = best.clone()
        for j, c in better.items():
            combined[j] = c[j]
        if len(better) > 1 and _key(combined) < _key(single):
            values = sampler.values(combined.reshape(1, -1))
            if bool(sampler.accepts(values)[0]) and bool(fails(values)[0]):
                best = combined
                continue
        best = single
    return best
