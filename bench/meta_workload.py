"""bench/meta.py's workload: sinusoid tasks, the meta-trained MLP, and the helpers every contender uses."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from gmhf.core.learners import mlp
from gmhf.core.tasks import TaskBatch

SEED = 0
INNER_LR, INNER_STEPS, OUTER_LR = 0.01, 5, 1e-3
SUPPORT = QUERY = 10
HIDDEN = (40, 40)
LEARNERS = ("maml", "fomaml", "anil", "reptile")

Fill = Callable[[TaskBatch], None]  # fills the model's .grad with one batch's meta-gradient


# ------------------------------------------------------------------------------------ workload


def sinusoid_tasks(b: int, seed: int) -> TaskBatch:
    """B sinusoid tasks, float32: amplitude U(0.1, 5), phase U(0, π), x U(-5, 5)."""
    g = torch.Generator().manual_seed(seed)
    amplitude = 0.1 + 4.9 * torch.rand(b, 1, 1, generator=g)
    phase = torch.pi * torch.rand(b, 1, 1, generator=g)
    x = 10 * torch.rand(b, SUPPORT + QUERY, 1, generator=g) - 5
    y = amplitude * torch.sin(x - phase)
    return TaskBatch(x[:, :SUPPORT], y[:, :SUPPORT], x[:, SUPPORT:], y[:, SUPPORT:],
                     torch.cat([amplitude, phase], -1)[:, 0], torch.ones(b, dtype=torch.bool))


def new_model() -> nn.Sequential:
    """The meta-trained MLP 1-40-40-1, the same weights on every call."""
    return mlp(1, 1, HIDDEN, generator=torch.Generator().manual_seed(SEED))


def mse(prediction: Tensor, target: Tensor) -> Tensor:
    return ((prediction - target) ** 2).mean()


def add_grad(params: list[nn.Parameter], values: list[Tensor] | tuple[Tensor, ...], scale: float) -> None:
    for p, v in zip(params, values, strict=True):
        p.grad = v * scale if p.grad is None else p.grad + v * scale


def second_order(learner: str) -> bool:
    return learner in ("maml", "anil")

