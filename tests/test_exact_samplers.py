"""The built-in continuous distributions sample exactly, with an exact `log_prob`, or refuse their parameters.

Each test pins one defect an audit against scipy.stats found (issue 12). Draws use fixed seeds, so the
tests are deterministic; the tolerances say how far off a sampler would have to be to fail:
* KS tests use a p-value floor of 1e-3 (the broken samplers gave p between 1e-85 and 1e-13);
* "distinct values" asks for 99 % of draws to differ (a continuous law repeats none; the broken
  ones gave fewer than 200 distinct values in 200,000);
* integrals of exp(log_prob) over the support use `scipy.integrate.quad` and a tolerance of 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import gmhf
from gmhf.core import distributions as D
from gmhf.plugins.manager import PluginHost

N = 200_000
KS_FLOOR = 1e-3


def draws(dist: D.Distribution1D, n: int = N, seed: int = 0) -> torch.Tensor:
    return dist.sample(n, torch.Generator().manual_seed(seed))


def ks(sample: torch.Tensor, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    """The KS test's p-value, aware of ties: a value drawn many times is mass rounded to that float64
    (below the smallest positive one, within 1e-16 of 1), so there only the empirical CDF's value
    after the tie is compared. Without ties this is exactly the KS statistic."""
    values, counts = np.unique(sample.numpy(), return_counts=True)
    after = np.cumsum(counts) / len(sample)
    before = after - counts / len(sample)
    f = cdf(values)
    d = max(float(np.abs(after - f).max()), float(np.abs(before - f)[counts == 1].max(initial=0.0)))
    return float(stats.kstwo.sf(d, len(sample)))


def mass(dist: D.Distribution1D, low: float, high: float) -> float:
    """∫ exp(log_prob) over [low, high] (quad, with the interval rescaled to [0, 1] for tiny supports)."""
    def density(t: float) -> float:
        x = torch.tensor([low + t * (high - low)], dtype=D.DTYPE)
        return float(dist.log_prob(x).exp()[0]) * (high - low)
    return float(integrate.quad(density, 0.0, 1.0, epsabs=0, epsrel=1e-10, limit=200)[0])


def distinct(sample: torch.Tensor) -> float:
    return len(torch.unique(sample)) / len(sample)


# ------------------------------------------------------------------ beta
def test_beta_with_a_small_shape_matches_scipy() -> None:
    """beta(0.2, 2) follows scipy's beta (it gave KS p = 3e-13)."""
    assert ks(draws(D.beta((0.2, 2.0))), stats.beta(0.2, 2).cdf) > KS_FLOOR


def test_beta_with_a_tiny_shape_has_the_right_mean() -> None:
    """beta(0.01, 1) has mean a / (a + b) = 0.0099 (it gave 0.059).

    The standard deviation is 0.070, so the standard error of 200,000 draws is 1.6e-4; the
    tolerance 1e-3 is six of them.
    """
    assert abs(float(draws(D.beta((0.01, 1.0))).mean()) - 0.01 / 1.01) < 1e-3


@pytest.mark.parametrize(("a", "b"), [(1e-2, 1e-2), (1e-2, 1e6), (1e6, 1e-2), (1e6, 1e6), (0.5, 0.5)])
def test_beta_matches_scipy_at_the_ends_of_its_range(a: float, b: float) -> None:
    """At the corners of the documented range the draws are finite, inside [0, 1] and follow scipy."""
    x = draws(D.beta((a, b)), n=20_000)
    assert bool(((x >= 0) & (x <= 1)).all())
    assert ks(x, stats.beta(a, b).cdf) > KS_FLOOR


def test_beta_truncated_to_a_lower_tail_is_exact() -> None:
    """beta(2, 2) on (0, 1e-6): KS against scipy and ∫ exp(log_prob) = 1 (they were 5e-85 and 0.97)."""
    truth = stats.beta(2, 2)
    dist = D.truncate(D.beta((2.0, 2.0)), 0.0, 1e-6)
    assert ks(draws(dist), lambda x: truth.cdf(x) / truth.cdf(1e-6)) > KS_FLOOR
    assert mass(dist, 0.0, 1e-6) == pytest.approx(1.0, abs=1e-6)


def test_beta_truncated_to_an_upper_tail_is_continuous() -> None:
    """beta(2, 50) on (0.5, 1): no repeated values, nothing at 0.5, KS against scipy's survival function.

    (It gave 175 distinct values in 200,000 draws and 606 draws of exactly 0.5.)
    """
    truth = stats.beta(2, 50)
    dist = D.truncate(D.beta((2.0, 50.0)), 0.5, 1.0)
    x = draws(dist)
    assert distinct(x) > 0.99 and bool((x > 0.5).all())
    assert ks(x, lambda v: 1 - truth.sf(v) / truth.sf(0.5)) > KS_FLOOR
    assert mass(dist, 0.5, 1.0) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("a", "b"), [(0.1, 0.1), (50.0, 0.2)])
