"""θ sources: anything with `space`, `sample` and `log_prob` feeds the task pool and the trainer."""

from __future__ import annotations

from pathlib import Path

import torch

import gmhf
from gmhf.core.generator import SimulatorGenerator
from gmhf.core.learners import MAML, mlp
from gmhf.core.rundir import RunDirectory
from gmhf.core.sources import ThetaSource
from gmhf.core.tasks import TaskPool
from gmhf.core.theta import Theta
from gmhf.core.trainer import TrainConfig, Trainer


class TableSource:
    """Draws rows of a fixed table uniformly: a θ source that is not a spec."""

    def __init__(self, rows: torch.Tensor, template: gmhf.Guidance) -> None:
        self.rows, self.space = rows, template.space

    def sample(self, n: int, *, generator: torch.Generator) -> Theta:
        index = torch.randint(0, len(self.rows), (n,), generator=generator)
        return Theta(self.rows[index], self.space.names)

    def log_prob(self, theta: Theta | torch.Tensor) -> torch.Tensor:
        values = theta.values if isinstance(theta, Theta) else theta
        hit = (values[:, None, :] == self.rows[None]).all(-1).any(-1)
        return torch.where(hit, torch.tensor(-float(torch.log(torch.tensor(len(self.rows))))),
                           torch.tensor(-torch.inf)).to(torch.float64)


def test_guidance_and_a_table_are_theta_sources() -> None:
    guidance = gmhf.load("domain sinusoid")
    table = TableSource(guidance.sample(3, seed=0).values, guidance)
    assert isinstance(guidance, ThetaSource) and isinstance(table, ThetaSource)


def test_a_source_other_than_a_spec_trains_through_the_same_trainer(tmp_path: Path) -> None:
    """Tasks come only from the table's rows, and a Trainer meta-trains on them as on a spec's."""
    guidance = gmhf.load("domain sinusoid")
    rows = guidance.sample(4, seed=1).values
    source = TableSource(rows, guidance)
    pool = TaskPool(source, SimulatorGenerator(guidance.domain), guidance.domain, size=32, support=5, query=5, seed=0)
    assert bool((pool.theta[:, None, :] == rows[None]).all(-1).any(-1).all())
    evaluation = TaskPool.from_spec(guidance, size=8, support=5, query=5, seed=1).sample(8)
    learner = MAML(mlp(1, 1, (8,), generator=torch.Generator().manual_seed(0)), inner_steps=1)
    directory = RunDirectory(tmp_path / "run")
    directory.create({})
    config = TrainConfig(spec="domain sinusoid", steps=5, meta_batch=4, checkpoint_every=5)
    result = Trainer(config, learner=learner, pool=pool, evaluation=evaluation, directory=directory).run()
    assert result.step == 5 and set(result.deployment) == {"k0", "k1"}
    assert len(directory.metrics.read_text().splitlines()) == 6  # five steps and the deployment line
