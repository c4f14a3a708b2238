"""Exact samplers (issue 12): integer levels under `require`, constant powers, narrow integer priors,
extreme `prefer` weights, and seeds.

Draws use fixed seeds. Unless said otherwise a test draws N = 20,000 environments; a proportion's
standard error is then at most 0.0036, so proportion tolerances of 0.02 are more than 5 standard
errors. KS tests use a p-value floor of 0.001 (with fixed seeds they pass deterministically; the
floor says how far off a distribution would have to be to fail). Exact quantities (a probability
table, a log density with no Monte Carlo normaliser) are compared at 1e-9.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from scipy import stats

import gmhf
from gmhf.cli import main
from gmhf.core.seeding import random_stream

N = 20_000
KS_FLOOR = 1e-3
PROPORTION_TOL = 0.02


def draw(text: str, n: int = N, seed: int = 0) -> gmhf.Theta:
    return gmhf.load(text).sample(n, seed=seed)


def cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def shares(values: torch.Tensor) -> dict[float, float]:
    counts = Counter(float(v) for v in values)
    return {k: c / len(values) for k, c in sorted(counts.items())}


# ---------------------------------------------------------------------- 1. levels and a one-factor require
def test_listed_integer_levels_obey_a_one_factor_require() -> None:
    """`shift cars in [1, 3, 5]; require cars < 4` draws only 1 and 3, half each, all accepted."""
    g = gmhf.load("domain toy\nshift cars in [1, 3, 5]\nrequire cars < 4\n")
    theta = g.sample(N, seed=0)
    got = shares(theta["cars"])
    assert set(got) == {1.0, 3.0}
    assert got[1.0] == pytest.approx(0.5, abs=PROPORTION_TOL)
    assert bool(g.accepts(theta).all())
    assert g.explain()["factors"][2]["target"] == "one of 1, 3"


def test_listed_levels_with_a_prior_and_a_require_follow_the_prior_density() -> None:
    """Levels [1, 3, 5] with a normal(3, 1) prior and `require cars >= 3`: P(k) ∝ φ(k) on {3, 5} (scipy)."""
    g = gmhf.load("domain toy\nshift cars in [1, 3, 5]\nprior cars ~ normal(3, 1)\nrequire cars >= 3\n")
    pdf = stats.norm(3, 1).pdf([3, 5])
    expected = pdf / pdf.sum()
    got = shares(g.sample(N, seed=1)["cars"])
    assert set(got) == {3.0, 5.0}
    assert got[3.0] == pytest.approx(expected[0], abs=PROPORTION_TOL)


def test_a_require_that_excludes_every_listed_level_is_a_spec_error() -> None:
    """No listed level survives `require cars < 1`: an error at the require, not silent rejections."""
    with pytest.raises(gmhf.SpecError, match="leaves none of the listed values of `cars`"):
        gmhf.load("domain toy\nshift cars in [1, 3, 5]\nrequire cars < 1\n")


# ---------------------------------------------------------------------- 2. constant powers
def test_a_negative_base_to_an_integer_power_bounds_a_real_factor() -> None:
    """`require amplitude < (-2)^2` truncates amplitude's uniform(0.1, 5) source to [0.1, 4] (KS vs scipy)."""
    g = gmhf.load("domain sinusoid\nrequire amplitude < (-2)^2\n")
    assert len(g.checked.truncating) == 1
    assert (g.checked.factors["amplitude"].low, g.checked.factors["amplitude"].high) == (0.1, 4.0)
    a = g.sample(N, seed=2)["amplitude"]
    assert float(a.max()) <= 4.0
    assert stats.kstest(a.numpy(), stats.uniform(0.1, 3.9).cdf).pvalue > KS_FLOOR


def test_a_negative_base_to_an_integer_power_bounds_an_integer_factor() -> None:
    """`require cars < (-2)^2` keeps cars' uniform integers 0..3, a quarter each (no raw ValueError)."""
    got = shares(draw("domain toy\nrequire cars < (-2)^2\n")["cars"])
    assert set(got) == {0.0, 1.0, 2.0, 3.0}
    for share in got.values():
        assert share == pytest.approx(0.25, abs=PROPORTION_TOL)


