"""The statistical rules of `check_distribution`, applied to each view of a distribution.

A view is the distribution on its whole support, or truncated by gmhf's own `truncate` (as a spec's
`shift … in`, `require` and physical bounds truncate it) to the central half of its draws, to a far
tail of an unbounded end (where the density has dropped by `TAIL_DROP` nats from the median's), or
to an interval the caller names. Every view is drawn with a fixed seed and compared with its own
density and CDF; each rule is a test at level `ALPHA`, so a check passes or fails the same way on
every run. scipy supplies the quadrature and the chi-square quantiles (imported on first use).
"""

from __future__ import annotations

import math
import struct
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from gmhf.core import distributions as D
from gmhf.testing._violations import Violations, same

__all__ = ["ALPHA", "check_views"]

#: Level of every statistical rule: a correct distribution fails one with probability about 1e-3.
ALPHA = 1e-3
#: KS statistic bound for draws against their own CDF at level ALPHA: sqrt(ln(2 / ALPHA) / 2) / sqrt(n).
KS_CRITICAL = 1.95
#: Relative tolerance between exp(log_prob) and the slope of the `cdf` (median over the deciles).
DENSITY_TOLERANCE = 0.03
#: |∫ exp(log_prob) − 1| over a view's support: quad's error is ~1e-10 per piece; the rest is room for a
#: density whose mass sits below float64's smallest number (beta(0.01, 1) puts 6e-4 below 5e-324).
MASS_TOLERANCE = 2e-3
#: The far tail starts where log_prob is this many nats below its value at the median (10σ for a normal).
TAIL_DROP = 50.0
#: CDF values binning the draws for the tail-sensitive chi-square (a cut 1% tail empties the top bins).
U_EDGES = (0.0, 1e-3, 1e-2, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)
#: Quantiles of the draws that split a view's support into pieces for the quadrature.
PIECES = (1e-3, 1e-2, 0.1, 0.5, 0.9, 0.99, 0.999)
#: A view is discrete when its draws take at most n / DISTINCT_RATIO distinct values (and exp(log_prob) sums to <= 1
#: over them); a continuous view must take at least that many, or one in DISTINCT_RATIO of its floats.
DISTINCT_RATIO = 4


def check_views(dist: Any, draws: Tensor, truncations: Sequence[tuple[float, float]], samples: int, seed: int,
                v: Violations) -> None:
    """Run the statistical rules on the whole distribution (its `draws`) and on each truncated view."""
    from scipy import stats  # noqa: F401  (fail here, before any rule, when scipy is missing)

    _check_view(dist, "", draws, v)
    for label, low, high in _views(dist, draws, truncations):
        try:
            view = D.truncate(dist, low, high)
        except (D.EmptyTruncation, ValueError, ArithmeticError) as error:
            mass = _integral(_density(dist), low, high)[0]
            v.require(not mass > 0, f"{label}: truncating to [{low:.9g}, {high:.9g}] fails ({error}) although "
                      f"exp(log_prob) has mass {mass:.3g} there")
            continue
        view_draws = torch.as_tensor(view.sample(samples, torch.Generator().manual_seed(seed)))
        if v.require(tuple(view_draws.shape) == (samples,), f"{label}: `sample` returns shape "
                     f"{tuple(view_draws.shape)}, not ({samples},)"):
            _check_view(view, f"{label} [{view.low:.9g}, {view.high:.9g}]: ", view_draws.to(D.DTYPE), v)


def _views(dist: Any, draws: Tensor, truncations: Sequence[tuple[float, float]]) -> list[tuple[str, float, float]]:
    ordered = draws.sort().values
    n = len(ordered)
    low_q, mid, high_q = (float(ordered[int(p * (n - 1))]) for p in (0.25, 0.5, 0.75))
    out = [("on the central interval", low_q, high_q)] if low_q < high_q else []
    if hasattr(dist, "cdf") and hasattr(dist, "icdf"):  # gmhf truncates by rejection otherwise: no far tails
        scale = high_q - low_q if high_q > low_q else max(abs(mid), 1.0) * 1e-3
        for side, end in ((-1.0, dist.low), (1.0, dist.high)):
            start = _far_point(dist, mid, scale, side) if math.isinf(end) else None
            if start is not None:
                other = start + 0.1 * (start - mid)
                out.append((f"on the far {'upper' if side > 0 else 'lower'} tail", min(start, other), max(start, other)))
    out.extend((f"truncated to [{a:.9g}, {b:.9g}]", float(a), float(b)) for a, b in truncations)
    return out


