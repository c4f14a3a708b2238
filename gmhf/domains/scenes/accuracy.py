"""Classification accuracy of a meta-learner on tasks: the share of query pictures it labels right.

The trainer reports the deployment *loss* (cross-entropy); for a classifier a person reads accuracy.
Each task is adapted on its own support (`MetaLearner.adapt`), so any learner can be scored alike.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gmhf.core.learners.base import MetaLearner
from gmhf.core.tasks import TaskBatch

__all__ = ["task_accuracy"]


def task_accuracy(learner: MetaLearner, batch: TaskBatch, steps: int | None = None) -> Tensor:
    """`[B]` share of each task's query examples whose predicted class is right, after adapting to its support.

    `steps` are the adaptation steps (default: the learner's own); NaN for invalid tasks. Tasks
    scored by two learners with the same batch can be compared task by task (paired).
    """
    right = torch.full((len(batch),), float("nan"), dtype=torch.float64)
    for i in range(len(batch)):
        if not bool(batch.valid[i]):
            continue
        model = learner.adapt(batch.support_x[i], batch.support_y[i], steps)
        with torch.no_grad():
            predicted = model(batch.query_x[i]).argmax(-1)
        right[i] = (predicted == batch.query_y[i]).to(torch.float64).mean()
    return right
