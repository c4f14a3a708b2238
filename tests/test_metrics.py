"""Metrics of the GMHF loop: MMD, W1, the TV estimate, the deployment bound and expert agreement."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from gmhf.core.metrics import (
    MMD,
    Bound,
    Estimate,
    agreement,
    deployment_bound,
    median_bandwidth,
    mmd,
    per_factor_wasserstein,
    total_variation,
    wasserstein_1d,
)
from gmhf.errors import UsageError

F64 = torch.float64


def _normal(n: int, seed: int, shift: float = 0.0, d: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64) + shift


def _log_normal(theta: torch.Tensor, mean: float) -> torch.Tensor:
    return -0.5 * (theta - mean) ** 2 - 0.5 * math.log(2 * math.pi)


# ---- MMD ----


def test_mmd_of_one_distribution_is_near_zero() -> None:
    """Two samples of N(0, I₂), n = m = 500: |MMD²_u| < 0.005.

    Over 200 seeds the null MMD²_u had mean ≈ −1e−4 and sd ≈ 1e−3 (max |value| 4e−3), so 0.005 is about 5 sd.
    """
    result = mmd(_normal(500, 1), _normal(500, 2))
    assert isinstance(result, MMD)
    assert abs(result.value) < 0.005
    assert (result.n, result.m) == (500, 500)


def test_mmd_grows_with_the_shift() -> None:
    """A shift of 0.5 already gives ≈ 0.06 (60 null sd); the value increases with the shift."""
    x = _normal(500, 1)
    values = [mmd(x, _normal(500, 2, shift)).value for shift in (0.5, 1.0, 2.0)]
    assert values[0] > 0.03
    assert values == sorted(values)


def test_median_bandwidth_matches_a_hand_computation() -> None:
    """Pooled {0, 1, 7} ∪ {3, 7}: nonzero distances 1,2,3,4,4,6,6,7,7 (the 7–7 zero left out), median 4."""
    x = torch.tensor([[0.0], [1.0], [7.0]], dtype=F64)
    y = torch.tensor([[3.0], [7.0]], dtype=F64)
    assert mmd(x, y).bandwidth == 4.0
    # An even count takes the mean of the two middle values: {1, 2, 3, 4, 6, 7} -> 3.5.
    assert median_bandwidth(torch.tensor([[0.0], [1.0], [3.0], [7.0]])) == 3.5


def test_mmd_equals_the_u_statistic_written_out() -> None:
    """The vectorised estimator equals the double sum over i ≠ j, with a given bandwidth."""
    x, y = _normal(7, 3), _normal(5, 4, 0.3)
    h = 0.8

    def k(a: torch.Tensor, b: torch.Tensor) -> float:
        return math.exp(-float(((a - b) ** 2).sum()) / (2 * h * h))

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    assert mmd(x, y, bandwidth=h).value == pytest.approx(xx + yy - 2 * xy, abs=1e-12)


def test_mmd_flattens_trailing_dims_and_drops_non_finite_rows() -> None:
    """[n, t, 2] trajectories compare as [n, 2t] rows; a row with a NaN or inf is left out."""
    x, y = _normal(40, 5, d=6), _normal(30, 6, 0.5, d=6)
    flat = mmd(x, y)
    assert mmd(x.reshape(40, 3, 2), y.reshape(30, 3, 2)) == flat
    dirty = torch.cat([x, torch.full((1, 6), float("nan"), dtype=F64), torch.full((1, 6), math.inf, dtype=F64)])
    assert mmd(dirty, y) == flat


def test_mmd_subsamples_deterministically() -> None:
    """Above `max_points`, the default generator (seed 0) gives the same value every call; a generator is used."""
    x, y = _normal(300, 7), _normal(300, 8, 0.5)
    first = mmd(x, y, max_points=100)
    assert (first.n, first.m) == (100, 100)
    assert mmd(x, y, max_points=100) == first
    assert mmd(x, y, max_points=100, generator=torch.Generator().manual_seed(0)) == first
    assert mmd(x, y, max_points=100, generator=torch.Generator().manual_seed(1)) != first


def test_mmd_rejects_bad_arguments() -> None:
    """Bad bandwidth, mismatched row sizes and too few rows are usage errors."""
    with pytest.raises(UsageError, match="bandwidth"):
        mmd(_normal(5, 1), _normal(5, 2), bandwidth=0.0)
    with pytest.raises(UsageError, match="differ in size"):
        mmd(_normal(5, 1, d=2), _normal(5, 2, d=3))
    with pytest.raises(UsageError, match="at least 2"):
        mmd(_normal(1, 1), _normal(5, 2))


# ---- Wasserstein ----


@pytest.mark.parametrize("seed", range(5))
def test_wasserstein_1d_matches_scipy(seed: int) -> None:
    """Random samples of unequal sizes (with ties): W1 equals scipy's to 1e-12."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(37 + seed, generator=g, dtype=F64)
    y = torch.cat([torch.randn(101, generator=g, dtype=F64) * 2 + 0.5, x[:3]])
    expected = stats.wasserstein_distance(x.numpy(), y.numpy())
    assert wasserstein_1d(x, y) == pytest.approx(expected, abs=1e-12)


def test_per_factor_wasserstein_keys_columns_by_name() -> None:
    """Each factor's W1 is that of its column; a shift of 1 in one factor shows there alone."""
    x = _normal(2000, 1)
    y = _normal(3000, 2) + torch.tensor([1.0, 0.0], dtype=F64)
    result = per_factor_wasserstein(x, y, ["alpha", "delta"])
    assert list(result) == ["alpha", "delta"]
    assert result["alpha"] == pytest.approx(1.0, abs=0.1)  # sampling error of W1 at these sizes is ≈ 0.03
    assert result["delta"] < 0.1
    with pytest.raises(UsageError, match="len"):
        per_factor_wasserstein(x, y, ["alpha"])