def _far_point(dist: Any, mid: float, scale: float, side: float) -> float | None:
    """Where log_prob has dropped TAIL_DROP nats below its value at `mid`, searching outward."""
    def logp(x: float) -> float:
        return float(dist.log_prob(torch.tensor([x], dtype=D.DTYPE))[0])

    floor = logp(mid) - TAIL_DROP
    near = mid
    for k in range(64):
        far = mid + side * scale * 2.0**k
        if not math.isfinite(far):
            return None
        if not logp(far) > floor:
            break
        near = far
    else:
        return None
    for _ in range(60):  # bisect; -inf counts as below the floor
        half = 0.5 * (near + far)
        near, far = (half, far) if logp(half) > floor else (near, half)
    return near


def _check_view(dist: Any, label: str, draws: Tensor, v: Violations) -> None:
    low, high = float(dist.low), float(dist.high)
    n = len(draws)
    outside = ~((draws >= low) & (draws <= high))
    if not v.require(not bool(outside.any()), lambda: f"{label}{int(outside.sum())} of {n} draws leave the support "
                     f"[{low:.9g}, {high:.9g}], e.g. {float(draws[outside][0]):.9g}"):
        return
    logp = dist.log_prob(draws)
    bad = ~torch.isfinite(logp)
    if not v.require(not bool(bad.any()), lambda: f"{label}`log_prob` must be finite at draws inside the support, "
                     f"e.g. at {float(draws[bad][0]):.9g} it is {float(logp[bad][0])}"):
        return
    values, counts = torch.unique(draws, return_counts=True)
    p = dist.log_prob(values).exp()
    if len(values) * DISTINCT_RATIO <= n and float(p.sum()) <= 1 + 1e-6:
        _frequencies(values, counts, p, label, v)
        return
    available = _floats_between(low, high)
    v.require(len(values) * DISTINCT_RATIO >= min(n, available), f"{label}only {len(values)} distinct values among "
              f"{n} draws (with {min(available, 10**18):.3g} floats in the support): the sampler collapses, or, if "
              f"the distribution is discrete, exp(log_prob) sums to {float(p.sum()):.6g} > 1 over the drawn values")
    ordered = draws.sort().values
    _masses(dist, ordered, label, v)
    if hasattr(dist, "cdf"):
        _against_cdf(dist, ordered, label, v)


def _floats_between(low: float, high: float) -> float:
    if not (math.isfinite(low) and math.isfinite(high)):
        return math.inf

    def ordinal(x: float) -> int:
        i: int = struct.unpack("<q", struct.pack("<d", x))[0]
        return i if i >= 0 else -(i & 0x7FFFFFFFFFFFFFFF)
    return float(ordinal(high) - ordinal(low) + 1)


def _critical(df: int) -> float:
    from scipy import stats
    return float(stats.chi2.isf(ALPHA, df))


def _chi_square(observed: Tensor, expected: Tensor) -> tuple[float, int, int]:
    """(statistic, degrees of freedom, worst cell), cells with expected < 5 pooled so the χ² law holds."""
    small = expected < 5
    if bool(small.any()) and bool((~small).any()):
        pooled_o, pooled_e = observed[small].sum(), expected[small].sum()
        observed, expected = observed[~small], expected[~small]
        if pooled_e < 5:  # still too small for the χ² law: join the smallest cell
            smallest = int(expected.argmin())
            observed, expected = observed.clone(), expected.clone()
            observed[smallest] += pooled_o
            expected[smallest] += pooled_e
        else:
            observed = torch.cat([observed, pooled_o.reshape(1)])
            expected = torch.cat([expected, pooled_e.reshape(1)])
    terms = (observed - expected) ** 2 / expected.clamp_min(1e-300)
    return float(terms.sum()), len(observed) - 1, int(terms.argmax())


