"""Reptile: move the initial weights toward the weights each task's SGD steps reach.

No gradient flows through the inner loop. `backward` writes θ − mean(φ_task) into `.grad`, so an
outer `torch.optim.SGD` with step size ε performs the Reptile update θ ← θ + ε(φ̄ − θ), and any
other optimiser can be used on the same direction.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from gmhf.core.learners.base import MetaLearner
from gmhf.core.learners.functional import batched_forward, inner_sgd, single_task_copy, task_losses
from gmhf.core.tasks import TaskBatch
from gmhf.errors import UsageError

__all__ = ["Reptile"]


class Reptile(MetaLearner):
    """Reptile, batched over tasks.

    Args:
        model: the network whose initial weights are meta-learned.
        inner_lr: step size of the inner SGD steps (on each task's support set).
        inner_steps: inner steps per task; also the default for `adapt`/`evaluate`.
        loss, tasks_per_chunk: see `MetaLearner`.

    The loss `backward` returns is the query loss after adaptation, for monitoring.
    """

    name = "reptile"

    def __init__(self, model: nn.Module, *, inner_lr: float = 0.01, inner_steps: int = 5, loss: str = "mse",
                 tasks_per_chunk: int | None = None) -> None:
        super().__init__(model, loss=loss, tasks_per_chunk=tasks_per_chunk)
        if inner_steps < 1:
            raise UsageError(f"Reptile needs at least one inner step, got {inner_steps}.")
        self.inner_lr, self.inner_steps = float(inner_lr), int(inner_steps)
        self.forward = batched_forward(model)

    def _adapt(self, x: Tensor, y: Tensor, steps: int) -> dict[str, Tensor]:
        weights = {k: v.detach() for k, v in self.params().items()}
        with torch.no_grad():
            fast = inner_sgd(self.forward, self.loss, weights, list(weights), x, y, steps=steps, lr=self.inner_lr,
                             first_order=True)
        return {k: v.detach() for k, v in fast.items()}

    def task_losses(self, batch: TaskBatch) -> Tensor:
        """Query losses after adaptation (Reptile's update does not differentiate them)."""
        fast = self._adapt(batch.support_x, batch.support_y, self.inner_steps)
        return task_losses(self.forward, self.loss, fast, batch.query_x, batch.query_y)

    def backward(self, batch: TaskBatch) -> Tensor:
        """Add θ − mean(φ) over valid tasks to `.grad`; return the mean adapted query loss."""
        self.check_batch(batch)
        if not bool(batch.valid.any()):
            return torch.full((), math.nan)  # nothing to learn from: a training loop counts a skipped step
        batch = batch.valid_only()
        params = self.params()
        total = torch.zeros((), dtype=batch.query_x.dtype)
        for chunk in batch.chunks(self.tasks_per_chunk):
            fast = self._adapt(chunk.support_x, chunk.support_y, self.inner_steps)
            for name, value in params.items():
                step = (value.detach() - fast[name]).sum(0) / len(batch)
                value.grad = step if value.grad is None else value.grad + step
            with torch.no_grad():
                total = total + task_losses(self.forward, self.loss, fast, chunk.query_x, chunk.query_y).sum() / len(batch)
        return total

    def evaluate(self, batch: TaskBatch, steps: int | None = None) -> Tensor:
        """Query losses after `steps` (default `inner_steps`) SGD steps on each support set."""
        self.check_batch(batch)
        fast = self._adapt(batch.support_x, batch.support_y, self.inner_steps if steps is None else steps)
        with torch.no_grad():
            return task_losses(self.forward, self.loss, fast, batch.query_x, batch.query_y)

    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int | None = None) -> nn.Module:
        """A copy of the model after `steps` SGD steps on one task's support."""
        fast = self._adapt(support_x[None], support_y[None], self.inner_steps if steps is None else steps)
        return single_task_copy(self.model, fast)

    def options(self) -> dict[str, Any]:
        return {"inner_lr": self.inner_lr, "inner_steps": self.inner_steps, **super().options()}
