"""What each statement means, checked on sample statistics with fixed seeds and stated tolerances.

Unless said otherwise a test draws N = 20,000 environments; a proportion's standard error is then at
most 0.0036, so proportion tolerances of 0.02 are more than 5 standard errors. KS tests use a
p-value floor of 0.001 with fixed seeds (they pass deterministically; the floor says how far off a
distribution would have to be to fail).
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

import gmhf

N = 20_000
KS_FLOOR = 1e-3


def draw(text: str, n: int = N, seed: int = 0) -> gmhf.Theta:
    return gmhf.load(text).sample(n, seed=seed)


def ks(sample: torch.Tensor, cdf: object) -> float:
    return float(stats.kstest(sample.numpy(), cdf).pvalue)


def test_samples_lie_in_believed_support_and_satisfy_every_require() -> None:
    """Every draw is inside each factor's believed support and satisfies every require."""
    g = gmhf.load("examples/specs/sinusoid.guide")
    theta = g.sample(N, seed=1)
    assert bool(g.accepts(theta).all())
    a, f, noise = theta["amplitude"], theta["frequency"], theta["noise"]
    assert bool(((a >= 3) & (a <= 8)).all()) and bool((a < 6 * f).all())
    assert bool(((f >= 1.0) & (f <= 1.5)).all()) and bool(((noise >= 0) & (noise <= 1)).all())


def test_invariant_and_unmentioned_factors_keep_the_source_distribution() -> None:
    """`invariant phase` and the unmentioned `noise` follow their source uniforms (KS)."""
    theta = draw("domain sinusoid\ninvariant phase\nshift amplitude in 2 .. 4")
    assert ks(theta["phase"], stats.uniform(0, math.pi).cdf) > KS_FLOOR
    assert ks(theta["noise"], stats.uniform(0, 0.1).cdf) > KS_FLOOR


def test_shift_interval_is_uniform_on_it() -> None:
    """`shift F in lo .. hi` without a prior is uniform on [lo, hi]."""
    theta = draw("domain sinusoid\nshift amplitude in 2 .. 4")
    assert ks(theta["amplitude"], stats.uniform(2, 2).cdf) > KS_FLOOR


def test_prior_is_truncated_to_the_shift_interval() -> None:
    """A prior on a shifted factor is the prior truncated to the shift's interval."""
    theta = draw("domain sinusoid\nshift amplitude in 2 .. 4\nprior amplitude ~ normal(3.5, 1)")
    truth = stats.truncnorm((2 - 3.5) / 1, (4 - 3.5) / 1, loc=3.5, scale=1)
    assert ks(theta["amplitude"], truth.cdf) > KS_FLOOR


def test_prior_is_truncated_to_the_physical_bounds() -> None:
    """A lognormal prior on `noise` lives on noise's physical bounds [0, 1]."""
    theta = draw("domain sinusoid\nprior noise ~ lognormal(-1, 1)")
    truth = stats.lognorm(s=1, scale=math.exp(-1))
    mass = truth.cdf(1.0)
    assert ks(theta["noise"], lambda x: truth.cdf(x) / mass) > KS_FLOOR


def test_beta_prior() -> None:
    """`beta(a, b)` matches scipy's beta."""
    theta = draw("domain sinusoid\nprior noise ~ beta(2, 5)")
    assert ks(theta["noise"], stats.beta(2, 5).cdf) > KS_FLOOR


def test_between_puts_the_stated_mass_on_the_interval() -> None:
    """`between 4 and 6 with 80%`: 80% of draws in [4, 6] (±0.02), centred on 5."""
    a = draw("domain sinusoid\nprior amplitude between 4 and 6 with 80%")["amplitude"]
    inside = float(((a >= 4) & (a <= 6)).double().mean())
    assert inside == pytest.approx(0.80, abs=0.02)
    assert float(a.mean()) == pytest.approx(5.0, abs=0.03)


