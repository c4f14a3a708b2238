"""Several experts in one loop: split (each its own questions, chosen together) or shared (every one all of them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gmhf
from gmhf.core.boxes import BoxPosterior
from gmhf.core.engine import FeedbackLoop
from gmhf.core.generator import SimulatorGenerator
from gmhf.core.reinforce import ReinforceSteerer
from gmhf.core.steer import PosteriorSteerer
from gmhf.core.store import FeedbackStore
from gmhf.experts.simulated import SimulatedExpert

VAGUE = "examples/specs/duffing_vague.guide"
TRUTH = "gmhf/domains/duffing/truth.guide"
LOW, HIGH = torch.tensor([-1.0, -1.0], dtype=torch.float64), torch.tensor([1.0, 1.0], dtype=torch.float64)
BOX = torch.tensor([[-0.4, 0.6], [0.1, 0.5]], dtype=torch.float64)  # [lower, upper] of each factor's truth


def loop(path: Path, panel: str, seed: int = 3, agent: str = "posterior") -> FeedbackLoop:
    spec, truth = gmhf.load(VAGUE), gmhf.load(TRUTH)
    experts = [SimulatedExpert(truth, 0.9, seed=seed), SimulatedExpert(truth, 0.7, seed=seed, index=1)]
    steerer = PosteriorSteerer(spec, seed=seed) if agent == "posterior" else ReinforceSteerer(spec, seed=seed)
    return FeedbackLoop(steerer, experts, FeedbackStore(path), domain=spec.domain,
                        generator=SimulatorGenerator(spec.domain), truth=None, seed=seed, answers_per_round=5,
                        panel=panel)  # type: ignore[arg-type]


def asked(store: FeedbackStore, expert: str) -> list[tuple[int, tuple[float, ...]]]:
    return [(r.round, tuple(r.values)) for r in store.records(expert=expert)]


@pytest.mark.parametrize(("panel", "agent"), [("split", "posterior"), ("shared", "posterior"), ("split", "reinforce")])
def test_each_expert_answers_its_own_questions_when_split_and_all_of_them_when_shared(tmp_path: Path, panel: str,
                                                                                       agent: str) -> None:
    """`reinforce` cannot choose for each expert: it draws a split round's ten questions at once."""
    run = loop(tmp_path / "feedback.sqlite", panel, agent=agent)
    for round_ in range(4):
        report = run.run_round(round_, measure=False)
    assert report.answers == 40  # 5 a round for each of the two experts, either way
    first, second = asked(run.store, "0:simulated:0.9"), asked(run.store, "1:simulated:0.7")
    assert len(first) == len(second) == 20
    shared = set(first) & set(second)
    assert (len(shared) == 0) if panel == "split" else (len(shared) == 20)


def test_a_split_panel_replays_from_its_store_exactly(tmp_path: Path) -> None:
    """A resumed run asks nothing: every question of a split round is found under its own expert."""
    path = tmp_path / "feedback.sqlite"
    first = loop(path, "split")
    for round_ in range(4):
        first.run_round(round_, measure=False)
    first.store.close()
    replay = loop(path, "split")
    for round_ in range(4):
        replay.run_round(round_, ask=False, measure=False)  # a question not in the store raises
    probe = torch.Generator().manual_seed(0)
    rows = gmhf.load(VAGUE).sample(256, generator=probe).values
    assert torch.equal(first.steerer.plausibility(rows), replay.steerer.plausibility(rows))  # type: ignore[attr-defined]


def located_model() -> BoxPosterior:
    """A box posterior after 60 answers at random points of the square (seed 0)."""
    model = BoxPosterior(LOW, HIGH, seed=0)
    x = LOW + (HIGH - LOW) * torch.rand(60, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    inside = ((x >= BOX[:, 0]) & (x <= BOX[:, 1])).all(1).to(torch.float64)
    model.fit(x, inside, torch.full((60,), 0.95, dtype=torch.float64))
    return model


def test_a_round_for_several_experts_spreads_over_the_bounds_and_thins_its_outcomes_reproducibly() -> None:
    """Twelve answers (more than the 7 whose outcomes are kept exactly): twelve different, spread-out questions,
    the same again from the same generator, the surest expert's first question where s is nearest ½."""
    model = located_model()
    candidates = LOW + (HIGH - LOW) * torch.rand(6000, 2, generator=torch.Generator().manual_seed(2),
                                                 dtype=torch.float64)
    reliabilities = [0.7] * 6 + [0.9] * 6
    picked = model.select(candidates, reliabilities, generator=torch.Generator().manual_seed(4))
    again = model.select(candidates, reliabilities, generator=torch.Generator().manual_seed(4))
    assert picked == again
    assert len(set(picked)) == 12
    assert float(torch.pdist(candidates[picked]).min()) > 0.01
    s = model.probability(candidates)
    assert abs(float(s[picked[6]]) - 0.5) <= float((s - 0.5).abs().min()) + 1e-3  # the 0.9 answers go first


def test_an_answer_at_one_half_teaches_nothing_and_its_question_changes_no_other() -> None:
    """A third expert weighed ½ beside two others: the two keep exactly the questions they get alone."""
    model = located_model()
    candidates = LOW + (HIGH - LOW) * torch.rand(3000, 2, generator=torch.Generator().manual_seed(3),
                                                 dtype=torch.float64)
    two = model.select(candidates, [0.9, 0.9, 0.7], generator=torch.Generator())
    three = model.select(candidates, [0.9, 0.5, 0.9, 0.7], generator=torch.Generator())
    assert [three[0], three[2], three[3]] == two


def test_an_unknown_panel_is_a_usage_error(tmp_path: Path) -> None:
    from gmhf.errors import UsageError

    with pytest.raises(UsageError, match="`panel` must be 'split' or 'shared', got 'both'"):
        loop(tmp_path / "feedback.sqlite", "both")
