"""The `reinforce` steering agent: q_H before any answer, only flagged factors move, exact replay, it learns."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import torch
from scipy import stats

import gmhf
from gmhf.core.engine import FeedbackLoop
from gmhf.core.experts import Expert, Question, sample_id
from gmhf.core.generator import SimulatorGenerator
from gmhf.core.reinforce import FLOOR, ReinforceSteerer
from gmhf.core.sources import ThetaSource
from gmhf.core.steer import Steerer
from gmhf.core.store import FeedbackStore
from gmhf.errors import UsageError
from gmhf.experts.simulated import SimulatedExpert

VAGUE = "examples/specs/duffing_vague.guide"
UNFLAGGED = ("delta", "alpha", "omega", "x0", "v0")


def truth() -> gmhf.Guidance:
    return gmhf.load(gmhf.load("domain duffing").domain.truth_spec() or "")


def inside(agent: ReinforceSteerer, target: gmhf.Guidance, n: int = 2048) -> float:
    drawn = agent.sample(n, generator=torch.Generator().manual_seed(7)).values
    return float(target.accepts(drawn).to(torch.float64).mean())


def steer(spec: gmhf.Guidance, target: gmhf.Guidance, p: float, answers: int, *, seed: int = 0,
          steer_all: bool = False) -> tuple[ReinforceSteerer, list[str]]:
    """Rounds of 5 questions from π answered by `simulated:p`; the agent and every answer given."""
    agent = ReinforceSteerer(spec, seed=seed, steer="all" if steer_all else "flagged")
    expert = SimulatedExpert(target, p, seed=seed)
    given: list[str] = []
    for round_ in range(answers // 5):
        values = agent.propose(5, generator=torch.Generator().manual_seed(1000 * seed + round_))
        questions = [Question(sample_id(round_, i), round_, {}, values[i], lambda: b"") for i in range(5)]
        answers_ = expert.ask(questions)
        agent.update(values, answers_, [p] * 5)
        given.extend(answers_)
    return agent, given


def test_the_agent_is_a_steerer_and_a_theta_source() -> None:
    agent = ReinforceSteerer(gmhf.load(VAGUE))
    assert isinstance(agent, Steerer) and isinstance(agent, ThetaSource)
    assert agent.factors == ("beta", "gamma")
    assert repr(agent) == "ReinforceSteerer(steered=('beta', 'gamma'), answers=0)"


def test_before_any_answer_pi_is_q_h() -> None:
    """η = 0: π's density is q_H's and its draws are distributed as q_H's (KS, α = 0.01, every factor)."""
    spec = gmhf.load(VAGUE)
    agent = ReinforceSteerer(spec)
    theta = spec.sample(2000, seed=3).values
    assert torch.allclose(agent.log_prob(theta), spec.log_prob(theta), rtol=0, atol=1e-12)
    drawn = agent.sample(4000, generator=torch.Generator().manual_seed(1)).values
    reference = spec.sample(4000, seed=2).values
    for column in range(drawn.shape[1]):
        assert stats.ks_2samp(drawn[:, column], reference[:, column]).pvalue > 0.01, column
    assert agent.state()["kept_mass"] == pytest.approx(1.0)


def test_answers_at_reliability_one_half_leave_pi_exactly_q_h() -> None:
    """A p = ½ answer is a reward of 0: no step, and the KL pull keeps η at 0."""
    spec = gmhf.load(VAGUE)
    agent, given = steer(spec, truth(), 0.5, 50)
    assert "accept" in given and "reject" in given
    theta = spec.sample(2000, seed=3).values
    assert torch.allclose(agent.log_prob(theta), spec.log_prob(theta), rtol=0, atol=1e-12)
    assert agent.state()["answers_used"] == 50


def test_only_flagged_factors_move_and_the_rest_keep_their_distribution() -> None:
    """After steering, every factor the spec does not flag is distributed as under q_H (KS, α = 0.01)."""
    spec = gmhf.load(VAGUE)
    agent, _ = steer(spec, truth(), 1.0, 150)
    drawn = agent.sample(4000, generator=torch.Generator().manual_seed(1)).values
    reference = spec.sample(4000, seed=2).values
    for name in UNFLAGGED:
        column = spec.space.index(name)
        assert stats.ks_2samp(drawn[:, column], reference[:, column]).pvalue > 0.01, name
    for name in ("beta", "gamma"):  # while the flagged ones did move
        column = spec.space.index(name)
        assert stats.ks_2samp(drawn[:, column], reference[:, column]).pvalue < 1e-6, name
    assert set(agent.state()["eta"]) == {"beta", "gamma"}


