"""What every meta-learner offers, and the pieces they share.

A learner owns an `nn.Module` and fills its parameters' `.grad` from a batch of tasks in
`backward`; the optimiser step stays outside, so any `torch.optim` optimiser works and a training
loop is the ordinary zero_grad / backward / step. `tasks_per_chunk` bounds peak memory: the batch
is processed in pieces whose gradients add up to the gradient of the whole batch.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from gmhf.core.tasks import TaskBatch
from gmhf.errors import UsageError

__all__ = ["LOSSES", "MetaLearner"]

#: Per-task losses: the mean over a task's examples.
LOSSES = ("mse", "cross_entropy")


class MetaLearner(abc.ABC):
    """Base class for meta-learners.

    Args:
        model: the network that is meta-trained (its parameters are what the outer optimiser moves).
        loss: `"mse"` for regression tasks, `"cross_entropy"` for classification with integer labels.
        tasks_per_chunk: most tasks processed at once; None processes the whole batch together.
    """

    name: ClassVar[str]
    #: What the model outputs: `"prediction"` (the targets, or one logit per class) or `"embedding"`
    #: (features compared between support and query, as ProtoNet does); the run layer sizes the
    #: model's last layer by it.
    output: ClassVar[Literal["prediction", "embedding"]] = "prediction"
    #: Whether the learner adapts by gradient steps and so takes `inner_steps` and `inner_lr`.
    inner_loop: ClassVar[bool] = True
    #: Adaptation steps of a deployment (the K of the k = K deployment loss); 0 without an inner loop.
    inner_steps: int = 0

    @classmethod
    def task_options(cls, classes: int | None) -> dict[str, Any]:
        """Options that tasks with `classes` classes (None: real targets) call for, e.g. the loss."""
        return {} if classes is None else {"loss": "cross_entropy"}

    def __init__(self, model: nn.Module, *, loss: str = "mse", tasks_per_chunk: int | None = None) -> None:
        if loss not in LOSSES:
            raise UsageError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}.")
        if tasks_per_chunk is not None and tasks_per_chunk < 1:
            raise UsageError(f"`tasks_per_chunk` must be at least 1, got {tasks_per_chunk}.")
        self.model = model
        self.loss = loss
        self.tasks_per_chunk = tasks_per_chunk

    def params(self) -> dict[str, Tensor]:
        """The model's trainable parameters by name."""
        return {k: v for k, v in self.model.named_parameters() if v.requires_grad}

    def check_batch(self, batch: TaskBatch) -> None:
        """Refuse targets the loss cannot use (real targets for a classifier, or the reverse)."""
        integer = not batch.support_y.is_floating_point()
        dtype = next((p.dtype for p in self.model.parameters()), batch.support_x.dtype)
        if batch.support_x.dtype != dtype:
            raise UsageError(f"the tasks' inputs are {batch.support_x.dtype} but the model's parameters are {dtype}; "
                             f"convert one of them (TaskBatch.to, model.to).")
        if self.loss == "cross_entropy" and not integer:
            raise UsageError(f"{self.name} with a cross-entropy loss needs integer class labels; "
                             f"these tasks have real targets (a regression domain).")
        if self.loss == "mse" and integer:
            raise UsageError(f"{self.name} with an mse loss needs real targets; these tasks have class labels "
                             f"(use loss='cross_entropy').")

    @abc.abstractmethod
    def task_losses(self, batch: TaskBatch) -> Tensor:
        """`[B]` query losses after adaptation, differentiable in the model's parameters."""

    def backward(self, batch: TaskBatch) -> Tensor:
        """Add the meta-gradient of the batch's mean query loss to `.grad`; return that loss.

        The mean is over valid tasks (invalid ones are left out before anything is computed, so
        their data cannot reach the gradient). With `tasks_per_chunk`, each chunk's share is backpropagated
        on its own, so the accumulated gradient is the whole batch's (up to float rounding).
        """
        self.check_batch(batch)
        if not bool(batch.valid.any()):
            return torch.full((), math.nan)  # nothing to learn from: a training loop counts a skipped step
        batch = batch.valid_only()
        total = torch.zeros((), dtype=batch.query_x.dtype)
        for chunk in batch.chunks(self.tasks_per_chunk):
            share = self.task_losses(chunk).sum() / len(batch)
            share.backward()
            total = total + share.detach()
        return total

    @abc.abstractmethod
    def evaluate(self, batch: TaskBatch, steps: int | None = None) -> Tensor:
        """`[B]` query losses after `steps` adaptation steps on each task's support (no gradients kept)."""

    @abc.abstractmethod
    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int | None = None) -> nn.Module:
        """A copy of the model adapted to one task's support `[S, ·]`, for deployment."""

    def options(self) -> dict[str, Any]:
        """The learner's settings, for run configs and reprs."""
        return {"loss": self.loss, "tasks_per_chunk": self.tasks_per_chunk}

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({settings})"