# ---- total variation ----


def test_total_variation_of_two_normals() -> None:
    """N(1, 1) vs N(0, 1) from 20000 draws of the second: within 3 stderr of 2Φ(0.5) − 1."""
    theta = _normal(20000, 11, d=1)[:, 0]
    tv = total_variation(_log_normal(theta, 1.0), _log_normal(theta, 0.0))
    exact = 2 * stats.norm.cdf(0.5) - 1
    assert tv.n == 20000
    assert abs(tv.value - exact) < 3 * tv.stderr


def test_total_variation_of_identical_and_disjoint() -> None:
    """P = Q gives exactly 0; p = 0 on every draw of Q (log p = −inf) gives exactly 1."""
    theta = _normal(100, 12, d=1)[:, 0]
    log_q = _log_normal(theta, 0.0)
    assert total_variation(log_q, log_q) == Estimate(value=0.0, stderr=0.0, n=100)
    disjoint = total_variation(torch.full_like(log_q, -math.inf), log_q)
    assert (disjoint.value, disjoint.stderr) == (1.0, 0.0)
    with pytest.raises(UsageError, match="finite"):
        total_variation(log_q, torch.full_like(log_q, -math.inf))


# ---- the bound ----


def _bound_case(loss, target_mean: float, *, cap: float, seed: int) -> tuple[Bound, float]:
    """π = N(0, 1), target = N(target_mean, 1) over θ; returns the bound and E_target[ℓ_M] from 10⁶ draws."""
    theta_pi = _normal(20000, seed, d=1)[:, 0]
    tv = total_variation(_log_normal(theta_pi, target_mean), _log_normal(theta_pi, 0.0))
    bound = deployment_bound(loss(_normal(20000, seed + 1, d=1)[:, 0]), tv, cap=cap)
    truth = float(loss(_normal(10**6, seed + 2, target_mean, d=1)[:, 0]).clamp(0, cap).mean())
    return bound, truth


def test_the_bound_holds_for_a_smooth_loss() -> None:
    """ℓ(θ) = θ², clipped at 4, target shifted by 1: the bound exceeds the target risk."""
    bound, truth = _bound_case(lambda t: t**2, 1.0, cap=4.0, seed=20)
    assert bound.value >= truth
    assert bound.value == pytest.approx(bound.train_term + bound.shift_term + bound.slack)


def test_the_bound_is_tight_for_the_worst_loss() -> None:
    """ℓ = M·1[θ > 0.5] attains E_target − E_π = M·TV: train + shift matches the target risk.

    Tolerance 0.1: each term's Monte Carlo sd is ≈ 4 · 0.5 / √20000 ≈ 0.014, so 0.1 is ≈ 5 sd of their sum.
    """
    bound, truth = _bound_case(lambda t: 4.0 * (t > 0.5).to(F64), 1.0, cap=4.0, seed=30)
    assert bound.value >= truth
    assert bound.train_term + bound.shift_term == pytest.approx(truth, abs=0.1)


def test_the_shift_term_vanishes_when_pi_is_the_target() -> None:
    """π = target gives a zero shift term; it shrinks as the target moves towards π."""
    shifts = [deployment_bound(torch.zeros(10), _tv_at(s), cap=2.0).shift_term for s in (1.0, 0.3, 0.0)]
    assert shifts[0] > shifts[1] > shifts[2] == 0.0


def _tv_at(shift: float) -> Estimate:
    theta = _normal(5000, 40, d=1)[:, 0]
    return total_variation(_log_normal(theta, shift), _log_normal(theta, 0.0))


def test_bound_clips_losses_and_counts_diverged_tasks_as_cap() -> None:
    """Losses above the cap, inf and NaN count as the cap; negatives as 0; slack is the two Hoeffding terms."""
    tv = Estimate(value=0.1, stderr=0.01, n=400)
    bound = deployment_bound(torch.tensor([5.0, math.inf, math.nan, -1.0]), tv, cap=2.0, delta=0.1)
    assert bound.train_term == pytest.approx(6.0 / 4)
    assert bound.shift_term == pytest.approx(0.2)
    log_term = math.log(2 / 0.1)
    assert bound.slack == pytest.approx(2 * math.sqrt(log_term / 8) + 2 * math.sqrt(log_term / 800))
    assert bound.as_dict() == {"value": bound.value, "train_term": 1.5, "shift_term": bound.shift_term,
                               "slack": bound.slack, "cap": 2.0, "delta": 0.1}
    with pytest.raises(UsageError, match="cap"):
        deployment_bound(torch.zeros(3), tv, cap=0.0)
    with pytest.raises(UsageError, match="delta"):
        deployment_bound(torch.zeros(3), tv, cap=1.0, delta=1.0)


# ---- agreement ----


def test_agreement_counts_sure_answers_only() -> None:
    """Accept matches a plausible truth, reject an implausible one; unsure is skipped; no sure answer gives None."""
    answers = ["accept", "reject", "unsure", "accept", "reject"]
    truth = [True, True, False, False, False]
    assert agreement(answers, truth) == pytest.approx(2 / 4)
    assert agreement(["unsure", "unsure"], [True, False]) is None
    assert agreement([], []) is None
    with pytest.raises(UsageError, match="maybe"):
        agreement(["maybe"], [True])
    with pytest.raises(UsageError, match="length"):
        agreement(["accept"], [True, False])
