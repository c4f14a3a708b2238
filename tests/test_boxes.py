"""The box posterior: it locates a box from few answers, asks where answers teach most, and replays exactly."""

from __future__ import annotations

import math

import torch

from gmhf.core.boxes import BoxPosterior
from gmhf.core.reliability import Ledger

LOW, HIGH = torch.tensor([-1.7, -1.7], dtype=torch.float64), torch.tensor([1.7, 1.7], dtype=torch.float64)
BOX = torch.tensor([[-0.4, 0.1], [0.2, 0.6]], dtype=torch.float64)  # lower and upper corner


def inside(x: torch.Tensor) -> torch.Tensor:
    return ((x >= BOX[0]) & (x <= BOX[1])).all(1).to(torch.float64)


def located(rounds: int, *, choose: bool, seed: int = 0, flip: float = 0.0) -> tuple[BoxPosterior, torch.Tensor]:
    """Rounds of 5 answers about points drawn uniformly (choose=False) or picked by `select` among 2,000."""
    model = BoxPosterior(LOW, HIGH, seed=seed)
    stream = torch.Generator().manual_seed(100 + seed)
    x, y = torch.empty(0, 2, dtype=torch.float64), torch.empty(0, dtype=torch.float64)
    for round_ in range(rounds):
        candidates = LOW + (HIGH - LOW) * torch.rand(2000 if choose else 5, 2, generator=stream, dtype=torch.float64)
        asked = candidates[model.select(candidates, [1 - flip] * 5, generator=stream)] if choose and round_ >= 4 else candidates[:5]
        truth = inside(asked)
        wrong = torch.rand(5, generator=stream, dtype=torch.float64) < flip
        x, y = torch.cat([x, asked]), torch.cat([y, torch.where(wrong, 1 - truth, truth)])
        model.fit(x, y, torch.full((len(y),), max(1 - flip, 0.5), dtype=torch.float64))
    return model, x


def posterior_bounds(model: BoxPosterior) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior mean and standard deviation of the four bounds `[4]`."""
    w = model.log_weight.exp()[:, None]
    bounds = torch.cat([model.lower, model.upper], 1)
    mean = (w * bounds).sum(0)
    return mean, (w * (bounds - mean) ** 2).sum(0).sqrt()


def test_chosen_questions_locate_a_box_far_faster_than_random_ones() -> None:
    """Measured (seed 0): after 100 answers the bounds' posterior sd is ≤ 0.01 with `select`, 0.03-0.1 at random."""
    chosen, _ = located(20, choose=True)
    random, _ = located(20, choose=False)
    mean, sd = posterior_bounds(chosen)
    assert torch.allclose(mean, BOX.flatten(), atol=0.03), mean
    assert float(sd.max()) < 0.02, sd
    assert float(posterior_bounds(random)[1].max()) > 2 * float(sd.max())


def test_s_is_near_one_inside_near_zero_outside_and_one_half_on_the_bounds() -> None:
    model, _ = located(20, choose=True)
    centre = BOX.mean(0, keepdim=True)
    assert float(model.probability(centre)) > 0.99
    assert float(model.probability(torch.tensor([[1.5, 1.5]], dtype=torch.float64))) < 0.01
    assert abs(float(model.probability(torch.tensor([[-0.4, 0.35]], dtype=torch.float64))) - 0.5) < 0.35


def test_noisy_answers_still_locate_the_box() -> None:
    """Answers flipped 10 % of the time, 200 of them: every bound within 0.08 of the truth (measured: 0.01-0.04)."""
    model, _ = located(40, choose=True, flip=0.1)
    mean, _ = posterior_bounds(model)
    assert torch.allclose(mean, BOX.flatten(), atol=0.08), mean


def test_a_round_of_questions_spreads_over_the_bounds() -> None:
    """Joint information: no two questions of one round ask about the same spot of the same bound."""
    model, _ = located(12, choose=True)
    candidates = LOW + (HIGH - LOW) * torch.rand(4000, 2, generator=torch.Generator().manual_seed(5),
                                                 dtype=torch.float64)
    picked = candidates[model.select(candidates, [1.0] * 4, generator=torch.Generator())]
    assert len(set(map(tuple, picked.tolist()))) == 4
    assert float(torch.pdist(picked).min()) > 0.02
    s = model.probability(picked)
    assert abs(float(s[0]) - 0.5) < 0.2, s  # the first is where the answer is most uncertain


def test_replaying_the_same_answers_rebuilds_the_same_posterior() -> None:
    first, x = located(10, choose=True, seed=3)
    second, y = located(10, choose=True, seed=3)
    assert torch.equal(x, y)
    assert torch.equal(first.lower, second.lower) and torch.equal(first.log_weight, second.log_weight)


def test_answers_without_evidence_leave_the_model_unfitted() -> None:
    """Answers at p = ½ carry nothing: the model says so (the agent then keeps π = q_H exactly)."""
    model = BoxPosterior(LOW, HIGH, seed=0)
    x = torch.rand(10, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model.fit(x, inside(x), torch.full((10,), 0.5, dtype=torch.float64))
    assert not model.fitted


def test_the_prior_puts_every_point_inside_equally_often() -> None:
    """Each point of the range lies inside with the same prior probability, so no answer means no preference."""
    model = BoxPosterior(LOW, HIGH, seed=0, particles=20_000)
    grid = torch.stack(torch.meshgrid(torch.linspace(-1.6, 1.6, 5, dtype=torch.float64),
                                      torch.linspace(-1.6, 1.6, 5, dtype=torch.float64), indexing="ij"), -1)
    s = model.probability(grid.reshape(-1, 2))
    assert float(s.max() - s.min()) < 0.03, s  # 20,000 draws: sd of each share about 0.003


def test_the_ledger_takes_the_agents_judgements_as_given() -> None:
    """Judged by the agent: agreeing with confident z̃ nine times in ten keeps a claim of 0.9; a coin does not."""
    stream = torch.Generator().manual_seed(0)
    ledger = Ledger([0.9, 0.9])
    for _ in range(10):
        z = torch.where(torch.rand(5, generator=stream) < 0.5, 0.98, 0.02).to(torch.float64)
        honest = torch.where(torch.rand(5, generator=stream) < 0.9, z.round(), 1 - z.round())
        coin = (torch.rand(5, generator=stream) < 0.5).to(torch.float64)
        found = ledger.add(torch.zeros(10, 2, dtype=torch.float64), torch.cat([honest, coin]),
                           torch.tensor([0] * 5 + [1] * 5), torch.cat([z, z]))
    assert found[0].believable and found[0].used == 0.9
    assert not found[1].believable and math.isclose(found[1].used, found[1].estimate) and found[1].estimate < 0.7