def _frequencies(values: Tensor, counts: Tensor, p: Tensor, label: str, v: Violations) -> None:
    """Discrete: the counts of the drawn values (and 0 for the rest of the mass) against n · exp(log_prob)."""
    n = int(counts.sum())
    rest = max(1.0 - float(p.sum()), 0.0)
    observed = torch.cat([counts.to(D.DTYPE), torch.zeros(1, dtype=D.DTYPE)])
    expected = torch.cat([n * p, torch.tensor([n * rest], dtype=D.DTYPE)])
    stat, df, _ = _chi_square(observed, expected)
    if df < 1:
        return
    worst = int(((counts - n * p) ** 2 / (n * p).clamp_min(1e-300)).argmax())
    v.require(stat <= _critical(df), lambda: f"{label}value frequencies do not follow exp(log_prob): chi-square "
              f"{stat:.1f} > {_critical(df):.1f} ({df} degrees of freedom, level {ALPHA:g}); e.g. value "
              f"{float(values[worst]):.9g} is drawn {float(counts[worst]) / n:.4f} of the time but exp(log_prob) is "
              f"{float(p[worst]):.4f}, and the values never drawn hold {rest:.4f}")


def _density(dist: Any) -> Callable[[float], float]:
    def f(x: float) -> float:
        return math.exp(min(float(dist.log_prob(torch.tensor([x], dtype=D.DTYPE))[0]), 709.0))  # no overflow
    return f


def _integral(f: Callable[[float], float], a: float, b: float, scale: float = 1.0) -> tuple[float, float]:
    """∫_a^b f by adaptive quadrature; a piece spanning decades of one sign is integrated in log|x|,
    an unbounded one in steps of `scale` (the spread of the draws) from its finite end."""
    from scipy import integrate

    if not b > a:
        return 0.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a slow convergence shows in the error estimate and the mass rule
        if math.isfinite(a) and math.isfinite(b) and (a > 0 and b > 8 * a or b < 0 and a < 8 * b):
            sign = 1.0 if a > 0 else -1.0
            lo, hi = sorted((math.log(abs(a)), math.log(abs(b))))
            value, error = integrate.quad(lambda y: f(sign * math.exp(y)) * math.exp(y), lo, hi,
                                          epsabs=1e-13, epsrel=1e-10, limit=200)
        elif math.isinf(a) or math.isinf(b):  # from the finite end outward, in units of `scale`
            end, side = (b, -1.0) if math.isinf(a) else (a, 1.0)
            value, error = integrate.quad(lambda y: f(end + side * scale * y) * scale, 0, math.inf,
                                          epsabs=1e-13, epsrel=1e-10, limit=200)
        else:
            value, error = integrate.quad(f, a, b, epsabs=1e-13, epsrel=1e-10, limit=200)
    return float(value), float(error)


