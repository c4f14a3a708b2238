"""MAML and its cheaper relatives: first-order MAML and ANIL (adapt only the head).

All three differentiate a task's query loss after a few SGD steps on its support set. Second-order
MAML backpropagates through those steps (Hessian-vector products); first-order MAML treats the
inner gradients as constants; ANIL adapts only the last layer and keeps the body shared, which
makes the inner loop one shared feature pass plus a small batched head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gmhf.core.learners.base import MetaLearner
from gmhf.core.learners.functional import batched_forward, inner_sgd, single_task_copy, task_losses
from gmhf.core.tasks import TaskBatch
from gmhf.errors import UsageError

__all__ = ["ANIL", "MAML", "FirstOrderMAML", "head_names"]


def head_names(model: nn.Module) -> list[str]:
    """The parameters of the last submodule that has any: a network's output layer."""
    names = [k for k, v in model.named_parameters() if v.requires_grad]
    if not names:
        raise UsageError("the model has no trainable parameters.")
    owner = names[-1].rpartition(".")[0]
    return [k for k in names if k.rpartition(".")[0] == owner]


class MAML(MetaLearner):
    """Model-agnostic meta-learning, batched over tasks.

    Args:
        model: the network whose initial weights are meta-learned.
        inner_lr: step size of the inner SGD steps.
        inner_steps: inner steps during meta-training; also the default for `adapt`/`evaluate`.
        first_order: ignore second-order terms (cheaper, usually a little worse).
        adapt: parameter names (or name prefixes) adapted in the inner loop; None adapts all.
        loss, tasks_per_chunk: see `MetaLearner`.
    """

    name = "maml"

    def __init__(self, model: nn.Module, *, inner_lr: float = 0.01, inner_steps: int = 5, first_order: bool = False,
                 adapt: Sequence[str] | None = None, loss: str = "mse", tasks_per_chunk: int | None = None) -> None:
        super().__init__(model, loss=loss, tasks_per_chunk=tasks_per_chunk)
        if inner_steps < 0:
            raise UsageError(f"`inner_steps` must be non-negative, got {inner_steps}.")
        self.inner_lr, self.inner_steps, self.first_order = float(inner_lr), int(inner_steps), bool(first_order)
        names = list(self.params())
        if adapt is None:
            self.adapted = names
        else:
            self.adapted = [k for k in names if any(k == a or k.startswith(f"{a}.") for a in adapt)]
            if not self.adapted:
                raise UsageError(f"`adapt` {list(adapt)} matches no parameter; the model has {', '.join(names)}.")
        self.forward = batched_forward(model)

    def _adapt(self, weights: dict[str, Tensor], x: Tensor, y: Tensor, steps: int, first_order: bool
               ) -> dict[str, Tensor]:
        return inner_sgd(self.forward, self.loss, weights, self.adapted, x, y, steps=steps, lr=self.inner_lr,
                         first_order=first_order)

    def task_losses(self, batch: TaskBatch) -> Tensor:
        """Query losses after `inner_steps` steps, with the graph back to the meta-parameters."""
        fast = self._adapt(self.params(), batch.support_x, batch.support_y, self.inner_steps, self.first_order)
        return task_losses(self.forward, self.loss, fast, batch.query_x, batch.query_y)

    def evaluate(self, batch: TaskBatch, steps: int | None = None) -> Tensor:
        """Query losses after `steps` (default `inner_steps`) steps; no graph is kept."""
        self.check_batch(batch)
        steps = self.inner_steps if steps is None else steps
        weights = {k: v.detach() for k, v in self.params().items()}
        with torch.no_grad():
            fast = self._adapt(weights, batch.support_x, batch.support_y, steps, True)
            return task_losses(self.forward, self.loss, fast, batch.query_x, batch.query_y).detach()

    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int | None = None) -> nn.Module:
        """A copy of the model after `steps` SGD steps on one task's support."""
        steps = self.inner_steps if steps is None else steps
        weights = {k: v.detach() for k, v in self.params().items()}
        fast = self._adapt(weights, support_x[None], support_y[None], steps, True)
        return single_task_copy(self.model, fast)

    def options(self) -> dict[str, Any]:
        return {"inner_lr": self.inner_lr, "inner_steps": self.inner_steps, "first_order": self.first_order,
                **super().options()}


class FirstOrderMAML(MAML):
    """MAML without second-order terms (`first_order=True`)."""

    name = "fomaml"

    def __init__(self, model: nn.Module, **options: Any) -> None:
        super().__init__(model, **{"first_order": True, **options})


class ANIL(MAML):
    """Almost no inner loop: adapt only the head (the last layer), meta-learn the body's features."""

    name = "anil"

    def __init__(self, model: nn.Module, **options: Any) -> None:
        if options.get("adapt") is None:
            options["adapt"] = head_names(model)
        super().__init__(model, **options)
