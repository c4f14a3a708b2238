"""Several specs pooled into one belief: the mixture, its scores and flags, the front door and `explain`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
import torch
from click.testing import CliRunner

import gmhf
from gmhf.cli import cli
from gmhf.core import effects
from gmhf.core.belief import Belief
from gmhf.core.environments import draw
from gmhf.core.generator import SimulatorGenerator
from gmhf.core.pooling import PooledBelief, PooledExpect, row_uniforms
from gmhf.core.reinforce import ReinforceSteerer
from gmhf.core.seeding import random_stream
from gmhf.core.steer import PosteriorSteerer
from gmhf.core.tasks import TaskPool
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from gmhf.core.guidance import Guidance

LOW = "domain sinusoid\ninvariant phase\nshift amplitude in 1 .. 2\ntrust 0.25\n"
HIGH = "domain sinusoid\ninvariant phase, frequency\nprior amplitude ~ normal(3, 0.3)\nprior noise ~ uniform(0, 0.05)\n"


def pooled(*texts: str) -> PooledBelief:
    belief = gmhf.pool(*texts)
    assert isinstance(belief, PooledBelief)
    return belief


def test_weights_are_trust_normalised_and_trust_is_their_weighted_mean() -> None:
    """Weights ∝ trust (0.25 and 1 give 0.2 and 0.8); the pool's trust is Σ w_i trust_i."""
    belief = pooled(LOW, HIGH)
    assert belief.weights == pytest.approx((0.2, 0.8))
    assert belief.trust == pytest.approx(0.2 * 0.25 + 0.8 * 1.0)


def test_mixture_draws_follow_the_weights_and_carry_no_order() -> None:
    """20,000 draws: the share from the low spec is 0.2 ± 0.015 (about 5 standard errors of 0.0028),
    and it is the same in both halves of the batch (rows are shuffled)."""
    belief = pooled(LOW, HIGH)
    amplitude = belief.sample(20_000, generator=torch.Generator().manual_seed(0))["amplitude"]
    low = (amplitude <= 2).double()
    assert float(low.mean()) == pytest.approx(0.2, abs=0.015)
    assert float(low[:10_000].mean()) == pytest.approx(float(low[10_000:].mean()), abs=0.03)
    counts = belief.component_counts(1000, torch.Generator().manual_seed(1))
    assert int(counts.sum()) == 1000 and 150 < int(counts[0]) < 250


def test_sampling_is_reproducible_from_the_generator_or_seed() -> None:
    """The same seed gives the same draws; the generator is the only stream used."""
    belief = pooled(LOW, HIGH)
    a = belief.sample(100, seed=3).values
    b = belief.sample(100, generator=random_stream(3)).values
    assert torch.equal(a, b)
    assert not torch.equal(a, belief.sample(100, seed=4).values)
    assert belief.sample(0, seed=0).values.shape == (0, 4)
    with pytest.raises(UsageError, match="non-negative int"):
        belief.sample(-1, seed=0)


def test_log_prob_is_the_mixture_density_and_integrates_to_one() -> None:
    """log_prob = logsumexp(log w + log q_i); an importance estimate of ∫ q with a uniform(0.5, 4.5)
    proposal on amplitude (other factors as the source, so their ratio is exactly 1) is 1 ± 0.03
    (20,000 draws: standard error about 0.01)."""
    belief = pooled(LOW, HIGH)
    proposal = gmhf.load("domain sinusoid\nshift amplitude in 0.5 .. 4.5")
    theta = proposal.sample(20_000, generator=torch.Generator().manual_seed(0))
    log_p = belief.log_prob(theta)
    explicit = torch.logsumexp(torch.stack([math.log(w) + b.log_prob(theta) for w, b in
                                            zip(belief.weights, belief.beliefs, strict=True)]), 0)
    assert torch.allclose(log_p, explicit, equal_nan=True)
    ratio = (log_p - proposal.log_prob(theta)).exp()
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.03)
    outside = {"amplitude": torch.tensor([2.5]), "phase": torch.tensor([1.0]), "frequency": torch.tensor([1.0]),
               "noise": torch.tensor([0.08])}  # outside LOW's amplitudes and HIGH's noise
    assert float(belief.log_prob(outside)[0]) == -math.inf


def test_marginals_are_the_weighted_mixture_of_each_specs_marginal() -> None:
    """amplitude's pooled marginal integrates to 1 ± 0.002 (trapezoid on 20,001 points over [0, 10]) and
    puts 0.2 ± 0.015 of 20,000 draws on LOW's [1, 2]; a pool of one has the spec's own marginals."""
    belief = pooled(LOW, HIGH)
    marginal = belief.marginals["amplitude"]
    grid = torch.linspace(0, 10, 20_001, dtype=torch.float64)
    assert float(torch.trapezoid(marginal.log_prob(grid).exp(), grid)) == pytest.approx(1.0, abs=0.002)
    draws = marginal.sample(20_000, torch.Generator().manual_seed(0))
    assert float(((draws >= 1) & (draws <= 2)).double().mean()) == pytest.approx(0.2, abs=0.015)  # HIGH: 0.04 %
    spec = gmhf.load(LOW)
    assert PooledBelief([spec]).marginals == spec.marginals


