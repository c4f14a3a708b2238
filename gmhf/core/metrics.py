"""Metrics of the GMHF loop: sample distances, a TV estimate, the deployment bound and expert agreement.

All functions are pure and batched, compute in float64 and draw randomness only from an explicit
`torch.Generator`.

The bound. For a per-task loss clipped to [0, M] (ℓ_M = min(ℓ, M)) and tasks that are a deterministic function
of θ plus noise with the same law under both distributions,

    E_target[ℓ_M] ≤ E_π[ℓ_M] + M · TV(π_θ, target_θ),

because for any f with values in [0, M], E_P f − E_Q f ≤ M · TV(P, Q), and the data-processing inequality makes
the TV between θ-distributions an upper bound on the TV between the task distributions they induce. The cap is
what makes the shift term finite: without it a single diverged task could make the gap unbounded, and its price
is that the bound speaks about the clipped loss only. `deployment_bound` adds one-sided Hoeffding terms for the
two Monte Carlo estimates (the mean clipped loss and the TV estimate), each at δ/2, so the bound holds with
probability ≥ 1 − δ. docs/method.md ("The bound") has the long form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from gmhf.errors import UsageError

__all__ = [
    "MMD",
    "Bound",
    "Estimate",
    "agreement",
    "deployment_bound",
    "median_bandwidth",
    "mmd",
    "per_factor_wasserstein",
    "total_variation",
    "wasserstein_1d",
]

#: Rows per sample that `mmd` keeps; the kernel matrices cost O((n + m)²).
MAX_POINTS = 1024
#: Expert answers `agreement` understands; 'unsure' is skipped.
ANSWERS = ("accept", "reject", "unsure")


@dataclass(frozen=True)
class MMD:
    """A squared MMD estimate, the RBF bandwidth it used and the rows it compared (after dropping and subsampling)."""

    value: float
    bandwidth: float
    n: int
    m: int


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo mean with its standard error over `n` samples."""

    value: float
    stderr: float
    n: int


@dataclass(frozen=True)
class Bound:
    """The deployment bound `value = train_term + shift_term + slack`, for losses clipped at `cap`, confidence 1 − δ."""

    value: float
    train_term: float
    shift_term: float
    slack: float
    cap: float
    delta: float

    def as_dict(self) -> dict[str, float]:
        """The fields as plain floats, for logs and reports."""
        return {key: float(val) for key, val in asdict(self).items()}


def _rows(x: Tensor, name: str) -> Tensor:
    """`[n, ...]` -> finite rows of `[n, d]` float64 (flattened trailing dims)."""
    if x.ndim < 1 or x.shape[0] == 0:
        raise UsageError(f"`{name}` must have shape [n, ...] with n ≥ 1, got {tuple(x.shape)}.")
    flat = x.detach().to(torch.float64).reshape(x.shape[0], -1)
    return flat[torch.isfinite(flat).all(dim=1)]


def _subsample(x: Tensor, max_points: int, generator: torch.Generator) -> Tensor:
    if x.shape[0] <= max_points:
        return x
    return x[torch.randperm(x.shape[0], generator=generator)[:max_points]]


