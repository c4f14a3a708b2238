"""Meta-training runs: tasks from a spec, a learner, checkpoints, and the deployment loss on a truth.

A run is fully determined by its config: the model is initialised, the task pool generated and
every meta-batch drawn from generators seeded by `seed`. A checkpoint holds the model, the
optimiser, the pool (its environments and its generator) and the step, so a run killed at any
moment and resumed from its last checkpoint produces the same parameters and the same metrics as
one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from gmhf.core.rundir import RunDirectory
from gmhf.core.tasks import TaskBatch, TaskPool, mean_over_valid, split_tasks
from gmhf.errors import GmhfError, UsageError

if TYPE_CHECKING:
    from gmhf.core.guidance import Guidance
    from gmhf.core.learners.base import MetaLearner

__all__ = ["TrainConfig", "TrainResult", "Trainer"]


class TrainConfig(BaseModel):
    """Everything that decides a meta-training run (saved as the run's `config.json`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: str = Field(description="the spec tasks are generated from (a path or spec text)")
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


@dataclass(frozen=True)
class TrainResult:
    """How a run ended: its last step, skipped steps and deployment losses (k = 0 and k = K)."""

    step: int
    skipped: int
    deployment: dict[str, float]


def build_model(inputs: int, outputs: int, config: TrainConfig, generator: torch.Generator) -> torch.nn.Module:
    """The default network: an MLP sized by the tasks, initialised from the run's seed."""
    from gmhf.core.learners.base import mlp

    return mlp(inputs, outputs, config.hidden, generator=generator)


def build_learner(name: str, model: torch.nn.Module, options: dict[str, Any]) -> MetaLearner:
    """The learner registered as `name` (built-in or from a plugin)."""
    from gmhf.core.registry import resolve
    from gmhf.dsl.errors import did_you_mean
    from gmhf.plugins.manager import plugin_host

    learners = plugin_host().registry.learners
    if name not in learners:
        hint = did_you_mean(name, learners)
        raise UsageError(f"unknown learner {name!r}{f'; {hint}' if hint else ''} "
                         f"(registered: {', '.join(sorted(learners))}).")
    try:
        learner: MetaLearner = resolve(learners[name])(model, **options)
    except (TypeError, ValueError) as error:  # an unknown or ill-typed option
        raise UsageError(f"learner {name!r}: {error}") from error
    return learner


class Trainer:
    """Meta-trains a learner on tasks from a spec, writing everything to a run directory.

    Args:
        config: the run's settings.
        run_dir: where config, logs and checkpoints go (created; must not hold another run).
        on_step: called after every step with (step, metrics line), for progress displays.
    """

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike[str], *,
                 on_step: Callable[[int, dict[str, Any]], None] | None = None, _resuming: bool = False) -> None:
        from gmhf.api import load

        self.config = config
        self.directory = RunDirectory(run_dir)
        self.on_step = on_step
        self.guidance = load(config.spec)
        self.truth, self.truth_name = self._truth(self.guidance)
        if self.truth.domain.name != self.guidance.domain.name:
            raise UsageError(f"the truth spec is about domain {self.truth.domain.name!r} but the spec trains on "
                             f"{self.guidance.domain.name!r}; the deployment loss needs tasks of the same domain.")
        seeds = torch.Generator().manual_seed(config.seed)
        model_seed, pool_seed, eval_seed = (int(s) for s in torch.randint(0, 2**62, (3,), generator=seeds))
        self.pool = TaskPool(self.guidance, size=config.pool_size, support=config.support, query=config.query,
                             refresh_every=config.refresh_every, seed=pool_seed)
        integer = not self.pool.targets.is_floating_point()
        if integer:  # class labels: protonet embeds, the others predict one logit per class
            ways = int(self.pool.targets.max()) + 1
            outputs = config.hidden[-1] if config.learner == "protonet" else ways
        else:
            outputs = self.pool.targets.shape[-1]
        options = {"tasks_per_chunk": config.tasks_per_chunk, **config.learner_options}
        if integer and config.learner != "protonet":
            options.setdefault("loss", "cross_entropy")
        elif integer:
            options.setdefault("ways", ways)
        self.model = build_model(self.pool.inputs.shape[-1], outputs, config,
                                 torch.Generator().manual_seed(model_seed))
        self.learner = build_learner(config.learner, self.model, options)
        # a mismatch (too few examples, a classifier on regression tasks) fails now, before the run exists
        self.learner.check_batch(split_tasks(self.pool.inputs[:1], self.pool.targets[:1], self.pool.theta[:1],
                                             support=config.support, query=config.query,
                                             generator=torch.Generator()))
        parameters = list(self.model.parameters())
        self.optimizer: torch.optim.Optimizer = (torch.optim.Adam(parameters, lr=config.outer_lr)
                                                 if config.optimizer == "adam"
                                                 else torch.optim.SGD(parameters, lr=config.outer_lr))
        self.eval_batch = TaskPool(self.truth, size=config.eval_tasks, support=config.support, query=config.query,
                                   seed=eval_seed).sample(config.eval_tasks)
        self.step = self.skipped = self.bad_in_a_row = 0
        self.finished: dict[str, float] | None = None  # the deployment loss, once the run is complete
        if not _resuming:
            self.directory.create({"gmhf_config": config.model_dump(mode="json"), "specs": self._spec_digests()})

    @classmethod
    def resume(cls, run_dir: str | os.PathLike[str], *,
               on_step: Callable[[int, dict[str, Any]], None] | None = None) -> Trainer:
        """Continue the run in `run_dir` from its last checkpoint (or from the start if it has none)."""
        directory = RunDirectory(run_dir)
        saved = directory.read_config()
        config = TrainConfig.model_validate(saved["gmhf_config"])
        trainer = cls(config, run_dir, on_step=on_step, _resuming=True)
        if trainer._spec_digests() != saved.get("specs"):
            raise GmhfError(f"the spec or truth file of the run in {directory.path} changed since the run started; "
                            f"resuming would not continue the same run. Restore the file or start a new run.")
        state = directory.load_latest()
        if state is None:
            directory.truncate_logs({"metrics": 0, "timings": 0})
            return trainer
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.pool.load_state_dict(state["pool"])
        trainer.step, trainer.skipped = int(state["step"]), int(state["skipped"])
        trainer.bad_in_a_row = int(state["bad_in_a_row"])
        trainer.finished = state.get("finished")
        directory.truncate_logs(state["logs"])
        return trainer

    def _spec_digests(self) -> dict[str, str]:
        """SHA-256 of the spec and truth texts, so a resume can tell that they did not change."""
        import hashlib

        from gmhf.api import read_spec

        texts = {"spec": read_spec(self.config.spec)[0]}
        if self.config.truth is not None:
            texts["truth"] = read_spec(self.config.truth)[0]
        return {k: hashlib.sha256(v.encode()).hexdigest() for k, v in texts.items()}

    def _truth(self, guidance: Guidance) -> tuple[Guidance, str]:
        from gmhf.api import load

        if self.config.truth is not None:
            return load(self.config.truth), "truth"
        truth_spec = getattr(guidance.domain, "truth_spec", None)
        if callable(truth_spec):
            return load(truth_spec()), f"{guidance.domain.name} benchmark truth"
        return guidance, "the spec itself (no truth given)"

    def checkpoint(self) -> None:
        """Save everything needed to continue exactly from this step."""
        self.directory.save(self.step, {
            "step": self.step, "skipped": self.skipped, "bad_in_a_row": self.bad_in_a_row,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "pool": self.pool.state_dict(), "logs": self.directory.log_sizes(), "finished": self.finished})

    def deployment(self) -> dict[str, float]:
        """Query loss on the truth's tasks before (k = 0) and after (k = K) adapting to their support."""
        steps = int(getattr(self.learner, "inner_steps", 0))
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
