"""The meta-training loop: a learner, a task pool, checkpoints, and the deployment loss on truth tasks.

The `Trainer` receives built objects and loads nothing: the run layer (`gmhf.runs`) reads the
specs, the plugins and the config and hands it a learner, a pool and the evaluation tasks. A
checkpoint holds the model, the optimiser, the pool (its environments and its random stream) and
the step, so a run killed at any moment and resumed from its last checkpoint produces the same
parameters and the same metrics as one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor

from gmhf.core.tasks import TaskBatch, mean_over_valid
from gmhf.errors import GmhfError

if TYPE_CHECKING:
    from gmhf.core.learners.base import MetaLearner
    from gmhf.core.rundir import RunDirectory
    from gmhf.core.tasks import TaskPool

__all__ = ["TrainConfig", "TrainResult", "Trainer"]


class TrainConfig(BaseModel):
    """Everything that decides a meta-training run (saved as the run's `config.json`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    spec: str = Field(description="the spec tasks are generated from (a path or spec text)")
    pooled_with: tuple[str, ...] = Field((), description="more specs of the same domain, pooled with `spec` into "
                                                         "one belief weighted by each spec's trust")
    domain: str | None = Field(None, description="the domain of a spec without a `domain` line")
    truth: str | None = Field(None, description="spec of the target, for the deployment loss; default: the "
                                                "domain's benchmark truth if it ships one, else `spec`")
    learner: str = "maml"
    learner_options: dict[str, Any] = Field(default_factory=dict, description="e.g. inner_lr, inner_steps")
    hidden: tuple[int, ...] = (40, 40)
    steps: int = Field(1000, ge=0)
    meta_batch: int = Field(32, ge=1)
    support: int = Field(5, ge=1)
    query: int = Field(10, ge=1)
    pool_size: int = Field(1024, ge=1)
    refresh_every: int = Field(200, ge=0, description="meta-batches between pool regenerations (0: never)")
    optimizer: Literal["adam", "sgd"] = "adam"
    outer_lr: float = Field(1e-3, gt=0)
    tasks_per_chunk: int | None = Field(None, ge=1)
    seed: int = 0
    checkpoint_every: int = Field(100, ge=1)
    eval_every: int = Field(0, ge=0, description="steps between deployment-loss evaluations (0: at the end)")
    eval_tasks: int = Field(256, ge=1)
    max_bad_steps: int = Field(10, ge=1, description="non-finite steps in a row that stop the run")
    generator: Literal["sim", "cnode"] = Field("sim", description="where task data comes from: the domain's "
                                                                  "simulator, or a cNODE twin fitted to it")
    twin_samples: int = Field(512, ge=8, description="source simulations the cNODE twin is fitted on")
    twin_steps: int = Field(400, ge=1, description="optimiser steps of the twin's fit")

    @field_validator("learner_options")
    @classmethod
    def _finite_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        # `allow_inf_nan` does not reach into a dict of Any: a NaN `inner_lr` would train to k5 = nan
        for key, value in options.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"learner option `{key}` must be a finite number, got {value!r}")
        return options


@dataclass(frozen=True)
class TrainResult:
    """How a run ended: its last step, skipped steps and deployment losses (k = 0 and k = K)."""

    step: int
    skipped: int
    deployment: dict[str, float]