def test_steer_all_never_tilts_an_invariant_factor() -> None:
    agent = ReinforceSteerer(gmhf.load(VAGUE), steer="all")
    assert set(agent.factors) == {"beta", "gamma", "x0", "v0"}  # delta, alpha, omega are invariant
    assert agent.eta.shape == (8,)
    with pytest.raises(UsageError, match="`steer` must be"):
        ReinforceSteerer(gmhf.load(VAGUE), steer="some")  # type: ignore[arg-type]


def test_log_prob_is_normalised_and_matches_the_draws() -> None:
    """E_q[π/q] = 1, and E_π[β] from draws equals the importance estimate E_q[β·π/q].

    200,000 fresh q_H draws (not the probe). After 150 answers π is narrow (β's spread about a
    tenth of q_H's), π/q has a variance near 100, and the mean's standard error is about 0.022:
    tolerance 0.1 (4.5 SE; it also covers the probe's own error in the normaliser).
    """
    spec = gmhf.load(VAGUE)
    agent, _ = steer(spec, truth(), 1.0, 150)
    assert agent.state()["kept_mass"] < 0.02  # π did move
    q = spec.sample(200_000, seed=11).values
    ratio = (agent.log_prob(q) - spec.log_prob(q)).exp()
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.1)
    beta = spec.space.index("beta")
    drawn = agent.sample(20_000, generator=torch.Generator().manual_seed(5)).values
    weighted = float((ratio * q[:, beta]).mean() / ratio.mean())
    assert float(drawn[:, beta].mean()) == pytest.approx(weighted, abs=0.02)  # SE: draws 0.0005, importance estimate ≈ 0.005


def test_pi_stays_inside_the_spec_support_and_requires() -> None:
    spec = gmhf.load("domain duffing\nshift beta in 0.0 .. 2.4\nshift gamma in 0.2 .. 2.0\nrequire gamma < beta + 0.5\n")
    agent, _ = steer(spec, truth(), 1.0, 60)
    drawn = agent.sample(2000, generator=torch.Generator().manual_seed(1))
    assert bool(spec.accepts(drawn).all())
    assert bool(torch.isfinite(agent.log_prob(drawn)).all())


def test_two_agents_fed_the_same_answers_are_the_same_policy() -> None:
    """Replay: π is a function of the answers; identical state and identical draws from one stream."""
    spec = gmhf.load(VAGUE)
    first, _ = steer(spec, truth(), 0.9, 80)
    second, _ = steer(spec, truth(), 0.9, 80)
    assert first.state() == second.state()
    assert torch.equal(first.eta, second.eta)
    one = first.sample(500, generator=torch.Generator().manual_seed(3)).values
    two = second.sample(500, generator=torch.Generator().manual_seed(3)).values
    assert torch.equal(one, two)


def test_a_feedback_loop_replayed_from_its_store_rebuilds_the_same_policy(tmp_path: Path) -> None:
    """Through the engine: a second loop reading the stored answers (asking nobody) ends at the same π."""
    spec, target = gmhf.load(VAGUE), truth()
    generator = SimulatorGenerator(spec.domain)

    def loop(store: FeedbackStore) -> tuple[FeedbackLoop, ReinforceSteerer]:
        agent = ReinforceSteerer(spec, seed=4)
        return FeedbackLoop(agent, [cast(Expert, SimulatedExpert(target, 0.9, seed=4))], store, domain=spec.domain,
                            generator=generator, truth=None, seed=4, answers_per_round=5), agent

    with FeedbackStore(tmp_path / "feedback.sqlite") as store:
        live, asked = loop(store)
        reports = [live.run_round(r, measure=False) for r in range(12)]
        replay, replayed = loop(store)
        again = [replay.run_round(r, ask=False, measure=False) for r in range(12)]
    assert [r.row() for r in reports] == [r.row() for r in again]
    assert torch.equal(asked.eta, replayed.eta) and asked.answers_used == 60