def test_shift_by_offset_and_scale_move_the_source() -> None:
    """`by +2` moves uniform(0.1, 5) to uniform(2.1, 7); `by *1.5` scales uniform(0.8, 1.2) to (1.2, 1.8)."""
    theta = draw("domain sinusoid\nshift amplitude by +2\nshift frequency by *1.5")
    assert ks(theta["amplitude"], stats.uniform(2.1, 4.9).cdf) > KS_FLOOR
    assert ks(theta["frequency"], stats.uniform(1.2, 0.6).cdf) > KS_FLOOR
    theta = draw("domain sinusoid\nshift amplitude by -0.05")
    assert ks(theta["amplitude"], stats.uniform(0.05, 4.9).cdf) > KS_FLOOR


def test_single_factor_require_truncates() -> None:
    """`require amplitude < 3` truncates the source uniform(0.1, 5) to uniform(0.1, 3)."""
    g = gmhf.load("domain sinusoid\nrequire amplitude < 3")
    assert g.checked.truncating and not g.checked.requires
    assert ks(g.sample(N, seed=0)["amplitude"], stats.uniform(0.1, 2.9).cdf) > KS_FLOOR


def test_joint_require_rejects_and_reports_acceptance() -> None:
    """A joint require holds on every draw; its probe acceptance matches the exact probability."""
    g = gmhf.load("domain sinusoid\nrequire amplitude < 3 * frequency")
    theta = g.sample(N, seed=0)
    assert bool((theta["amplitude"] < 3 * theta["frequency"]).all())
    # P(a < 3f) for a ~ U(0.1, 5), f ~ U(0.8, 1.2): E_f[(3f - 0.1) / 4.9] = (3 - 0.1) / 4.9
    accepted, total = next(iter(g.acceptance.values()))
    assert accepted / total == pytest.approx(2.9 / 4.9, abs=0.02)


def test_prefer_weight_reweights_by_exp_w() -> None:
    """`prefer E weight log 3` on a uniform(1, 5): P(E) = 3·2 / (3·2 + 2) = 0.75 (±0.02)."""
    theta = draw(f"domain sinusoid\nshift amplitude in 1 .. 5\nprefer amplitude > 3 weight {math.log(3)}")
    assert float((theta["amplitude"] > 3).double().mean()) == pytest.approx(0.75, abs=0.02)
    theta = draw("domain sinusoid\nshift amplitude in 1 .. 5\nprefer amplitude > 3 weight -100")
    assert float((theta["amplitude"] > 3).double().mean()) < 0.001


def test_choice_weights_and_level_shifts() -> None:
    """choice weights set level frequencies; `shift … in [levels]` is uniform over them."""
    theta = draw("domain toy\nprior weather ~ choice(rain: 0.7, snow: 0.3)")
    codes = theta["weather"]
    assert float((codes == 1).double().mean()) == pytest.approx(0.7, abs=0.02)
    assert float((codes == 2).double().mean()) == pytest.approx(0.3, abs=0.02)
    codes = draw("domain toy\nshift weather in [rain, fog]")["weather"]
    assert set(codes.unique().tolist()) == {1, 3}
    assert float((codes == 1).double().mean()) == pytest.approx(0.5, abs=0.02)
    codes = draw("domain toy\nshift weather in [rain, fog]\nprior weather ~ choice(rain: 1, snow: 5, fog: 3)")["weather"]
    assert float((codes == 3).double().mean()) == pytest.approx(0.75, abs=0.02)


def test_categorical_source_weights() -> None:
    """An unmentioned categorical factor follows its source weights (4:2:1:1)."""
    codes = draw("domain toy")["weather"]
    assert float((codes == 0).double().mean()) == pytest.approx(0.5, abs=0.02)


def test_integer_shift_is_uniform_over_integers() -> None:
    """`shift cars in 2 .. 5` draws each of 2, 3, 4, 5 a quarter of the time."""
    cars = draw("domain toy\nshift cars in 2 .. 5")["cars"]
    for k in (2, 3, 4, 5):
        assert float((cars == k).double().mean()) == pytest.approx(0.25, abs=0.02)
    assert set(cars.unique().tolist()) == {2.0, 3.0, 4.0, 5.0}


def test_categorical_comparison_in_require() -> None:
    """`require weather == rain or speed > 2.5` holds on every draw."""
    theta = draw("domain toy\nrequire weather == rain or speed > 2.5")
    assert bool(((theta["weather"] == 1) | (theta["speed"] > 2.5)).all())