def test_an_odd_power_of_a_negative_base_keeps_its_sign() -> None:
    """`(-2)^3` is -8, so `require mass > (-2)^3 * 5` is the bound mass > -40 (nothing cut from [0, 100])."""
    g = gmhf.load("domain toy\nrequire mass > (-2)^3 * 5\n")
    assert g.checked.factors["mass"].low == 0.0
    assert len(g.checked.truncating) == 1


@pytest.mark.parametrize("text", ["domain toy\nrequire speed < (-2)^0.5\n",
                                  "domain toy\nrequire cars < (-8)^(1/3)\n",
                                  "domain toy\nprefer speed < (-2)^1.5 weight 1\n"])
def test_a_negative_base_to_a_non_integer_power_is_a_spec_error(text: str) -> None:
    """A negative number to a non-integer power has no real value: reported at the statement."""
    with pytest.raises(gmhf.SpecError, match="a negative base to a non-integer power has no real value"):
        gmhf.load(text)


# ---------------------------------------------------------------------- 3. narrow priors on integers
def test_a_narrow_prior_between_two_integers_splits_evenly() -> None:
    """`prior cars ~ normal(5.5, 0.01)`: densities underflow, but their ratio is 1: 5 and 6 at 50 % each."""
    got = shares(draw("domain toy\nprior cars ~ normal(5.5, 0.01)\n", seed=3)["cars"])
    assert set(got) == {5.0, 6.0}
    assert got[5.0] == pytest.approx(0.5, abs=PROPORTION_TOL)


def test_integer_prior_weights_match_the_normal_density_at_each_integer() -> None:
    """P(k) ∝ φ((k − 5.5)/0.3) over 0..20, exactly as scipy computes it."""
    g = gmhf.load("domain toy\nprior cars ~ normal(5.5, 0.3)\n")
    ks = torch.arange(0, 21, dtype=torch.float64)
    logpdf = stats.norm(5.5, 0.3).logpdf(ks.numpy())
    expected = torch.tensor(logpdf - logpdf.max()).exp()
    expected = expected / expected.sum()
    got = g.marginals["cars"].log_prob(ks).exp()
    assert torch.allclose(got, expected, rtol=0, atol=1e-9)


def test_a_prior_far_outside_the_bounds_puts_its_mass_on_the_nearest_integer() -> None:
    """normal(100, 0.01) on cars' 0..20: every integer's density underflows, the largest (20) takes all."""
    got = shares(draw("domain toy\nprior cars ~ normal(100, 0.01)\n", n=1000)["cars"])
    assert got == {20.0: 1.0}


def test_a_prior_support_holding_no_integer_is_a_spec_error() -> None:
    """uniform(0.2, 0.8) on an integer factor leaves no integer: a spec error, not a raw ValueError."""
    with pytest.raises(gmhf.SpecError, match="no integer"):
        gmhf.load("domain toy\nprior cars ~ uniform(0.2, 0.8)\n")


# ---------------------------------------------------------------------- 4. prefer weights
def test_large_prefer_weights_on_a_condition_that_always_holds_leave_log_prob_alone() -> None:
    """Weights adding to 800 on a certain condition cancel in the normaliser: log_prob = log(1/2) on [1, 3]."""
    g = gmhf.load("domain toy\nshift speed in 1 .. 3\nprefer speed < 100 weight 400\n"
                  "prefer speed < 100 weight 400\n")
    theta = g.sample(1000, seed=4)
    base = gmhf.load("domain toy\nshift speed in 1 .. 3\n").log_prob(theta)
    assert torch.allclose(g.log_prob(theta), base, rtol=0, atol=1e-9)
    assert torch.allclose(g.marginals["speed"].log_prob(theta["speed"]),
                          torch.full((1000,), -math.log(2), dtype=torch.float64))


def test_large_negative_prefer_weights_on_a_condition_that_always_holds_sample_and_score() -> None:
    """Weights adding to −800 on a certain condition: the compile does not crash, sampling accepts every
    draw (the condition is certain, so the ceiling is −800, not 0) and log_prob is the marginals' alone."""
    g = gmhf.load("domain toy\nprefer speed < 100 weight -400\nprefer speed < 100 weight -400\n")
    theta = g.sample(1000, seed=5)
    assert torch.allclose(g.log_prob(theta), gmhf.load("domain toy\n").log_prob(theta), rtol=0, atol=1e-9)
    assert g.explain()["acceptance_rate"] == 1.0


