"""One run of a sweep, in its own folder, resumable, ending with a done marker that holds its record.

Baselines are plain training runs (`runner.start_training` / `resume_training`) on a spec chosen by
the method; the feedback methods are `gmhf run`s (`pipeline.execute`) with a simulated expert of the
run's reliability. Every run of a seed uses the seed's streams (`runner.run_seeds`): the same
initial weights, the same truth tasks, the same cNODE twin (fitted once per seed and shared).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gmhf.files import strict, write_atomic

if TYPE_CHECKING:
    from gmhf.core.belief import Belief
    from gmhf.core.domain import Domain
    from gmhf.core.trainer import TrainConfig
    from gmhf.sweep import Planned, SweepConfig

__all__ = ["DONE", "TASKS", "baseline_spec", "done_record", "randomisation_spec", "run_many", "run_one", "task_losses"]

#: The done marker: written last, atomically, holding the run's record.
DONE = "done.json"
#: Per-task deployment losses (k = K) on the seed's truth tasks, for pairing within a seed.
TASKS = "task_losses.json"


def done_record(root: Path, run: Planned) -> dict[str, Any] | None:
    """The record of a finished run (its done marker), or None while it is unfinished."""
    marker = root / "runs" / run.name / DONE
    if not marker.exists():
        return None
    record: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
    return record


def run_many(config: SweepConfig, root: Path, runs: list[Planned], jobs: int,
             finished: Callable[[Planned, dict[str, Any]], None]) -> None:
    """Run `runs`, `jobs` at a time (separate processes when jobs > 1), calling `finished` as each ends."""
    if jobs == 1 or len(runs) <= 1:
        for run in runs:
            finished(run, run_one(config, root, run))
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    text = config.model_dump_json()
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no torch state shared through fork
    with ProcessPoolExecutor(max_workers=min(jobs, len(runs)), mp_context=context,
                             initializer=_start_worker) as pool:
        pending = {pool.submit(_work, text, str(root), run): run for run in runs}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    run = pending.pop(future)
                    finished(run, future.result())  # a run's error stops the sweep here
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _start_worker() -> None:
    """A worker uses one torch thread (or GMHF_THREADS) and dies with the sweep, even on SIGKILL."""
    import signal

    import torch

    torch.set_num_threads(int(os.environ.get("GMHF_THREADS", "1")))
    with contextlib.suppress(OSError, AttributeError):  # Linux only: PR_SET_PDEATHSIG
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _work(text: str, root: str, run: Planned) -> dict[str, Any]:
    from gmhf.sweep import SweepConfig

    return run_one(SweepConfig.model_validate_json(text), Path(root), run)


def run_one(config: SweepConfig, root: Path, run: Planned) -> dict[str, Any]:
    """Run (or resume, or skip when done) one run of the sweep and return its record.

    The run's sweep lock (`.locks/<name>.lock`) is held throughout: a worker left over from a killed
    sweep finishes its run first, and this one then finds it done.
    """
    from gmhf.sweep import FEEDBACK_METHODS

    folder = root / "runs" / run.name
    with _flock(root / ".locks" / f"{run.name}.lock"):
        if (record := done_record(root, run)) is not None:
            return record
        started = time.perf_counter()
        train = config.train.model_copy(update={"seed": run.seed})
        fresh = not (folder / "config.json").exists()
        if fresh and train.generator == "cnode":
            _copy_shared_twin(train, root, folder)
        if run.method in FEEDBACK_METHODS:
            record = _feedback_run(config, train, run, folder, fresh)
        else:
            record = _baseline_run(train, run, folder, fresh)
        record = {"method": run.method, "reliability": run.reliability, "seed": run.seed, **record,
                  "seconds": round(time.perf_counter() - started, 3), "resumed": not fresh, "run": run.name}
        losses = task_losses(train, folder)
        write_atomic(folder / TASKS, json.dumps(strict(losses), allow_nan=False) + "\n")
        write_atomic(folder / DONE, json.dumps(strict(record), indent=2, allow_nan=False) + "\n")
        return record


def _feedback_run(config: SweepConfig, train: TrainConfig, run: Planned, folder: Path,
                  fresh: bool) -> dict[str, Any]:
    from gmhf.errors import GmhfError
    from gmhf.pipeline import RunConfig, execute
    from gmhf.sweep import FEEDBACK_METHODS

    settings = None
    if fresh:
        settings = RunConfig(train=train, experts=(f"simulated:{run.reliability:g}",),
                             agent=FEEDBACK_METHODS[run.method],  # type: ignore[arg-type]
                             steer=config.steer, rounds=config.rounds, answers_per_round=config.answers_per_round)
    result = execute(settings, folder)
    if result.stopped or result.deployment is None:
        raise GmhfError(f"the run in {folder} stopped before training (an expert stopped answering).")
    last = result.rounds[-1] if result.rounds else {}
    if not result.rounds:  # no feedback: π is q_H, measured as spec-only is
        from gmhf.runner import load_belief

        last = _distances(load_belief(train), train, folder)
    return {**_losses(result.deployment), "mmd": last.get("mmd"), "mmd_data": last.get("mmd_data"),
            "in_support": last.get("in_support"), "answers": result.answers, "bound": result.bound}


def _baseline_run(train: TrainConfig, run: Planned, folder: Path, fresh: bool) -> dict[str, Any]:
    from gmhf.runner import load_belief, training

    spec = baseline_spec(run.method, train.spec, train.truth, train.pooled_with)
    # spec-only trains on the specs' pooled belief; the other baselines on one spec of their own
    own = train.model_copy(update={"spec": spec, "pooled_with": train.pooled_with if run.method == "spec-only"
                                   else ()})
    with training(own if fresh else None, folder) as built:
        result = built.trainer.run()
    return {**_losses(result.deployment), **_distances(load_belief(own), train, folder), "answers": 0,
            "bound": None}


def baseline_spec(method: str, spec: str, truth: str | None, pooled_with: tuple[str, ...] = ()) -> str:
    """What a baseline trains on (a path or spec text): the domain's source, the spec, the bounds, the truth.

    With several specs (`pooled_with`), domain randomisation covers every factor any of them flags.
    """
    from gmhf.api import pool

    guidance = pool(spec, *pooled_with)
    if method == "source-only":
        return f"domain {guidance.domain.name}"
    if method == "spec-only":
        return spec
    if method == "domain-randomisation":
        return randomisation_spec(guidance.domain, guidance.flagged)
    if method == "oracle":
        return truth or guidance.domain.truth_spec() or spec
    raise ValueError(f"unknown baseline {method!r}")


def randomisation_spec(domain: Domain, factors: tuple[str, ...]) -> str:
    """Spec text: each of `factors` uniform over its physical bounds (levels), the rest at the source.

    Only the factors the spec flags are randomised: randomising every factor (Duffing's α over
    [-2, 3] makes chaotic double-well oscillators) would test a straw man the spec rules out.
    A factor with an unbounded side keeps its source distribution.
    """
    lines = [f"domain {domain.name}"]
    for name in factors:
        factor = domain.space[name]
        if factor.kind == "categorical":
            lines.append(f"shift {name} in [{', '.join(factor.levels)}]")
        elif math.isfinite(factor.low) and math.isfinite(factor.high):  # an excluded bound: the next float
            low = math.nextafter(factor.low, math.inf) if factor.low_open else factor.low
            high = math.nextafter(factor.high, -math.inf) if factor.high_open else factor.high
            lines.append(f"shift {name} in {low!r} .. {high!r}")
    return "\n".join(lines) + "\n"


def task_losses(train: TrainConfig, folder: Path) -> list[float]:
    """The finished run's per-task losses after K steps on its truth tasks (NaN for an invalid task).

    The model of the last checkpoint is scored on the seed's evaluation tasks, exactly as the
    trainer measured its deployment loss: their mean is the run's `deployment_loss`.
    """
    import torch

    from gmhf.core.rundir import RunDirectory
    from gmhf.runner import build_learner, evaluation_tasks, load_belief, load_truth, run_seeds

    spec = load_belief(train)
    truth, _ = load_truth(train.truth, spec)
    seeds = run_seeds(train.seed)
    tasks = evaluation_tasks(train, truth, seeds["eval"])
    learner = build_learner(train, tasks, seeds["model"])
    state = RunDirectory(folder).load_latest()
    if state is None:
        raise FileNotFoundError(f"{folder} has no checkpoint to score.")
    learner.model.load_state_dict(state["model"])
    losses = learner.evaluate(tasks, steps=learner.inner_steps)
    return [float(x) for x in torch.where(tasks.valid, losses, torch.full_like(losses, float("nan")))]


def _losses(deployment: dict[str, float]) -> dict[str, Any]:
    """k = 0 and k = K (the learner's adaptation steps) from a deployment dict."""
    last = [key for key in deployment if key != "k0"]
    kk = last[-1] if last else "k0"
    return {"deployment_loss": deployment[kk], "deployment_loss_k0": deployment["k0"], "k": int(kk[1:])}


def _distances(source: Belief, train: TrainConfig, folder: Path) -> dict[str, Any]:
    """Where a baseline's θ source stands against the truth, measured as a feedback round measures π."""
    import torch

    from gmhf.core.engine import EVALUATION_SAMPLES
    from gmhf.core.metrics import mmd
    from gmhf.core.rundir import RunDirectory
    from gmhf.core.seeding import named_stream
    from gmhf.runner import build_generator, load_truth, run_seeds

    truth, _ = load_truth(train.truth, source)
    truth_theta = truth.sample(EVALUATION_SAMPLES, generator=named_stream("gmhf-round", train.seed, -1)).values
    stream = named_stream("gmhf-round", train.seed, 10_000)
    drawn = source.sample(EVALUATION_SAMPLES, generator=stream).values
    pooled = torch.cat([drawn, truth_theta])
    centre, spread = pooled.mean(0), pooled.std(0).clamp(min=1e-12)
    generator = build_generator(train, source.domain, RunDirectory(folder), run_seeds(train.seed)["twin"], False)
    generated = generator.generate(drawn[:128], generator=stream)
    target = generator.generate(truth_theta[:128], generator=stream)
    shared = set(source.domain.shared) | {"ok"}
    keys = [k for k, v in generated.items() if k not in shared and v.shape[:1] == drawn[:128].shape[:1]]
    flat = lambda data: torch.cat([data[k].reshape(len(data[k]), -1).to(torch.float64)  # noqa: E731
                                   for k in keys], 1)
    return {"mmd": mmd((drawn - centre) / spread, (truth_theta - centre) / spread).value,
            "mmd_data": mmd(flat(generated), flat(target)).value if keys else None,
            "in_support": float(truth.accepts(drawn).to(torch.float64).mean())}


def _copy_shared_twin(train: TrainConfig, root: Path, folder: Path) -> None:
    """Put the seed's cNODE twin in a new run's folder (fitted by the first run of the seed that needs it)."""
    from gmhf.core.rundir import RunDirectory
    from gmhf.runner import build_generator, load_belief, run_seeds

    shared = RunDirectory(root / "twins" / f"seed-{train.seed}")
    with _flock(root / ".locks" / f"twin-seed-{train.seed}.lock"):
        if not shared.twin.exists():
            shared.path.mkdir(parents=True, exist_ok=True)
            build_generator(train, load_belief(train).domain, shared, run_seeds(train.seed)["twin"], False)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared.twin, folder / "twin.pt")


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path`, waiting for it; the kernel drops it when a process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
