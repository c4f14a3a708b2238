"""The run layer: the one place that turns a run's config into built objects.

Specs are loaded, plugins consulted, the truth chosen, the generator built (the domain's simulator,
or a cNODE twin fitted once and cached in the run directory) and the learner sized for the tasks;
`core` receives the results and loads nothing itself. `gmhf train` and `gmhf run` both come here.
(The module is not called `run`: `gmhf.run` is the function that runs the GMHF loop, and a
submodule of that name would shadow it once imported.)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gmhf.errors import GmhfError, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gmhf.core.belief import Belief
    from gmhf.core.constraints import Expect
    from gmhf.core.domain import Domain
    from gmhf.core.generator import Generator
    from gmhf.core.learners.base import MetaLearner
    from gmhf.core.rundir import RunDirectory
    from gmhf.core.sources import ThetaSource
    from gmhf.core.tasks import TaskBatch
    from gmhf.core.trainer import TrainConfig, Trainer

__all__ = ["TrainingRun", "build_generator", "build_learner", "build_trainer", "evaluation_tasks",
           "inner_loop_options", "learner_class", "load_belief", "load_truth", "resume_training", "run_seeds", "spec_digests",
           "spec_present", "start_training", "training"]


@dataclass
class TrainingRun:
    """A built training run: the trainer, and which truth its deployment loss is measured on."""

    trainer: Trainer
    truth_name: str


def learner_class(name: str) -> type[MetaLearner]:
    """The learner class registered as `name` (built-in or from a plugin), with "did you mean"."""
    from gmhf.core.registry import resolve
    from gmhf.dsl.errors import did_you_mean
    from gmhf.plugins.manager import plugin_host

    learners = plugin_host().registry.learners
    if name not in learners:
        hint = did_you_mean(name, learners)
        raise UsageError(f"unknown learner {name!r}{f'; {hint}' if hint else ''} "
                         f"(registered: {', '.join(sorted(learners))}).")
    cls: type[MetaLearner] = resolve(learners[name])
    return cls


def inner_loop_options(name: str, **options: Any) -> dict[str, Any]:
    """`options` (inner_steps, inner_lr) for a learner that adapts by gradient steps; none for one that does not."""
    return dict(options) if learner_class(name).inner_loop else {}


def load_belief(config: TrainConfig) -> Belief:
    """The belief a run trains on: its spec, or its specs pooled by trust (`pooled_with`)."""
    from gmhf.api import load, pool

    if config.pooled_with:
        return pool(config.spec, *config.pooled_with, domain=config.domain)
    return load(config.spec, domain=config.domain)


def load_truth(truth: str | None, guidance: Belief) -> tuple[Belief, str]:
    """The truth spec (given, else the domain's benchmark truth, else the spec itself) and its name."""
    from gmhf.api import load

    if truth is not None:
        loaded, name = load(truth), "truth"
    elif (text := guidance.domain.truth_spec()) is not None:
        loaded, name = load(text), f"{guidance.domain.name} benchmark truth"
    else:
        return guidance, "the spec itself (no truth given)"
    if loaded.domain.name != guidance.domain.name:
        raise UsageError(f"the truth spec is about domain {loaded.domain.name!r} but the spec trains on "
                         f"{guidance.domain.name!r}; the deployment loss needs tasks of the same domain.")
    return loaded, name


@contextlib.contextmanager
def training(config: TrainConfig | None, run_dir: str | os.PathLike[str], *,
             on_step: Callable[[int, dict[str, Any]], None] | None = None,
             progress: bool = False, steps: int | None = None) -> Iterator[TrainingRun]:
    """Build a new run from `config` (or resume the one in `run_dir` when `config` is None), locked.

    The run directory is locked while the block runs, so two processes never write one run.
    `steps` (resuming only) extends the run to that many steps; see `resume_training`.

    Example:
        >>> with training(TrainConfig(spec="examples/specs/sinusoid.guide", steps=100), "runs/s") as run:
        ...     result = run.trainer.run()
    """
    from gmhf.core.rundir import RunDirectory

    directory = RunDirectory(run_dir)
    if config is None and not directory.config.exists():
        raise GmhfError(f"{directory.path} holds no run to resume (no config.json).")
    with directory.lock():
        if config is None:
            yield resume_training(run_dir, on_step=on_step, progress=progress, steps=steps)
        else:
            yield start_training(config, run_dir, on_step=on_step, progress=progress)


def start_training(config: TrainConfig, run_dir: str | os.PathLike[str], *,
                   on_step: Callable[[int, dict[str, Any]], None] | None = None,
                   progress: bool = False) -> TrainingRun:
    """A new run of `config` in `run_dir` (unlocked; `training` locks).

    Everything that can be refused (an unknown learner, a truth of another domain, tasks the
    learner cannot use, a directory that holds a run) is refused before the directory is created.
    """
    from gmhf.core.rundir import RunDirectory

    directory = RunDirectory(run_dir)
    directory.check_new()  # before any work
    guidance = load_belief(config)
    truth, truth_name = load_truth(config.truth, guidance)
    seeds = run_seeds(config.seed)
    evaluation = evaluation_tasks(config, truth, seeds["eval"])
    learner = build_learner(config, evaluation, seeds["model"], domain=guidance.domain)
    digests = spec_digests(guidance, truth if config.truth is not None else None)
    directory.create({"gmhf_config": config.model_dump(mode="json"), "specs": digests})
    generator = build_generator(config, guidance.domain, directory, seeds["twin"], progress)
    trainer = build_trainer(config, guidance, guidance.domain, guidance.expects, generator, learner, evaluation, directory,
                            seeds["pool"], on_step)
    return TrainingRun(trainer, truth_name)


def resume_training(run_dir: str | os.PathLike[str], *,
                    on_step: Callable[[int, dict[str, Any]], None] | None = None,
                    progress: bool = False, steps: int | None = None) -> TrainingRun:
    """The run in `run_dir`, restored from its last checkpoint (unlocked; `training` locks).

    Refused when the spec or truth changed (by canonical text) since the run started. `steps`,
    when given, must exceed the saved steps: the saved config is rewritten with it, and a finished
    run trains on from its final checkpoint (its deployment loss is measured again at the new end).
    """
    from pydantic import ValidationError

    from gmhf.core.rundir import RunDirectory
    from gmhf.core.trainer import TrainConfig

    directory = RunDirectory(run_dir)
    saved = directory.read_config()
    try:
        config = TrainConfig.model_validate(saved.get("gmhf_config"))
    except ValidationError as error:
        raise GmhfError(f"{directory.config} is damaged or from another gmhf version: {error}") from None
    for spec in (config.spec, *config.pooled_with):
        spec_present(spec, directory.path)
    try:
        guidance = load_belief(config)
    except UsageError as error:
        raise GmhfError(f"the spec of the run in {directory.path} cannot be read ({error}); restore it to "
                        f"resume.") from None
    truth, truth_name = load_truth(config.truth, guidance)
    if spec_digests(guidance, truth if config.truth is not None else None) != saved.get("specs"):
        raise GmhfError(f"the spec or truth file of the run in {directory.path} changed since the run started; "
                        f"resuming would not continue the same run. Restore the file or start a new run.")
    if steps is not None:
        if steps <= config.steps:
            raise UsageError(f"--steps {steps} does not extend the run in {directory.path}: it was set to "
                             f"{config.steps} steps; give more.")
        config = config.model_copy(update={"steps": steps})
    seeds = run_seeds(config.seed)
    evaluation = evaluation_tasks(config, truth, seeds["eval"])
    learner = build_learner(config, evaluation, seeds["model"], domain=guidance.domain)
    generator = build_generator(config, guidance.domain, directory, seeds["twin"], progress)
    trainer = build_trainer(config, guidance, guidance.domain, guidance.expects, generator, learner, evaluation, directory,
                            seeds["pool"], on_step)
    trainer.restore()
    if steps is not None:
        directory.write_config({**saved, "gmhf_config": config.model_dump(mode="json")})
        trainer.finished = None  # a finished run trains on; its deployment loss is measured at the new end
    return TrainingRun(trainer, truth_name)


def spec_present(spec: str, run_dir: os.PathLike[str]) -> None:
    """Refuse to resume the run in `run_dir` when the spec file it was started from is gone."""
    from gmhf.api import spec_file

    file = spec_file(spec)
    if file is not None and not file.exists():
        raise GmhfError(f"the run's spec file {str(file)!r} is gone; restore it to resume the run in {run_dir}.")


def run_seeds(seed: int) -> dict[str, int]:
    """The run's independent streams, all from its one seed (model, pool and evaluation as before).

    Any int is a seed: torch takes 64 bits, so it is read modulo 2^64 (which is what torch already
    does with a negative one).
    """
    import torch

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"`seed` must be an int, got {seed!r}.")
    stream = torch.Generator().manual_seed(seed % 2**64)
    model, pool, evaluation = (int(s) for s in torch.randint(0, 2**62, (3,), generator=stream))
    twin = int(torch.randint(0, 2**62, (), generator=stream))
    return {"model": model, "pool": pool, "eval": evaluation, "twin": twin}