def test_accepts_is_any_component() -> None:
    """A row is accepted when some spec accepts it; rows outside every support are not."""
    belief = pooled(LOW, HIGH)
    rows = torch.tensor([[1.5, 1.0, 1.0, 0.08], [3.0, 1.0, 1.0, 0.01], [3.0, 1.0, 1.0, 0.08], [10.5, 1.0, 1.0, 0.01]],
                        dtype=torch.float64)
    assert belief.accepts(rows).tolist() == [True, True, False, False]


def test_one_spec_is_exactly_that_spec() -> None:
    """A pool of one: the same draws from the same stream, the same scores, flags, expects and text."""
    spec = gmhf.load(LOW + "expect max(abs(y)) < 3\n")
    belief = PooledBelief([spec])
    assert belief.weights == (1.0,) and belief.trust == spec.trust
    a = belief.sample(500, generator=torch.Generator().manual_seed(5))
    b = spec.sample(500, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.values, b.values)
    assert torch.equal(belief.log_prob(a), spec.log_prob(a))
    assert (belief.flagged, belief.invariant, str(belief)) == (spec.flagged, spec.invariant, str(spec))
    assert belief.expects == spec.expects
    assert type(gmhf.pool(LOW)).__name__ == "Guidance"  # the front door returns the plain spec


def test_flagged_is_the_union_and_invariant_the_intersection() -> None:
    """Flagged: any spec flags it (domain order); invariant: every spec declares it."""
    belief = pooled(HIGH, LOW)
    assert belief.flagged == ("amplitude", "noise")
    assert belief.invariant == ("phase",)


def test_different_domains_and_no_spec_are_usage_errors(tmp_path: Path) -> None:
    """The message names both files; an empty pool says so."""
    a, b = tmp_path / "a.guide", tmp_path / "b.guide"
    a.write_text(LOW)
    b.write_text("domain duffing\nshift beta in 0.4 .. 1.2\n")
    with pytest.raises(UsageError, match=r"different domains: .*a\.guide about 'sinusoid', .*b\.guide about 'duffing'"):
        gmhf.pool(a, b)
    with pytest.raises(UsageError, match="at least one spec"):
        gmhf.pool()
    with pytest.raises(UsageError, match="non-empty"):
        PooledBelief([])
    assert isinstance(gmhf.pool([str(a), str(a)]), PooledBelief)  # one list works too


def test_expects_shared_by_text_stay_the_specs_own() -> None:
    """Every spec has the same `expect` (by canonical text): the pool enforces it as the first spec's."""
    belief = pooled(LOW + "expect max(abs(y)) < 3\n", HIGH + "expect max(abs(y))<3\n")
    assert belief.expects == belief.beliefs[0].expects


def test_an_expect_of_one_spec_judges_only_what_that_spec_drew() -> None:
    """LOW expects max|y| < 1.5, HIGH has no expect: the kept environments are each spec's belief
    with its own expects, pooled. LOW's share becomes 0.2·Z/(0.2·Z + 0.8), Z the share of LOW's
    draws its expect keeps (estimated apart); 2,000 environments: ± 0.03 is about 4 standard errors."""
    low_spec = LOW + "expect max(abs(y)) < 1.5\n"
    belief = pooled(low_spec, HIGH)
    (expect,) = belief.expects
    assert isinstance(expect, PooledExpect) and ":5" in expect.where and "none" in expect.where
    simulator = SimulatorGenerator(belief.domain)
    environments = draw(belief, simulator, belief.domain, 2000, rng=torch.Generator().manual_seed(0),
                        expects=belief.expects)
    amplitude = environments.theta["amplitude"]
    peak = environments.data["y"].abs().amax(1)
    low = amplitude <= 2
    assert float((peak[low] >= 1.5).double().mean()) < 0.03  # the few low rows HIGH's tail claims
    assert float(peak[~low].max()) > 2.5  # HIGH's tall waves are not cut by LOW's expect
    alone = gmhf.load(low_spec)
    theta = alone.sample(4000, generator=torch.Generator().manual_seed(1)).values
    kept = expect.holds(theta, belief.domain.observe(theta, simulator.generate(theta, generator=torch.Generator())))
    z = float(kept.double().mean())
    assert 0.3 < z < 0.7
    assert float(low.double().mean()) == pytest.approx(0.2 * z / (0.2 * z + 0.8), abs=0.03)