def _masses(dist: Any, ordered: Tensor, label: str, v: Violations) -> None:
    """∫ exp(log_prob) over the support is 1, and its pieces between quantiles of the draws hold their share."""
    n = len(ordered)
    cuts = [float(ordered[int(q * (n - 1))]) for q in PIECES]
    scale = max(cuts[-2] - cuts[1], abs(cuts[3]) * 1e-12, 1e-300)
    edges = sorted({float(dist.low), *cuts, float(dist.high)})
    for side in (0, -1):  # an unbounded end gets a finite piece first, one spread wide
        if math.isinf(edges[side]):
            edges.insert(side + 1 if side == 0 else len(edges) - 1, edges[side + 1 if side == 0 else -2]
                         + (-scale if side == 0 else scale))
    f = _density(dist)
    pieces = [_integral(f, a, b, scale) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    mass = sum(m for m, _ in pieces)
    error = sum(e for _, e in pieces)
    if not v.require(abs(mass - 1) <= MASS_TOLERANCE + error, f"{label}exp(log_prob) integrates to {mass:.6g} over "
                     f"the support, not 1 (tolerance {MASS_TOLERANCE:g} + quadrature error {error:.2g})"):
        return
    bounds = torch.tensor(edges, dtype=D.DTYPE)
    index = torch.searchsorted(ordered, bounds, right=True)
    index[0] = 0
    observed = (index[1:] - index[:-1]).to(D.DTYPE)
    expected = n * torch.tensor([m for m, _ in pieces], dtype=D.DTYPE)
    stat, df, worst = _chi_square(observed, expected)
    if df >= 1 and not stat <= _critical(df):
        a, b = edges[worst], edges[worst + 1] if worst + 1 < len(edges) else edges[-1]
        v.require(False, f"{label}the draws do not follow exp(log_prob): chi-square {stat:.1f} > {_critical(df):.1f} "
                  f"over the pieces between quantiles of the draws (level {ALPHA:g}); e.g. [{a:.6g}, {b:.6g}] holds "
                  f"{float(observed[worst]) / n:.4g} of the draws but {float(expected[worst]) / n:.4g} of the mass")


def _against_cdf(dist: Any, ordered: Tensor, label: str, v: Violations) -> None:
    """KS and a tail-weighted chi-square against `cdf`; `cdf` monotone, `icdf` its inverse, `log_prob` its slope."""
    n = len(ordered)
    try:
        cdf = torch.as_tensor(dist.cdf(ordered), dtype=D.DTYPE)
    except (AttributeError, TypeError, RuntimeError):  # RuntimeError covers NotImplementedError
        return
    below = torch.as_tensor(dist.cdf(torch.nextafter(ordered, torch.tensor(-math.inf, dtype=D.DTYPE))),
                            dtype=D.DTYPE)  # F just below each draw: float64 rounding makes atoms
    steps = torch.arange(1, n + 1, dtype=D.DTYPE) / n
    ks = float(torch.maximum(steps - cdf, below - (steps - 1.0 / n)).max())
    v.require(ks <= KS_CRITICAL / math.sqrt(n), f"{label}draws do not follow `cdf`: KS statistic {ks:.4f} > "
              f"{KS_CRITICAL / math.sqrt(n):.4f} (the {ALPHA:.1%} critical value for {n} draws)")
    edges = torch.tensor(U_EDGES, dtype=D.DTYPE)
    index = torch.searchsorted(cdf.contiguous(), edges, right=True)
    index[0], index[-1] = 0, n
    observed = (index[1:] - index[:-1]).to(D.DTYPE)
    stat, df, worst = _chi_square(observed, n * (edges[1:] - edges[:-1]))
    v.require(stat <= _critical(df), lambda: f"{label}draws do not follow `cdf` in its tails: chi-square {stat:.1f} > "
              f"{_critical(df):.1f} over cdf bins {list(U_EDGES)} (level {ALPHA:g}); e.g. cdf in "
              f"[{U_EDGES[worst]:g}, {U_EDGES[worst + 1]:g}] holds {float(observed[worst]) / n:.4g} of the draws")
    v.require(bool((cdf[1:] >= cdf[:-1]).all()) and bool(((cdf >= 0) & (cdf <= 1)).all()),
              f"{label}`cdf` is not non-decreasing within [0, 1]")
    if hasattr(dist, "icdf"):
        back = torch.as_tensor(dist.icdf(cdf), dtype=D.DTYPE)
        worst = int((back - ordered).abs().argmax())
        spread = float(ordered[-1] - ordered[0])
        v.require(same(back, ordered, rtol=1e-6, atol=1e-6 * spread), lambda: f"{label}`icdf(cdf(x))` is not x: "
                  f"x = {float(ordered[worst]):.12g} comes back as {float(back[worst]):.12g}")
    _density_matches_cdf(dist, ordered, label, v)


def _density_matches_cdf(dist: Any, ordered: Tensor, label: str, v: Violations) -> None:
    """The draws can follow `cdf` while `log_prob` is off by a constant: compare the density too.

    At the deciles of the draws, exp(log_prob) must equal the slope of `cdf` (a central difference
    over a thousandth of the distance to the nearest extreme draw); the median ratio must be 1
    within `DENSITY_TOLERANCE` (the median, so that a kink or a singular end does not decide).
    """
    n = len(ordered)
    x = ordered[[n * k // 10 for k in range(1, 10)]]
    h = 1e-3 * torch.minimum(x - ordered[0], ordered[-1] - x)
    x, h = x[h > 0], h[h > 0]
    if not len(x):
        return
    slope = (torch.as_tensor(dist.cdf(x + h), dtype=D.DTYPE) - torch.as_tensor(dist.cdf(x - h), dtype=D.DTYPE)) / (2 * h)
    ratio = float((dist.log_prob(x).exp() / slope).median())
    v.require(abs(ratio - 1) <= DENSITY_TOLERANCE,
              f"{label}exp(log_prob) is {ratio:.3f} times the slope of `cdf` (median over the deciles of the draws); "
              f"`log_prob` and `cdf` disagree (tolerance {DENSITY_TOLERANCE:.0%})")