def spec_digests(guidance: Belief, truth: Belief | None) -> dict[str, str]:
    """SHA-256 of the spec's (and truth's) canonical text: a comment or `gmhf fmt` does not block a resume."""
    texts = {"spec": str(guidance)} | ({"truth": str(truth)} if truth is not None else {})
    return {key: hashlib.sha256(text.encode()).hexdigest() for key, text in texts.items()}


def evaluation_tasks(config: TrainConfig, truth: Belief, seed: int) -> TaskBatch:
    """The held-out target tasks, always from the exact simulator: deployment is on the real target."""
    from gmhf.core.tasks import TaskPool

    pool = TaskPool.from_spec(truth, size=config.eval_tasks, support=config.support, query=config.query, seed=seed)
    return pool.sample(config.eval_tasks)


def build_learner(config: TrainConfig, tasks: TaskBatch, seed: int, *, domain: Domain | None = None) -> MetaLearner:
    """The learner with a model sized by the tasks; a mismatch with the tasks fails here.

    The model is the domain's own network (`Domain.model`) if it has one, else an MLP; without
    `domain`, the domain of `config.spec` is looked up.
    """
    import torch

    from gmhf.core.networks import mlp

    if domain is None:
        domain = load_belief(config).domain
    cls = learner_class(config.learner)
    classes = None if tasks.support_y.is_floating_point() else int(max(tasks.support_y.max(),
                                                                       tasks.query_y.max())) + 1
    if classes is None:
        outputs = tasks.support_y.shape[-1]
    else:
        outputs = config.hidden[-1] if cls.output == "embedding" else classes
    stream = torch.Generator().manual_seed(seed)
    model = domain.model(tuple(tasks.support_x.shape[2:]), outputs, hidden=config.hidden, generator=stream)
    if model is None:
        model = mlp(tasks.support_x.shape[-1], outputs, config.hidden, generator=stream)
    options = {"tasks_per_chunk": config.tasks_per_chunk, **cls.task_options(classes), **config.learner_options}
    try:
        learner = cls(model, **options)
    except (TypeError, ValueError) as error:  # an unknown or ill-typed option
        raise UsageError(f"learner {config.learner!r}: {error}") from error
    learner.check_batch(tasks.select(slice(0, 1)))
    return learner