def test_row_uniforms_are_uniform_and_deterministic() -> None:
    """Mean 0.5 ± 0.01 and variance 1/12 ± 0.005 over 20,000 rows; the same batch gives the same numbers."""
    values = torch.rand(20_000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    u = row_uniforms(values)
    assert float(u.mean()) == pytest.approx(0.5, abs=0.01) and float(u.var()) == pytest.approx(1 / 12, abs=0.005)
    assert torch.equal(u, row_uniforms(values.clone())) and bool(((u > 0) & (u < 1)).all())


def test_str_records_each_spec_with_its_weight_and_repr_is_short() -> None:
    """`str()` heads each spec's canonical text with its weight; `repr` is one line."""
    belief = pooled(LOW, HIGH)
    text = str(belief)
    assert "# spec 1 of 2: spec 1, trust 0.25, weight 0.2\n" + str(belief.beliefs[0]) in text
    assert "# spec 2 of 2: spec 2, trust 1, weight 0.8\n" + str(belief.beliefs[1]) in text
    assert repr(belief) == "PooledBelief(domain='sinusoid', specs=2, weights=(0.2, 0.8), trust=0.85)"


def test_both_guidance_and_the_pool_are_beliefs() -> None:
    """The runtime-checkable protocol sees both."""
    assert isinstance(gmhf.load(LOW), Belief) and isinstance(pooled(LOW, HIGH), Belief)


@pytest.mark.parametrize("agent", [PosteriorSteerer, ReinforceSteerer])
def test_steering_agents_and_task_pool_take_a_pool(agent: type[PosteriorSteerer | ReinforceSteerer]) -> None:
    """π starts at the pool, learns from answers, and stays inside the pool's support; a task pool draws from it."""
    belief = pooled(LOW, HIGH)
    steerer = agent(cast("Guidance", belief), seed=0)  # it reads only the members a Belief has
    assert steerer.factors == ("amplitude", "noise")
    generator = torch.Generator().manual_seed(0)
    before = float((steerer.sample(4000, generator=generator)["amplitude"] <= 2).double().mean())
    for _ in range(4):
        questions = steerer.propose(10, generator=generator)
        answers = ["accept" if float(a) <= 2 else "reject" for a in questions[:, 0]]
        steerer.update(questions, answers, [0.9] * len(answers))
    theta = steerer.sample(4000, generator=generator)
    after = float((theta["amplitude"] <= 2).double().mean())
    assert before == pytest.approx(0.2, abs=0.03) and after > 0.9  # measured 0.98 for both agents
    assert bool(belief.accepts(theta).all()) and bool(torch.isfinite(steerer.log_prob(theta)).all())
    pool = TaskPool(steerer, SimulatorGenerator(belief.domain), belief.domain, expects=belief.expects, size=32)
    assert len(pool.sample(8)) == 8


def invoke(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(cli, list(args))
    return done.exit_code, done.output


def test_explain_two_specs_shows_weights_and_the_pooled_belief(tmp_path: Path) -> None:
    """Text: each spec's weight and target, the pooled marginals; JSON: the same, plus the comparison."""
    a, b = tmp_path / "low.guide", tmp_path / "high.guide"
    a.write_text(LOW)
    b.write_text(HIGH)
    code, out = invoke("explain", str(a), str(b))
    assert code == 0, out
    assert f"a = {a}: weight 0.2, trust 0.25" in out and f"b = {b}: weight 0.8, trust 1" in out
    assert "Pooled marginals (4,000 mixture draws, seed 0)" in out and "overlap" in out
    code, out = invoke("explain", "--json", str(a), str(b))
    data = json.loads(out)
    assert [w["weight"] for w in data["weights"]] == pytest.approx([0.2, 0.8])
    amplitude = data["effective"][0]
    assert amplitude["mean"] == pytest.approx(0.2 * 1.5 + 0.8 * 3, abs=0.05)  # from 4,000 draws: SE ≈ 0.012
    assert amplitude["q05"] < 2 < 2.5 < amplitude["q50"]
    assert data["factors"][0]["targets"] == ["uniform(1, 2) on [1, 2]", "normal(3, 0.3) on [0, 10]"]
    assert {row["factor"] for row in data["compare"]} == {"amplitude", "phase", "frequency", "noise"}
    code, out = invoke("explain", "--json", str(a), str(b), str(a))
    assert code == 0 and "compare" not in json.loads(out) and len(json.loads(out)["weights"]) == 3


def test_explain_two_domains_names_both_files(tmp_path: Path) -> None:
    """A usage error (exit 2 from the shell) naming both files."""
    a, b = tmp_path / "a.guide", tmp_path / "b.guide"
    a.write_text(LOW)
    b.write_text("domain duffing\n")
    done = CliRunner().invoke(cli, ["explain", str(a), str(b)])
    assert isinstance(done.exception, UsageError) and "different domains" in str(done.exception)
    assert "a.guide" in str(done.exception) and "b.guide" in str(done.exception)


def test_explain_one_spec_is_the_specs_own_explanation(tmp_path: Path) -> None:
    """One SPEC: the JSON is exactly the spec's `explain()` plus its effects, with no pool keys."""
    spec = tmp_path / "low.guide"
    spec.write_text(LOW)
    code, out = invoke("explain", "--json", str(spec))
    guidance = gmhf.load(spec)
    expected = guidance.explain()
    expected["effective"] = effects.effective_marginals(guidance)
    expected["prefer_effect"] = effects.prefer_effects(guidance)
    expected["warnings"] = effects.rare_constraints(expected, expected["prefer_effect"])
    assert code == 0 and json.loads(out) == json.loads(json.dumps(expected))
    code, text = invoke("explain", str(spec))
    assert code == 0 and "Effective marginals after require and prefer" in text and "Pooled" not in text