def test_an_overwhelming_prefer_weight_samples_and_scores_the_preferred_region() -> None:
    """exp(800) on `speed < 2` makes speed uniform on [1, 2] (KS vs scipy); log_prob there is log 1 = 0,
    up to the probe's normaliser: log p̂ of p = ½ from 10,000 draws has SE 0.01, so 0.05 is 5 SE."""
    g = gmhf.load("domain toy\nprefer speed < 2 weight 700\nprefer speed < 2 weight 100\n")
    theta = g.sample(N, seed=6)
    speed = theta["speed"]
    assert float(speed.max()) < 2.0
    assert stats.kstest(speed.numpy(), stats.uniform(1, 1).cdf).pvalue > KS_FLOOR
    logp = g.log_prob(theta) - gmhf.load("domain toy\n").log_prob(theta) + math.log(0.5)
    assert bool(torch.isfinite(logp).all())
    assert float(logp.mean()) == pytest.approx(0.0, abs=0.05)


def test_a_moderate_prefer_weight_multiplies_the_odds_by_e() -> None:
    """`prefer speed < 2 weight 1` on uniform(1, 3): P(speed < 2) = e / (1 + e)."""
    speed = draw("domain toy\nprefer speed < 2 weight 1\n", seed=7)["speed"]
    assert float((speed < 2).double().mean()) == pytest.approx(math.e / (1 + math.e), abs=PROPORTION_TOL)


@pytest.mark.parametrize("weight", ["701", "-701", "709", "1e400", "-1e400"])
def test_an_absurd_prefer_weight_is_a_spec_error(weight: str) -> None:
    """|weight| > 700 (e^700 ≈ 1e304, near float64's end) or non-finite: an error at the `prefer`."""
    with pytest.raises(gmhf.SpecError, match="`prefer` weight must be between -700 and 700"):
        gmhf.load(f"domain toy\nprefer speed < 2 weight {weight}\n")


def test_explain_json_of_an_absurd_weight_is_a_spec_error_not_nan(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`gmhf explain --json` on `weight 1e400` exits 1 with a diagnostic; no NaN reaches stdout."""
    spec = tmp_path / "w.guide"
    spec.write_text("domain sinusoid\nprefer amplitude < 2 weight 1e400\n")
    code, out, err = cli("explain", str(spec), "--json", capsys=capsys)
    assert code == 1
    assert "NaN" not in out and "weight must be between -700 and 700" in out + err


# ---------------------------------------------------------------------- 5. seeds
SEEDS = [0, 1, 2**32, 2**32 + 1, -1, 2**63, 2**64, -(2**64), 10**40]


def test_distinct_seeds_give_distinct_streams_and_each_repeats() -> None:
    """Seeds equal modulo 2^32 (or 2^64) no longer collide; negative and huge seeds work and repeat."""
    g = gmhf.load("domain toy\n")
    draws = {seed: g.sample(8, seed=seed).values for seed in SEEDS}
    for i, a in enumerate(SEEDS):
        assert torch.equal(draws[a], g.sample(8, seed=a).values)
        for b in SEEDS[i + 1:]:
            assert not torch.equal(draws[a], draws[b]), (a, b)


def test_random_stream_maps_any_int_to_a_distinct_torch_seed() -> None:
    """`random_stream(seed)` seeds torch with a 63-bit hash of the int, distinct for 0 and 2^32."""
    seeds = {s: random_stream(s).initial_seed() for s in SEEDS}
    assert len(set(seeds.values())) == len(SEEDS)
    assert all(0 <= v < 2**63 for v in seeds.values())


def test_cli_sample_accepts_a_seed_beyond_64_bits(capsys: pytest.CaptureFixture[str]) -> None:
    """`gmhf sample --seed 18446744073709551616` draws (exit 0), repeats, and differs from `--seed 0`."""
    def samples(seed: str) -> list[dict[str, float]]:
        code, out, err = cli("sample", "examples/specs/sinusoid.guide", "-n", "3", "--seed", seed, "--json",
                             capsys=capsys)
        assert code == 0, err
        found: list[dict[str, float]] = json.loads(out)["samples"]
        return found

    huge = samples("18446744073709551616")
    assert huge == samples("18446744073709551616")
    assert huge != samples("0")
