"""Reliability read from the answers: an over-confident expert is caught, a good one is not slowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gmhf
from gmhf.core.engine import FeedbackLoop
from gmhf.core.generator import SimulatorGenerator
from gmhf.core.metrics import mmd
from gmhf.core.reliability import Ledger, estimate_reliabilities
from gmhf.core.steer import PosteriorSteerer
from gmhf.core.store import FeedbackStore
from gmhf.experts.simulated import SimulatedExpert

VAGUE = "examples/specs/duffing_vague.guide"
TRUTH = "gmhf/domains/duffing/truth.guide"


def loop(tmp_path: Path, experts: list[SimulatedExpert], seed: int,
         name: str = "feedback") -> tuple[FeedbackLoop, PosteriorSteerer]:
    spec = gmhf.load(VAGUE)
    agent = PosteriorSteerer(spec, seed=seed)
    store = FeedbackStore(tmp_path / f"{name}-{seed}.sqlite")
    return FeedbackLoop(agent, experts, store, domain=spec.domain, generator=SimulatorGenerator(spec.domain),
                        truth=None, seed=seed, answers_per_round=5), agent


def distance_to_truth(source: gmhf.Guidance | PosteriorSteerer, truth: gmhf.Guidance) -> float:
    """MMD² between 1,024 draws of `source` and of the truth, columns scaled by the truth's spread."""
    drawn = source.sample(1024, generator=torch.Generator().manual_seed(11)).values
    target = truth.sample(1024, generator=torch.Generator().manual_seed(12)).values
    centre, spread = target.mean(0), target.std(0).clamp(min=1e-12)
    return mmd((drawn - centre) / spread, (target - centre) / spread).value


def test_a_reject_everything_record_judged_against_itself_is_no_evidence() -> None:
    """With every answer judged undecided (z̃ = ½) the estimate stays at the stated value."""
    found = estimate_reliabilities([0.8, None], torch.full((6,), 0.5, dtype=torch.float64),
                                   torch.tensor([1.0, 0, 1, 0, 1, 0]), torch.tensor([0, 0, 0, 1, 1, 1]))
    assert [(r.estimate, r.used, r.believable) for r in found] == [(0.8, 0.8, True), (0.75, 0.75, False)]


def test_an_expert_who_contradicts_a_sure_record_is_doubted_and_one_who_agrees_is_not() -> None:
    """Answers judged against confident z̃: agreeing 90% keeps a claim of 0.9, agreeing 50% refutes it."""
    z = torch.tensor([0.95, 0.05] * 20, dtype=torch.float64)
    truth = (z > 0.5).to(torch.float64)
    flips = torch.zeros(40)
    flips[::10] = 1  # 10% wrong
    honest = torch.where(flips > 0, 1 - truth, truth)
    coin = torch.tensor([1.0, 1.0, 0.0, 0.0] * 10)  # right half the time, whatever z̃ says
    both = estimate_reliabilities([0.9, 0.9], torch.cat([z, z]), torch.cat([honest, coin]),
                                  torch.cat([torch.zeros(40, dtype=torch.long), torch.ones(40, dtype=torch.long)]))
    assert both[0].believable and both[0].used == 0.9 and abs(both[0].estimate - 0.9) < 0.06
    assert not both[1].believable and both[1].used == both[1].estimate and both[1].estimate < 0.6


def test_the_ledger_judges_each_round_only_by_the_rounds_before_it() -> None:
    """The first round has nothing before it: nothing to judge by, so the claims stand."""
    ledger = Ledger([0.9])
    found = ledger.add(torch.zeros(5, 2, dtype=torch.float64), torch.tensor([1.0, 0, 1, 0, 1]),
                       torch.zeros(5, dtype=torch.long))
    assert found[0].used == 0.9 and found[0].estimate == 0.9


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_an_expert_answering_at_random_but_claiming_0_9_is_caught_within_150_answers(tmp_path: Path,
                                                                                    seed: int) -> None:
    """Measured over seeds 0-9 after 150 answers: estimates 0.50-0.59, π's MMD to the truth within
    2% of the spec's in every seed (the spec alone: 0.64-0.66)."""
    truth = gmhf.load(TRUTH)
    run, agent = loop(tmp_path, [SimulatedExpert(truth, 0.5, claims=0.9, seed=seed)], seed)
    for round_ in range(30):
        report = run.run_round(round_, measure=False)
    (estimate,) = report.reliability.values()
    assert abs(estimate - 0.5) <= 0.1, report.reliability
    assert not run.reliabilities[0].believable
    spec_only = distance_to_truth(gmhf.load(VAGUE), truth)
    assert distance_to_truth(agent, truth) <= spec_only * 1.05, (distance_to_truth(agent, truth), spec_only)


@pytest.mark.slow
def test_a_good_expert_keeps_its_stated_weight_and_a_useless_one_adds_nothing(tmp_path: Path) -> None:
    """Answers at 0.9 stay weighted 0.9 however the estimate settles; beside an expert answering at
    random who claims 0.9, π reaches the truth's support as with the good expert alone."""
    truth = gmhf.load(TRUTH)
    good = SimulatedExpert(truth, 0.9, seed=0)
    alone, alone_agent = loop(tmp_path, [good], 0, "alone")
    panel, panel_agent = loop(tmp_path, [good, SimulatedExpert(truth, 0.5, claims=0.9, seed=0, index=1)], 0, "panel")
    for round_ in range(30):
        alone.run_round(round_, measure=False)
        report = panel.run_round(round_, measure=False)
    weights = list(report.weights.values())
    assert weights[0] == 0.9 and weights[1] < 0.65, report.weights

    def inside(agent: PosteriorSteerer) -> float:
        drawn = agent.sample(2048, generator=torch.Generator().manual_seed(7)).values
        return float(truth.accepts(drawn).to(torch.float64).mean())

    assert inside(panel_agent) >= inside(alone_agent) - 0.1, (inside(panel_agent), inside(alone_agent))