def test_log_prob_is_the_density_and_minus_inf_outside() -> None:
    """log_prob of a uniform shift is −log(width) inside and −inf outside; accepts agrees."""
    g = gmhf.load("domain sinusoid\ninvariant phase, frequency, noise\nshift amplitude in 2 .. 4")
    theta = g.sample(5, seed=0)
    inside = g.log_prob(theta)
    expected = -math.log(2) - math.log(math.pi) - math.log(0.4) - math.log(0.1)
    assert torch.allclose(inside, torch.full_like(inside, expected))
    values = theta.values.clone()
    values[:, 0] = 5.0
    assert bool((g.log_prob(values) == -math.inf).all()) and not bool(g.accepts(values).any())


def test_expect_checks_generated_data() -> None:
    """`expect max(abs(y)) < 3` holds for small waves and fails for tall ones."""
    g = gmhf.load("domain sinusoid\nshift amplitude in 0.5 .. 1\nexpect max(abs(y)) < 3")
    theta = g.sample(64, seed=0)
    data = g.domain.simulate(theta.values, generator=torch.Generator().manual_seed(0))
    (expect,) = g.expects
    assert bool(expect.holds(theta.values, g.domain.observe(theta.values, data)).all())
    tall = theta.values.clone()
    tall[:, 0] = 8.0
    assert not bool(expect.holds(tall, g.domain.observe(tall, g.domain.simulate(tall))).any())


def test_sampling_is_reproducible_with_a_seed() -> None:
    """The same seed gives the same batch; a generator can be passed explicitly."""
    g = gmhf.load("examples/specs/sinusoid.guide")
    assert torch.equal(g.sample(100, seed=3).values, g.sample(100, seed=3).values)
    first = g.sample(10, generator=torch.Generator().manual_seed(9)).values
    assert torch.equal(first, g.sample(10, generator=torch.Generator().manual_seed(9)).values)


def test_statement_order_does_not_matter() -> None:
    """A prior written before its shift gives the same distribution as one written after."""
    before = draw("domain sinusoid\nprior amplitude ~ normal(3.5, 1)\nshift amplitude in 2 .. 4")
    after = draw("domain sinusoid\nshift amplitude in 2 .. 4\nprior amplitude ~ normal(3.5, 1)")
    assert torch.equal(before.values, after.values)


def test_truncation_beyond_the_source_is_a_spec_error() -> None:
    """`require amplitude > 6` on the source uniform(0.1, 5) is reported, not a crash."""
    with pytest.raises(gmhf.SpecError, match="leaves no value of `amplitude`"):
        gmhf.load("domain sinusoid\nrequire amplitude > 6")


def test_function_arguments_line_up_arrays_and_scalars() -> None:
    """`max(abs(y), amplitude)` compares each point of y with its own environment's amplitude."""
    g = gmhf.load("domain sinusoid\nexpect max(abs(y), amplitude) <= amplitude + 3")
    theta = g.sample(7, seed=0)
    observed = g.domain.observe(theta.values, g.domain.simulate(theta.values, points=5))
    assert bool(g.expects[0].holds(theta.values, observed).all())


def test_a_thin_upper_tail_is_sampled_exactly() -> None:
    """normal(0, 0.5) on [3.5, 8] keeps ~1e-12 of its mass, all beyond 7σ; its mean there is known.

    The mean of a normal truncated below at a (z = a/σ) is μ + σ·φ(z)/(1 − Φ(z)); with 100,000
    draws the standard error is ~2e-4, so the tolerance 1e-3 is five of them.
    """
    amplitude = gmhf.load("domain sinusoid\nshift amplitude in 3.5 .. 8\nprior amplitude ~ normal(0, 0.5)")
    draws = amplitude.sample(100_000, seed=0)["amplitude"]
    z = 3.5 / 0.5
    expected = 0.5 * math.exp(stats.norm.logpdf(z) - stats.norm.logsf(z))
    assert abs(float(draws.mean()) - expected) < 1e-3
    assert float(draws.min()) >= 3.5


def test_a_support_without_representable_mass_is_a_spec_error() -> None:
    with pytest.raises(gmhf.SpecError, match="no probability mass of the distribution lies in"):
        gmhf.load("domain sinusoid\nshift amplitude in 5 .. 8\nprior amplitude ~ normal(0, 0.1)")
