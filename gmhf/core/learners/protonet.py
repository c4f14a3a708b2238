"""Prototypical networks: classify a query by its distance to each class's mean embedding.

Adaptation is closed-form (the prototypes are averages of the support embeddings), so the whole
batch of tasks is a few batched tensor operations: no inner loop, no vmap.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from gmhf.core.learners.base import MetaLearner
from gmhf.core.tasks import TaskBatch
from gmhf.errors import UsageError

__all__ = ["ProtoNet", "PrototypeClassifier", "prototypes", "prototype_logits"]


def prototypes(support: Tensor, labels: Tensor, ways: int) -> tuple[Tensor, Tensor]:
    """Class means `[B, C, d]` of support embeddings `[B, S, d]`, and which classes are present `[B, C]`."""
    one_hot = nn.functional.one_hot(labels, ways).to(support.dtype)  # [B, S, C]
    counts = one_hot.sum(1)  # [B, C]
    means = torch.bmm(one_hot.transpose(1, 2), support) / counts.clamp(min=1).unsqueeze(-1)
    return means, counts > 0


def prototype_logits(query: Tensor, means: Tensor, present: Tensor) -> Tensor:
    """Negative squared distances `[B, Q, C]`; classes absent from the support can never win."""
    distances = (query.unsqueeze(2) - means.unsqueeze(1)).pow(2).sum(-1)
    return (-distances).masked_fill(~present.unsqueeze(1), float("-inf"))


class PrototypeClassifier(nn.Module):
    """An embedding network and fixed prototypes: what ProtoNet deploys for one task."""

    means: Tensor
    present: Tensor

    def __init__(self, embed: nn.Module, means: Tensor, present: Tensor) -> None:
        super().__init__()
        self.embed = embed
        self.register_buffer("means", means)
        self.register_buffer("present", present)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits `[N, C]` for inputs `[N, ·]`."""
        return prototype_logits(self.embed(x)[None], self.means[None], self.present[None])[0]


class ProtoNet(MetaLearner):
    """Prototypical networks for classification tasks (integer labels 0..ways−1).

    Args:
        model: the embedding network.
        ways: number of classes per task; None takes the largest label in each batch plus one.
        tasks_per_chunk: see `MetaLearner`. The loss is always cross-entropy.
    """

    name = "protonet"
    output = "embedding"
    inner_loop = False

    @classmethod
    def task_options(cls, classes: int | None) -> dict[str, Any]:
        """ProtoNet's classes are counted from the tasks; regression tasks are refused by `check_batch`."""
        return {} if classes is None else {"ways": classes}

    def __init__(self, model: nn.Module, *, ways: int | None = None, loss: str = "cross_entropy",
                 tasks_per_chunk: int | None = None) -> None:
        if loss != "cross_entropy":
            raise UsageError("ProtoNet classifies: its loss is cross_entropy, and its tasks need class labels.")
        super().__init__(model, loss=loss, tasks_per_chunk=tasks_per_chunk)
        self.ways = ways

    def _ways(self, *labels: Tensor) -> int:
        return self.ways if self.ways is not None else max(int(x.max()) for x in labels) + 1

    def task_losses(self, batch: TaskBatch) -> Tensor:
        """Query cross-entropy per task `[B]`, differentiable in the embedding network."""
        ways = self._ways(batch.support_y, batch.query_y)
        b, s = batch.support_x.shape[:2]
        q = batch.query_x.shape[1]
        embedded = self.model(torch.cat([batch.support_x, batch.query_x], 1).flatten(0, 1)).reshape(b, s + q, -1)
        means, present = prototypes(embedded[:, :s], batch.support_y, ways)
        logits = prototype_logits(embedded[:, s:], means, present)
        per_example = nn.functional.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten(), reduction="none")
        return per_example.reshape(b, q).mean(1)

    def evaluate(self, batch: TaskBatch, steps: int | None = None) -> Tensor:
        """Query losses with prototypes from the support (`steps` does not apply and is ignored)."""
        self.check_batch(batch)
        with torch.no_grad():
            return self.task_losses(batch)

    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int | None = None) -> nn.Module:
        """A classifier with this task's prototypes."""
        with torch.no_grad():
            means, present = prototypes(self.model(support_x)[None], support_y[None], self._ways(support_y))
        return PrototypeClassifier(copy.deepcopy(self.model), means[0], present[0]).eval()

    def options(self) -> dict[str, Any]:
        return {"ways": self.ways, **super().options()}