def build_generator(config: TrainConfig, domain: Domain, directory: RunDirectory, seed: int,
               progress: bool) -> Generator:
    """The domain's simulator, or its cNODE twin: fitted on the domain's source once, then read from `twin.pt`."""
    from gmhf.core.generator import SimulatorGenerator

    if config.generator == "sim":
        return SimulatorGenerator(domain)
    import torch

    from gmhf.api import load
    from gmhf.core.twin import fit_twin, twin_of
    from gmhf.files import write_atomic

    if directory.twin.exists():
        state = torch.load(directory.twin, weights_only=True)
        twin = twin_of(domain, state["t"], seed=seed)
        twin.load_state_dict(state)
        return twin
    source = load(f"domain {domain.name}")
    twin, _ = fit_twin(domain, source, samples=config.twin_samples, steps=config.twin_steps, seed=seed,
                       progress=progress)
    buffer = io.BytesIO()
    torch.save(twin.state_dict(), buffer)
    write_atomic(directory.twin, buffer.getvalue())
    return twin


def build_trainer(config: TrainConfig, source: ThetaSource, domain: Domain, expects: Sequence[Expect],
                  generator: Generator, learner: MetaLearner, evaluation: TaskBatch, directory: RunDirectory, seed: int,
                  on_step: Callable[[int, dict[str, Any]], None] | None) -> Trainer:
    """A trainer on tasks from `source` through `generator`, keeping the spec's `expects`."""
    from gmhf.core.tasks import TaskPool
    from gmhf.core.trainer import Trainer

    pool = TaskPool(source, generator, domain, expects=expects, size=config.pool_size, support=config.support,
                    query=config.query, refresh_every=config.refresh_every, seed=seed)
    return Trainer(config, learner=learner, pool=pool, evaluation=evaluation, directory=directory, on_step=on_step)
