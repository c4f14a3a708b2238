"""bench/cnode.py's problem: the settings, the warm-fitted model and its data, and `_train_step`'s batch draw."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

import gmhf
from gmhf.core.generator import ConditionalNODE
from gmhf.domains.duffing import Duffing

SEED = 0
#: The data: source Duffing trajectories on t = 0, 0.1, ..., 39.9 (long enough for 400-point windows).
SPACING, POINTS, TRAJECTORIES = 0.1, 400, 320
HIDDEN, DEPTH = 64, 2
#: Weights come from this many Adam steps of `fit` (window 20, B 64), so the field is not the tiny init.
WARM_FIT_STEPS = 30
WINDOW = 20
BATCHES = (64, 256)
STEPS = (0.1, 0.05)
#: Timed rounds per (B, h); the shared 2-core VM has slow phases of seconds, so the paired median needs several.
ROUNDS = 10
RUN_TARGET_S = 0.08
#: The issue's goal: gmhf's training step at least this many times as fast as torchdiffeq's, same steps.
GOAL = 2.0
LOSS_TOLERANCE, GRAD_TOLERANCE = 1e-10, 1e-8
NOISY = 0.25


@dataclass
class Batch:
    """One training batch, exactly as `ConditionalNODE._train_step` builds it."""

    theta: Tensor  # [b, k]
    target: Tensor  # [b, width, d]
    grid: Tensor  # [width] relative output times, in the data's dtype (as _train_step makes it)
    start: Tensor  # [b] absolute start times
    grid64: Tensor = field(default_factory=lambda: torch.empty(0))  # the same grid kept in float64

    @property
    def y0(self) -> Tensor:
        """Initial states: the targets' first points."""
        return self.target[:, 0]

    def to(self, dtype: torch.dtype) -> Batch:
        """A copy in `dtype` (the grid's values are kept, so the steps are the same)."""
        return Batch(self.theta.to(dtype), self.target.to(dtype), self.grid.to(dtype), self.start.to(dtype),
                     self.grid64)


def problem() -> tuple[ConditionalNODE, Tensor, Tensor]:
    """The warm-fitted model and its training data (float32, as `fit` keeps them)."""
    theta = gmhf.load("domain duffing\n").sample(TRAJECTORIES, seed=SEED).values.to(torch.float64)
    horizon = (0.0, SPACING * (POINTS - 1))
    data = Duffing().simulate(theta, points=POINTS, horizon=horizon)
    trajectories = torch.stack((data["x"], data["v"]), -1)
    model = new_model(data["t"])
    model.fit(trajectories, theta, steps=WARM_FIT_STEPS, batch_size=64, window=WINDOW,
              validate_every=WARM_FIT_STEPS, generator=torch.Generator().manual_seed(SEED), progress=False)
    trajectories, theta = model._check(trajectories, theta)
    return model, trajectories, theta


def new_model(t: Tensor) -> ConditionalNODE:
    """The benchmarked architecture (Duffing, forcing features cos/sin(ωt))."""
    return ConditionalNODE(Duffing().space, Duffing.state_factors, t=t, forcing_frequency="omega", step=0.1,
                           hidden=HIDDEN, depth=DEPTH, seed=SEED)


def make_batch(model: ConditionalNODE, data: Tensor, theta: Tensor, size: int, width: int, seed: int) -> Batch:
    """`_train_step`'s draw: random rows, random window starts, targets, relative grid, absolute starts."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(data), generator=generator)[:size]
    starts = torch.randint(len(model.t) - width + 1, (len(rows),), generator=generator)
    target = data[rows[:, None], starts[:, None] + torch.arange(width)]
    grid = (model.t[:width] - model.t[0]).to(data.dtype)
    return Batch(theta[rows], target, grid, model.t[starts].to(data.dtype), model.t[:width] - model.t[0])