def test_beta_cdf_and_log_prob_agree_with_scipy_and_each_other(a: float, b: float) -> None:
    """At the deciles, `cdf` and exp(`log_prob`) equal scipy's (rtol 1e-9) and the CDF's slope (rtol 1e-4).

    They disagreed by 15 % (beta(0.1, 0.1)) and 5.5 % (beta(50, 0.2)). The slope is a central
    difference with a step h of 1e-4 of the distance d to the nearer end: its truncation error is
    ~(h/d)² = 1e-8, its rounding error 1e-16 / h ≤ 2e-5 (the 9th decile of beta(0.1, 0.1) is 1 − 9e-8).
    """
    dist, truth = D.beta((a, b)), stats.beta(a, b)
    x = torch.from_numpy(truth.ppf(np.linspace(0.1, 0.9, 9)))
    assert np.allclose(dist.cdf(x).numpy(), truth.cdf(x.numpy()), rtol=1e-9, atol=0)
    density = dist.log_prob(x).exp()
    assert np.allclose(density.numpy(), truth.pdf(x.numpy()), rtol=1e-9, atol=0)
    h = 1e-4 * torch.minimum(x, 1 - x)
    slope = (dist.cdf(x + h) - dist.cdf(x - h)) / (2 * h)
    assert np.allclose(slope.numpy(), density.numpy(), rtol=1e-4, atol=0)


def test_beta_outside_its_range_is_refused_with_the_range(toy_plugins: PluginHost) -> None:
    """beta(1e300, 1e300) (it gave NaN draws) is a spec error and a ValueError, both naming the range."""
    assert toy_plugins.registry.distributions["beta"].validate((1e300, 1e300)) is not None
    with pytest.raises(gmhf.SpecError, match=r"`a` must be in \[0.01, 1e\+06\]"):
        gmhf.load("domain sinusoid\nprior noise ~ beta(1e300, 1e300)")
    with pytest.raises(ValueError, match=r"`b` must be in \[0.01, 1e\+06\]"):
        D.beta((2.0, 1e-3))


# ------------------------------------------------------------------ normal and lognormal tails
def test_normal_far_in_an_upper_tail_follows_scipy() -> None:
    """`shift amplitude in 4 .. 8` with `normal(0, 0.5)` (8σ to 16σ): KS and ∫ = 1.

    It drew nothing below 4.0011 (1.7 % of the law lies there), with KS p = 1e-60 and ∫ = 1.019.
    """
    g = gmhf.load("domain sinusoid\nshift amplitude in 4 .. 8\nprior amplitude ~ normal(0, 0.5)")
    x = g.sample(N, seed=0)["amplitude"]
    assert ks(x, stats.truncnorm(8, 16, loc=0, scale=0.5).cdf) > KS_FLOOR
    assert float((x < 4.0011).double().mean()) > 0.01
    assert mass(g.marginals["amplitude"], 4.0, 8.0) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("z", [10.0, 20.0, 30.0, 38.0])
def test_normal_truncated_tens_of_sigmas_out_is_exact(z: float) -> None:
    """normal(0, 1) on [z, z + 1] and [−z − 1, −z]: loads (it was refused from 8.4σ), KS and ∫ = 1."""
    for low, high in ((z, z + 1), (-z - 1, -z)):
        dist = D.truncate(D.Normal(0.0, 1.0), low, high)
        x = draws(dist, n=50_000)
        assert bool(((x > low) & (x < high)).all())
        assert ks(x, stats.truncnorm(low, high).cdf) > KS_FLOOR
        near = (low, low + 40 / z) if low > 0 else (high - 40 / z, high)  # all but e^-40 of the mass
        assert mass(dist, *near) == pytest.approx(1.0, abs=1e-6)


def test_a_prior_ten_sigmas_outside_the_shift_loads_and_is_exact() -> None:
    """`normal(0, 0.5)` on `5 .. 8` (10σ out, mass 8e-24) is sampled, not refused."""
    g = gmhf.load("domain sinusoid\nshift amplitude in 5 .. 8\nprior amplitude ~ normal(0, 0.5)")
    assert ks(g.sample(50_000, seed=0)["amplitude"], stats.truncnorm(10, 16, loc=0, scale=0.5).cdf) > KS_FLOOR