class Trainer:
    """Meta-trains a learner on tasks from a pool, writing everything to a run directory.

    Args:
        config: the run's settings (steps, meta-batch, optimiser, schedules).
        learner: the meta-learner; its model's parameters are what the optimiser moves.
        pool: where training tasks come from.
        evaluation: the held-out target tasks the deployment loss is measured on.
        directory: the run directory (created by the caller).
        on_step: called after every step with (step, metrics line), for progress displays.
    """

    def __init__(self, config: TrainConfig, *, learner: MetaLearner, pool: TaskPool, evaluation: TaskBatch,
                 directory: RunDirectory, on_step: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        self.config = config
        self.learner, self.model = learner, learner.model
        self.pool = pool
        self.eval_batch = evaluation
        self.directory = directory
        self.on_step = on_step
        # a mismatch (too few examples, a classifier on regression tasks) fails now, before any step
        self.learner.check_batch(evaluation.select(slice(0, 1)))
        parameters = list(self.model.parameters())
        self.optimizer: torch.optim.Optimizer = (torch.optim.Adam(parameters, lr=config.outer_lr)
                                                 if config.optimizer == "adam"
                                                 else torch.optim.SGD(parameters, lr=config.outer_lr))
        self.step = self.skipped = self.bad_in_a_row = 0
        self.finished: dict[str, float] | None = None  # the deployment loss, once the run is complete

    def restore(self, start_logs: dict[str, int] | None = None) -> None:
        """Continue from the directory's last checkpoint (or from the start if it has none).

        The replayed logs are cut back to the lengths the checkpoint recorded; without a
        checkpoint, to `start_logs` (what was logged before training began; default: nothing).
        """
        state = self.directory.load_latest()
        if state is None:
            self.directory.truncate_logs(start_logs or {name: 0 for name in self.directory.replayed_logs()})
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.pool.load_state_dict(state["pool"])
        self.step, self.skipped = int(state["step"]), int(state["skipped"])
        self.bad_in_a_row = int(state["bad_in_a_row"])
        self.finished = state.get("finished")
        self.directory.truncate_logs(state["logs"])

    def checkpoint(self) -> None:
        """Save everything needed to continue exactly from this step."""
        self.directory.save(self.step, {
            "step": self.step, "skipped": self.skipped, "bad_in_a_row": self.bad_in_a_row,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "pool": self.pool.state_dict(), "logs": self.directory.log_sizes(), "finished": self.finished})

    def deployment_losses(self) -> Tensor:
        """Per-task query losses `[B]` after K adaptation steps on the evaluation tasks (NaN for invalid ones).

        Every method evaluated on the same tasks from the same initial weights can be compared task
        by task (paired), which removes the task-to-task noise from their difference.
        """
        batch: TaskBatch = self.eval_batch
        losses = self.learner.evaluate(batch, steps=self.learner.inner_steps)
        return torch.where(batch.valid, losses, torch.full_like(losses, float("nan")))

    def deployment(self) -> dict[str, float]:
        """Query loss on the evaluation tasks before (k = 0) and after (k = K) adapting to their support."""
        steps = self.learner.inner_steps
        batch: TaskBatch = self.eval_batch
        return {"k0": float(mean_over_valid(self.learner.evaluate(batch, steps=0), batch.valid)),
                f"k{steps}": float(mean_over_valid(self.learner.evaluate(batch, steps=steps), batch.valid))}

    def train_step(self) -> dict[str, Any]:
        """One meta-batch: draw, backpropagate, step (or skip a non-finite step)."""
        generated_before = self.pool.seconds_generating
        started = time.perf_counter()
        batch = self.pool.sample(self.config.meta_batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss = float(self.learner.backward(batch))
        finite = math.isfinite(loss) and all(
            p.grad is None or bool(torch.isfinite(p.grad).all()) for p in self.model.parameters())
        if finite:
            self.optimizer.step()
            self.bad_in_a_row = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.bad_in_a_row += 1
        self.step += 1
        generating = self.pool.seconds_generating - generated_before
        line: dict[str, Any] = {"step": self.step, "loss": loss if finite else None, "skipped": not finite}
        self.directory.log(line)
        self.directory.log({"step": self.step, "generate_s": round(generating, 6),
                            "learn_s": round(time.perf_counter() - started - generating, 6)}, timing=True)
        return line

    def run(self) -> TrainResult:
        """Train to `config.steps`, checkpointing on schedule.

        A Ctrl-C (SIGINT) lets the current step finish, then checkpoints and raises
        KeyboardInterrupt: a checkpoint is only ever taken between steps, so resuming stays exact.
        """
        config = self.config
        if self.finished is not None:
            return TrainResult(self.step, self.skipped, self.finished)
        with _interrupts_between_steps() as interrupted:
            while self.step < config.steps:
                line = self.train_step()
                if config.eval_every and self.step % config.eval_every == 0 and self.step < config.steps:
                    line = {"step": self.step, "deployment": self.deployment()}
                    self.directory.log(line)
                if self.on_step is not None:
                    self.on_step(self.step, line)
                if self.bad_in_a_row >= config.max_bad_steps:
                    self.checkpoint()
                    raise GmhfError(f"stopped at step {self.step}: {self.bad_in_a_row} steps in a row had a "
                                    f"non-finite loss or gradient ({self.skipped} skipped in all); lower the "
                                    f"outer learning rate or inner_lr. A checkpoint was written to "
                                    f"{self.directory.checkpoints}.")
                if self.step % config.checkpoint_every == 0 or interrupted():
                    self.checkpoint()
                if interrupted():
                    raise KeyboardInterrupt
        self.finished = self.deployment()
        self.directory.log({"step": self.step, "deployment": self.finished})
        self.checkpoint()
        return TrainResult(self.step, self.skipped, self.finished)


@contextlib.contextmanager
def _interrupts_between_steps() -> Iterator[Callable[[], bool]]:
    """Turn SIGINT into a flag that the training loop reads between steps (main thread only).

    A second Ctrl-C before the step ends interrupts at once, as usual (the last periodic
    checkpoint is still whole), so a step that hangs can always be left.
    """
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def note(signum: int, frame: Any) -> None:
        if caught:
            raise KeyboardInterrupt
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield lambda: bool(caught)
    finally:
        signal.signal(signal.SIGINT, previous)