def median_bandwidth(pooled: Tensor) -> float:
    """Median heuristic: the median of the pairwise Euclidean distances i < j of `pooled` [n, d], zeros excluded.

    The median of an even count is the mean of the two middle values (as numpy's). When every distance is zero
    the samples are one point and any bandwidth gives MMD 0; 1.0 is returned.
    """
    dist = torch.pdist(pooled.to(torch.float64))
    dist = dist[dist > 0]
    if dist.numel() == 0:
        return 1.0
    ordered = torch.sort(dist).values
    k = ordered.numel()
    return float((ordered[(k - 1) // 2] + ordered[k // 2]) / 2)


def mmd(
    x: Tensor,
    y: Tensor,
    *,
    bandwidth: float | None = None,
    max_points: int = MAX_POINTS,
    generator: torch.Generator | None = None,
) -> MMD:
    """Squared maximum mean discrepancy between samples `x` [n, ...] and `y` [m, ...], RBF kernel.

    The unbiased U-statistic MMD²_u, with k(a, b) = exp(−|a − b|² / (2h²)) on rows flattened to [n, d] (so
    trajectories [n, t] or [n, t, 2] work). Being unbiased it can be slightly negative when the two distributions
    are equal; its scale under equality is O(1/n). Rows with a non-finite value are dropped silently (the
    returned `n`, `m` count the rows used). Each sample is then subsampled to `max_points` rows with `generator`
    (default: a fresh one seeded 0, so repeated calls agree). When `bandwidth` is None, h is the median of the
    pairwise Euclidean distances of the pooled sample x ∪ y, zeros excluded (`median_bandwidth`).

    Example:
        >>> mmd(torch.randn(500, 2), torch.randn(500, 2) + 1.0).value  # clearly > 0
    """
    if bandwidth is not None and not (math.isfinite(bandwidth) and bandwidth > 0):
        raise UsageError(f"`bandwidth` must be a positive finite float or None, got {bandwidth!r}.")
    if max_points < 2:
        raise UsageError(f"`max_points` must be at least 2, got {max_points!r}.")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    xs = _subsample(_rows(x, "x"), max_points, gen)
    ys = _subsample(_rows(y, "y"), max_points, gen)
    if xs.shape[1] != ys.shape[1]:
        raise UsageError(f"`x` and `y` rows differ in size: {xs.shape[1]} and {ys.shape[1]}.")
    n, m = xs.shape[0], ys.shape[0]
    if n < 2 or m < 2:
        raise UsageError(f"`mmd` needs at least 2 finite rows in each sample, got {n} and {m}.")
    h = median_bandwidth(torch.cat([xs, ys])) if bandwidth is None else float(bandwidth)
    gamma = 1.0 / (2.0 * h * h)
    kxx = torch.exp(-gamma * torch.cdist(xs, xs).square())
    kyy = torch.exp(-gamma * torch.cdist(ys, ys).square())
    kxy = torch.exp(-gamma * torch.cdist(xs, ys).square())
    # The diagonal of k(a, a) is exactly 1; leaving it out is what makes the estimator unbiased.
    term_x = (kxx.sum() - n) / (n * (n - 1))
    term_y = (kyy.sum() - m) / (m * (m - 1))
    value = term_x + term_y - 2.0 * kxy.mean()
    return MMD(value=float(value), bandwidth=h, n=n, m=m)


def _finite_1d(x: Tensor, name: str) -> Tensor:
    if x.ndim != 1:
        raise UsageError(f"`{name}` must have shape [n], got {tuple(x.shape)}.")
    x = x.detach().to(torch.float64)
    x = x[torch.isfinite(x)]
    if x.numel() == 0:
        raise UsageError(f"`{name}` has no finite value.")
    return x


def wasserstein_1d(x: Tensor, y: Tensor) -> float:
    """Exact W1 between the empirical distributions of `x` [n] and `y` [m] (sizes may differ).

    W1 = ∫ |F_x(t) − F_y(t)| dt, integrated exactly over the sorted merge of both samples, where both empirical
    CDFs are step functions. Non-finite values are dropped, as in `mmd`.
    """
    xs = torch.sort(_finite_1d(x, "x")).values
    ys = torch.sort(_finite_1d(y, "y")).values
    merged = torch.sort(torch.cat([xs, ys])).values
    widths = merged[1:] - merged[:-1]
    cdf_x = torch.searchsorted(xs, merged[:-1], right=True).to(torch.float64) / xs.numel()
    cdf_y = torch.searchsorted(ys, merged[:-1], right=True).to(torch.float64) / ys.numel()
    return float(((cdf_x - cdf_y).abs() * widths).sum())


def per_factor_wasserstein(x: Tensor, y: Tensor, names: Sequence[str]) -> dict[str, float]:
    """W1 per column of two θ tables `x` [n, k] and `y` [m, k], keyed by factor name (marginals only)."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or x.shape[1] != len(names):
        raise UsageError(f"`x` [n, k] and `y` [m, k] need k = len(names) = {len(names)}, "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}.")
    return {name: wasserstein_1d(x[:, j], y[:, j]) for j, name in enumerate(names)}


def total_variation(log_p_on_q: Tensor, log_q_on_q: Tensor) -> Estimate:
    """Monte Carlo TV(P, Q) from samples of Q: the mean of max(0, 1 − p/q) over `n` draws, with its stderr.

    Args:
        log_p_on_q: log p at the draws of Q, [n]; −inf where p = 0 (that draw counts 1).
        log_q_on_q: log q at the same draws, [n]; finite, since the draws come from Q.

    Each term is in [0, 1], computed as −expm1(min(0, log p − log q)) so ratios near 1 keep their precision.
    """
    if log_p_on_q.ndim != 1 or log_p_on_q.shape != log_q_on_q.shape or log_p_on_q.shape[0] < 2:
        raise UsageError(f"`log_p_on_q` and `log_q_on_q` must both have shape [n] with n ≥ 2, "
                         f"got {tuple(log_p_on_q.shape)} and {tuple(log_q_on_q.shape)}.")
    log_p = log_p_on_q.detach().to(torch.float64)
    log_q = log_q_on_q.detach().to(torch.float64)
    if not bool(torch.isfinite(log_q).all()) or bool(torch.isnan(log_p).any()):
        raise UsageError("`log_q_on_q` must be finite and `log_p_on_q` free of NaN (draws of Q have q > 0).")
    terms = -torch.expm1(torch.clamp(log_p - log_q, max=0.0))
    n = terms.numel()
    return Estimate(value=float(terms.mean()), stderr=float(terms.std() / math.sqrt(n)), n=n)


def deployment_bound(train_losses: Tensor, tv: Estimate, *, cap: float, delta: float = 0.05) -> Bound:
    """Upper bound on the target risk E_target[min(ℓ, cap)], holding with probability ≥ 1 − δ.

    value = mean(clip(train_losses, 0, cap)) + cap · tv.value + slack, where slack is
    cap · sqrt(log(2/δ) / (2n)) + cap · sqrt(log(2/δ) / (2 tv.n)): one-sided Hoeffding at δ/2 for each estimate.

    Args:
        train_losses: losses of the deployed model on tasks drawn from π, [n]; these must be held out (not the
            tasks it trained on) for the bound to hold. NaN and +inf (diverged tasks) count as `cap`.
        tv: `total_variation` estimate of TV(π_θ, target_θ).
        cap: the clip M > 0; the bound is about the clipped loss only.
        delta: failure probability in (0, 1).
    """
    if not (math.isfinite(cap) and cap > 0):
        raise UsageError(f"`cap` must be a positive finite float, got {cap!r}.")
    if not 0.0 < delta < 1.0:
        raise UsageError(f"`delta` must be in (0, 1), got {delta!r}.")
    if train_losses.ndim != 1 or train_losses.shape[0] == 0:
        raise UsageError(f"`train_losses` must have shape [n] with n ≥ 1, got {tuple(train_losses.shape)}.")
    if tv.n < 1:
        raise UsageError(f"`tv.n` must be at least 1, got {tv.n!r}.")
    losses = train_losses.detach().to(torch.float64)
    losses = torch.nan_to_num(losses, nan=cap, posinf=cap).clamp(0.0, cap)
    n = losses.numel()
    log_term = math.log(2.0 / delta)
    train_term = float(losses.mean())
    shift_term = cap * min(max(tv.value, 0.0), 1.0)
    slack = cap * math.sqrt(log_term / (2 * n)) + cap * math.sqrt(log_term / (2 * tv.n))
    return Bound(value=train_term + shift_term + slack, train_term=train_term, shift_term=shift_term,
                 slack=slack, cap=float(cap), delta=float(delta))


def agreement(answers: Sequence[str], truth_labels: Sequence[bool]) -> float | None:
    """Fraction of sure answers ('accept', 'reject') that match the truth's plausibility; None when none is sure.

    'accept' matches a True label and 'reject' a False one; 'unsure' is skipped.
    """
    if len(answers) != len(truth_labels):
        raise UsageError(f"`answers` and `truth_labels` differ in length: {len(answers)} and {len(truth_labels)}.")
    unknown = sorted({a for a in answers if a not in ANSWERS})
    if unknown:
        raise UsageError(f"`answers` must be one of {ANSWERS}, got {unknown!r}.")
    sure = [(a == "accept") == bool(t) for a, t in zip(answers, truth_labels, strict=True) if a != "unsure"]
    return sum(sure) / len(sure) if sure else None