def test_an_offset_and_scaled_normal_keeps_its_exact_tail() -> None:
    """`shift mass by *0.5` of a normal(50, 10) source with `require mass > 65` is normal(25, 5) from 8σ.

    Affine had no survival function, so the upper tail rounded to a handful of values (KS p = 2e-15).
    """
    g = gmhf.load("domain toy\nshift mass by *0.5\nrequire mass > 65")
    x = g.sample(N, seed=0)["mass"]
    assert distinct(x) > 0.99
    assert ks(x, stats.truncnorm(8, 15, loc=25, scale=5).cdf) > KS_FLOOR
    direct = D.truncate(D.Affine(D.Normal(50.0, 10.0), 0.0, 0.5), 65.0, 100.0)
    assert ks(draws(direct), stats.truncnorm(8, 15, loc=25, scale=5).cdf) > KS_FLOOR


# ------------------------------------------------------------------ supports tiny for their distribution
def test_a_very_wide_normal_on_the_bounds_is_uniform_to_rounding() -> None:
    """`normal(5, 1e15)` on amplitude's [0, 10] is uniform there to 1e-28 (it gave 55 distinct values)."""
    g = gmhf.load("domain sinusoid\nprior amplitude ~ normal(5, 1e15)")
    x = g.sample(N, seed=0)["amplitude"]
    assert distinct(x) > 0.99
    assert ks(x, stats.uniform(0, 10).cdf) > KS_FLOOR
    density = g.marginals["amplitude"].log_prob(torch.tensor([0.0, 5.0, 10.0], dtype=D.DTYPE)).exp()
    assert torch.allclose(density, torch.full((3,), 0.1, dtype=D.DTYPE), rtol=1e-12, atol=0)


def test_a_support_1e_14_wide_at_a_normals_centre_is_sampled_exactly() -> None:
    """normal(0, 1) on [−5e-15, 5e-15]: uniform there, strictly inside, ∫ = 1 (it gave 37 distinct values)."""
    dist = D.truncate(D.Normal(0.0, 1.0), -5e-15, 5e-15)
    x = draws(dist)
    assert distinct(x) > 0.99 and bool(((x > -5e-15) & (x < 5e-15)).all())
    assert ks(x, stats.uniform(-5e-15, 1e-14).cdf) > KS_FLOOR
    assert mass(dist, -5e-15, 5e-15) == pytest.approx(1.0, abs=1e-6)
    u = torch.linspace(0.05, 0.95, 19, dtype=D.DTYPE)
    assert torch.allclose(dist.cdf(dist.icdf(u)), u, rtol=0, atol=1e-9)  # type: ignore[attr-defined]


def test_a_lognormal_never_draws_an_excluded_bound() -> None:
    """`lognormal(0, 300)` on frequency's (0, 5]: no draw is 0 (1.3 % were), KS against scipy.

    1.3 % of this law lies below the smallest positive float64; those draws round up to it.
    """
    g = gmhf.load("domain sinusoid\nprior frequency ~ lognormal(0, 300)")
    x = g.sample(N, seed=0)["frequency"]
    assert bool(((x > 0) & (x <= 5)).all())
    truth = stats.lognorm(s=300)
    assert ks(x, lambda v: truth.cdf(v) / truth.cdf(5.0)) > KS_FLOOR


@pytest.mark.parametrize("kind", ["normal", "lognormal"])
def test_normal_parameters_must_be_finite(kind: str, toy_plugins: PluginHost) -> None:
    """An infinite `mu` or `sigma` (a plugin's or Python caller's; the parser refuses 1e999) is refused."""
    validate = toy_plugins.registry.distributions[kind].validate
    assert validate((0.0, math.inf)) == "`sigma` must be finite, got inf"
    assert validate((-math.inf, 1.0)) == "`mu` must be finite, got -inf"
    with pytest.raises(ValueError, match="`sigma` must be > 0, got 0"):
        D.Normal(0.0, 0.0)


def test_truncated_cdf_and_icdf_invert_each_other_in_every_mode() -> None:
    """icdf(cdf(x)) = x for the inverse-CDF (lower and upper tail) and flat samplers."""
    for dist in (D.truncate(D.Normal(0.0, 1.0), -40.0, -30.0), D.truncate(D.Normal(0.0, 1.0), 30.0, 40.0),
                 D.truncate(D.beta((2.0, 50.0)), 0.5, 1.0), D.truncate(D.Normal(5.0, 1e15), 0.0, 10.0)):
        x = draws(dist, n=1000).sort().values
        back = dist.icdf(dist.cdf(x))  # type: ignore[attr-defined]
        assert torch.allclose(back, x, rtol=1e-9, atol=0), dist