def test_reweighing_replays_the_path_as_if_the_weights_had_been_used_from_the_start() -> None:
    """`reweigh` (the loop's new estimate of an expert) rebuilds π step by step with the new weights."""
    spec, target = gmhf.load(VAGUE), truth()
    rounds = []
    for round_ in range(8):
        values = spec.sample(5, seed=round_).values
        values[:2] = target.sample(2, seed=100 + round_).values
        rounds.append((values, ["accept", "accept", "reject", "reject", "unsure"]))
    weighted, reweighed = ReinforceSteerer(spec), ReinforceSteerer(spec)
    for values, answers in rounds:
        weighted.update(values, answers, [0.95] * 5)
        reweighed.update(values, answers, [0.7] * 5)
    assert not torch.equal(weighted.eta, reweighed.eta)
    reweighed.reweigh([0.95] * 32)  # the sure answers only
    assert torch.equal(weighted.eta, reweighed.eta) and weighted.state() == reweighed.state()
    with pytest.raises(ValueError, match="one entry per answer taken \\(32\\)"):
        reweighed.reweigh([0.9] * 40)


def test_the_kl_pull_grows_with_the_spec_trust() -> None:
    """The same answers move π less from q_H (KL on the probe) when the spec's author is trusted more."""
    target = truth()
    plausible = target.sample(40, seed=1).values
    text = Path(VAGUE).read_text()
    divergence = {}
    for trust in (0.1, 1.0):
        spec = gmhf.load(text.replace("trust 0.8", f"trust {trust}"))
        agent = ReinforceSteerer(spec)
        assert agent.pull == pytest.approx(0.05 * trust)
        far = spec.sample(40, seed=2).values
        far = far[~target.accepts(far)][:5]
        for start in range(0, 20, 5):  # each round: five accepted truths and five rejected draws
            agent.update(torch.cat([plausible[start:start + 5], far]), ["accept"] * 5 + ["reject"] * 5, [1.0] * 10)
        assert bool((agent.spread() > FLOOR).all())  # the floor is not what holds π here
        divergence[trust] = agent.state()["kl_from_spec"]
        drawn = agent.sample(20_000, generator=torch.Generator().manual_seed(1)).values
        sampled = float((agent.log_prob(drawn) - spec.log_prob(drawn)).mean())  # the same KL by sampling
        assert sampled == pytest.approx(divergence[trust], abs=0.05)
    # the probe fixes both KLs exactly (no sampling noise): λ = 0.05 vs 0.005 over 4 rounds is a few per cent
    assert 0 < divergence[1.0] < 0.98 * divergence[0.1], divergence


def test_the_spread_never_falls_below_the_floor() -> None:
    """Accepts at one point only: π narrows onto it, but each steered factor keeps ≥ FLOOR of q_H's spread."""
    spec = gmhf.load(VAGUE)
    agent = ReinforceSteerer(spec)
    point = spec.sample(1, seed=5).values.repeat(5, 1)
    for _ in range(60):
        agent.update(point, ["accept"] * 5, [1.0] * 5)
        agent.update(spec.sample(5, seed=_).values, ["reject"] * 5, [1.0] * 5)
    assert bool((agent.spread() >= FLOOR - 1e-9).all()), agent.spread()
    drawn = agent.sample(8000, generator=torch.Generator().manual_seed(2)).values
    reference = spec.sample(8000, seed=2).values
    for name in ("beta", "gamma"):
        column = spec.space.index(name)
        ratio = float(drawn[:, column].std() / reference[:, column].std())
        assert FLOOR * 0.9 <= ratio < 0.5, (name, ratio)  # narrowed, but not below the floor (10 % for sampling)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_a_perfect_expert_puts_most_of_pi_in_the_truth_within_300_answers(seed: int) -> None:
    """q_H has 2.3 % of its draws inside the truth; after 300 answers at p = 1 π has at least 85 %."""
    spec, target = gmhf.load(VAGUE), truth()
    assert inside(ReinforceSteerer(spec, seed=seed), target) < 0.05
    agent, _ = steer(spec, target, 1.0, 300, seed=seed)
    assert inside(agent, target) >= 0.85


def test_bad_arguments_are_clear_errors() -> None:
    agent = ReinforceSteerer(gmhf.load(VAGUE))
    with pytest.raises(ValueError, match="same length"):
        agent.update(torch.zeros(2, len(agent.space), dtype=torch.float64), ["accept"], [1.0])
    with pytest.raises(UsageError, match="`n` must be a non-negative int"):
        agent.sample(-1, generator=torch.Generator())
    assert agent.propose(0, generator=torch.Generator()).shape == (0, len(agent.space))
