"""How fast the batched meta-learners are: sinusoid meta-iterations/s beside the looped peers, and memory.

Run with `.venv/bin/python bench/meta.py` (the peers come from `bash bench/peers/install.sh`; without
them only gmhf's rows are measured). It prints three tables (time per meta-iteration, the ratios,
peak memory) and notes, and writes `bench/results/meta.json`.

Workload (issue 4): sinusoid regression, amplitude U(0.1, 5), phase U(0, π), x U(-5, 5), 10 support
+ 10 query points per task, MLP 1-40-40-1 (`mlp(1, 1, (40, 40))`), float32, 5 inner SGD steps at
lr 0.01, mse loss. One meta-iteration = zero the grads, fill `.grad` with the meta-gradient of B
tasks, take one Adam step. Learners: MAML (second order), FOMAML, ANIL (head only, second order),
Reptile (`.grad` = θ - mean φ). Contenders, each on its own copy of the same initial weights:

* gmhf: `MAML(...).backward(batch)` etc., all tasks at once (`tasks_per_chunk=None`);
* higher, looped over tasks: `higher.innerloop_ctx(model, SGD, copy_initial_weights=False,
  track_higher_grads=second_order)`, each task's query loss / B backpropagated inside the loop.
  First order: the query gradient at the (detached) fast weights is added to `.grad`; ANIL: the
  context wraps the head, fed the body's features; Reptile: θ - φ of the fast weights;
* learn2learn, looped: `l2l.algorithms.MAML(model, lr, first_order=...)`, `clone()`, `adapt()`;
  ANIL: l2l's MAML on the head with the shared body (as l2l's ANIL examples do); Reptile: a
  `copy.deepcopy` of the model stepped by `torch.optim.SGD` (l2l has no Reptile wrapper).

Before anything is timed, each peer's meta-gradient is compared with gmhf's on the same batch and
weights, at every B (that run is also the warm-up): max over parameter tensors of
max|g_peer - g_gmhf| / max|g_gmhf| must be at most 1e-4, else the row is flagged MISMATCH.

Timing: per (learner, B), the contenders run round-robin, one timed run each per round (a run
repeats the meta-iteration for about RUN_TARGET_S, its count fixed by one untimed iteration; the
order rotates each round), so a load spike on the shared machine hits all of them alike. Figures are medians over rounds; ratios are medians of per-round
ratios (paired runs are seconds apart), which a slow phase of the machine moves far less.

Memory, B = 512: one fresh subprocess per (learner, contender, tasks_per_chunk). It builds the model
and batch, runs a 2-task meta-iteration (lazy initialisation), hands glibc's free heap back
(`malloc_trim`, so blocks the warm-up freed cannot hide what the run needs), resets the resident-set
high-water mark (`5` into /proc/self/clear_refs), reads the resident set, runs one meta-iteration;
peak = VmHWM after - the resident set before. Not ru_maxrss alone: Linux carries the parent's high-water mark into a child
across fork/exec, so a child of a big process would read the parent's size (ru_maxrss - baseline
is kept in the JSON for reference).
"""

from __future__ import annotations

import copy
import ctypes
import gc
import importlib.metadata
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from common import (  # bench/common.py (run as a script)
    footer,
    load_note,
    machine_info,
    peak_resident_bytes,
    resident_bytes,
    text_table,
    write_results,
)
from torch import Tensor, nn

from gmhf.core.learners import ANIL, MAML, FirstOrderMAML, Reptile, mlp
from gmhf.core.learners.base import MetaLearner
from gmhf.core.tasks import TaskBatch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "meta.json"
SEED = 0
INNER_LR, INNER_STEPS, OUTER_LR = 0.01, 5, 1e-3
SUPPORT = QUERY = 10
HIDDEN = (40, 40)
BATCHES = (8, 32, 128, 512)
#: Per B: rounds of timing (every contender makes one timed run per round).
ROUNDS = {8: 7, 32: 7, 128: 5, 512: 3}
#: A timed run repeats the meta-iteration until about this long (at most MAX_ITERATIONS times).
RUN_TARGET_S, MAX_ITERATIONS = 0.25, 50
LEARNERS = ("maml", "fomaml", "anil", "reptile")
PEERS = ("higher", "learn2learn")
#: Same meta-gradient: max relative difference (per tensor, against gmhf's largest entry), float32.
AGREEMENT = 1e-4
#: The issue's goals for second-order MAML: gmhf at least this many times as fast as each looped peer.
GOALS = {32: 10.0, 128: 20.0}
MEMORY_BATCH = 512
CHUNKS = (None, 2, 4, 8, 32, 64)
#: The issue's memory goal: gmhf with tasks_per_chunk at most this many times the looped peer's peak.
MEMORY_GOAL = 2.0
NOISY = 0.25

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


# ------------------------------------------------------------------------------------ contenders


def gmhf_fill(learner: str, model: nn.Sequential, chunk: int | None = None) -> Fill:
    """gmhf's learner, all tasks at once (or `chunk` at a time)."""
    options: dict[str, Any] = {"inner_lr": INNER_LR, "inner_steps": INNER_STEPS, "tasks_per_chunk": chunk}
    classes: dict[str, type[MetaLearner]] = {"maml": MAML, "fomaml": FirstOrderMAML, "anil": ANIL, "reptile": Reptile}
    cls = classes[learner]
    meta = cls(model, **options)

    def fill(batch: TaskBatch) -> None:
        meta.backward(batch)
    return fill


def higher_fill(learner: str, model: nn.Sequential) -> Fill:
    """higher's unrolled inner loop, one task at a time."""
    import higher  # type: ignore[import-untyped]

    body, head = model[:-1], model[-1]
    net = head if learner == "anil" else model
    inner = torch.optim.SGD(net.parameters(), lr=INNER_LR)
    track = second_order(learner)

    def fill(batch: TaskBatch) -> None:
        b = len(batch)
        for i in range(b):
            sx, sy, qx, qy = batch.support_x[i], batch.support_y[i], batch.query_x[i], batch.query_y[i]
            if learner == "anil":
                sx, qx = body(sx), body(qx)
            with higher.innerloop_ctx(net, inner, copy_initial_weights=False, track_higher_grads=track) as (fnet, opt):
                for _ in range(INNER_STEPS):
                    opt.step(mse(fnet(sx), sy))
                if learner == "reptile":
                    add_grad(list(net.parameters()), [p.detach() - f.detach() for p, f in
                                                      zip(net.parameters(), fnet.parameters(), strict=True)], 1 / b)
                elif track:
                    (mse(fnet(qx), qy) / b).backward()
                else:  # the fast weights are detached: their query gradient is FOMAML's
                    fast = list(fnet.parameters())
                    add_grad(list(net.parameters()), torch.autograd.grad(mse(fnet(qx), qy), fast), 1 / b)
    return fill


def learn2learn_maml() -> type[nn.Module]:
    """learn2learn's `algorithms.MAML`, without running the package's `__init__`.

    `import learn2learn` imports its vision datasets (torchvision), gym environments and more; the
    torchvision wheels on PyPI are CUDA builds that do not load against a CPU torch. The MAML wrapper
    needs only `algorithms/maml.py`, `algorithms/base_learner.py` and `utils/__init__.py`: the two
    package modules are registered bare, so exactly that code runs, unchanged.
    """
    if "learn2learn" not in sys.modules:
        spec = importlib.util.find_spec("learn2learn")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("learn2learn is not installed (bash bench/peers/install.sh)")
        root = spec.submodule_search_locations[0]
        for name, folder in (("learn2learn", root), ("learn2learn.algorithms", f"{root}/algorithms")):
            package = types.ModuleType(name)
            package.__path__ = [folder]
            sys.modules[name] = package
    from learn2learn.algorithms.maml import MAML as L2LMAML  # type: ignore[import-not-found]

    return L2LMAML  # type: ignore[no-any-return]


def learn2learn_fill(learner: str, model: nn.Sequential) -> Fill:
    """learn2learn's MAML wrapper (clone, adapt), one task at a time; Reptile: deepcopy + SGD."""
    if learner == "reptile":
        def reptile(batch: TaskBatch) -> None:
            params, b = list(model.parameters()), len(batch)
            for i in range(b):
                clone = copy.deepcopy(model)
                opt = torch.optim.SGD(clone.parameters(), lr=INNER_LR)
                for _ in range(INNER_STEPS):
                    opt.zero_grad()
                    mse(clone(batch.support_x[i]), batch.support_y[i]).backward()
                    opt.step()
                add_grad(params, [p.detach() - c.detach() for p, c in zip(params, clone.parameters(), strict=True)],
                         1 / b)
        return reptile
    body, head = model[:-1], model[-1]
    wrapped: Any = learn2learn_maml()(head if learner == "anil" else model, lr=INNER_LR,
                                 first_order=not second_order(learner))

    def fill(batch: TaskBatch) -> None:
        b = len(batch)
        for i in range(b):
            sx, sy, qx, qy = batch.support_x[i], batch.support_y[i], batch.query_x[i], batch.query_y[i]
            if learner == "anil":
                sx, qx = body(sx), body(qx)
            clone = wrapped.clone()
            for _ in range(INNER_STEPS):
                clone.adapt(mse(clone(sx), sy))
            (mse(clone(qx), qy) / b).backward()
    return fill


FILLS: dict[str, Callable[[str, nn.Sequential], Fill]] = {
    "gmhf": gmhf_fill, "higher": higher_fill, "learn2learn": learn2learn_fill}


def available_peers() -> tuple[list[str], dict[str, str]]:
    """The peers that import here, and why each missing one is missing."""
    found, missing = [], {}
    for peer in PEERS:
        try:
            higher_fill("maml", new_model()) if peer == "higher" else learn2learn_maml()
            found.append(peer)
        except Exception as error:  # any import failure: the bench goes on without that peer
            missing[peer] = f"{type(error).__name__}: {error}"
    return found, missing


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------------ check and time


def meta_gradient(contender: str, learner: str, batch: TaskBatch) -> list[Tensor]:
    model = new_model()
    FILLS[contender](learner, model)(batch)
    return [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]


def relative_difference(theirs: list[Tensor], ours: list[Tensor]) -> float:
    """Max over tensors of max|a - b| / max|b|."""
    return max(float((a - b).abs().max() / b.abs().max().clamp(min=1e-30)) for a, b in zip(theirs, ours, strict=True))


@dataclass
class Row:
    """One contender at one (learner, B): seconds per meta-iteration, one value per round."""

    learner: str
    batch: int
    contender: str
    difference: float = 0.0  # vs gmhf's meta-gradient (0 for gmhf itself)
    iterations: int = 1  # meta-iterations per timed run
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median seconds per meta-iteration."""
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        """Meta-iterations per second at the median."""
        return 1 / self.median

    @property
    def spread(self) -> float:
        """(max - min) / median."""
        return (max(self.seconds) - min(self.seconds)) / self.median

    @property
    def agrees(self) -> bool:
        """Same meta-gradient as gmhf's, to AGREEMENT."""
        return self.difference <= AGREEMENT

    def to_json(self) -> dict[str, Any]:
        """The JSON record of this row."""
        return {"learner": self.learner, "batch": self.batch, "contender": self.contender,
                "max_relative_difference_vs_gmhf": self.difference, "agrees": self.agrees,
                "iterations_per_run": self.iterations, "median_s": self.median, "min_s": min(self.seconds), "seconds": self.seconds,
                "meta_iterations_per_s": self.rate, "spread": self.spread}


def time_config(learner: str, b: int, contenders: list[str]) -> list[Row]:
    """Check the meta-gradients on one batch, then time meta-iterations round-robin."""
    batch = sinusoid_tasks(b, SEED + b)
    ours = meta_gradient("gmhf", learner, batch)
    rows = [Row(learner, b, c, 0.0 if c == "gmhf" else relative_difference(meta_gradient(c, learner, batch), ours))
            for c in contenders]
    runs = []
    for c in contenders:
        model = new_model()
        fill, opt = FILLS[c](learner, model), torch.optim.Adam(model.parameters(), lr=OUTER_LR)

        def run(iterations: int, fill: Fill = fill, opt: torch.optim.Optimizer = opt) -> float:
            gc.collect()
            start = time.perf_counter()
            for _ in range(iterations):
                opt.zero_grad(set_to_none=True)
                fill(batch)
                opt.step()
            return (time.perf_counter() - start) / iterations

        once = run(1)  # also creates Adam's state
        runs.append((run, max(1, min(MAX_ITERATIONS, round(RUN_TARGET_S / once)))))
    for r in range(ROUNDS[b]):
        for i in [*range(len(runs))][r % len(runs):] + [*range(len(runs))][:r % len(runs)]:
            run, iterations = runs[i]
            rows[i].seconds.append(run(iterations))
            rows[i].iterations = iterations
    return rows


def paired(slow: Row, fast: Row) -> float:
    """Median over rounds of slow's time / fast's time in the same round."""
    return statistics.median(a / b for a, b in zip(slow.seconds, fast.seconds, strict=True))


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """Per (learner, B, peer): peer time / gmhf time, with the goal where the issue sets one."""
    out = []
    ours = {(r.learner, r.batch): r for r in rows if r.contender == "gmhf"}
    for r in rows:
        if r.contender == "gmhf":
            continue
        ratio = paired(r, ours[(r.learner, r.batch)])
        goal = GOALS.get(r.batch) if r.learner == "maml" else None
        out.append({"learner": r.learner, "batch": r.batch, "peer": r.contender, "ratio": ratio,
                    "ratio_of_medians": r.median / ours[(r.learner, r.batch)].median, "goal": goal,
                    "met": None if goal is None else bool(ratio >= goal and r.agrees), "agrees": r.agrees})
    return out


# ------------------------------------------------------------------------------------ memory


def release_free_heap() -> None:
    """Hand glibc's free heap back to the system, so the warm-up's freed blocks do not hide the run's needs."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the warm-up's few freed blocks stay in the heap
        pass


def memory_child(learner: str, contender: str, chunk: int | None) -> dict[str, Any]:
    """In a fresh process: the peak resident set one B = 512 meta-iteration adds."""
    torch.set_num_threads(1)
    model = new_model()
    fill = gmhf_fill(learner, model, chunk) if contender == "gmhf" else FILLS[contender](learner, model)
    opt = torch.optim.Adam(model.parameters(), lr=OUTER_LR)
    batch, tiny = sinusoid_tasks(MEMORY_BATCH, SEED), sinusoid_tasks(2, SEED + 1)
    for b in (tiny, batch):
        opt.zero_grad(set_to_none=True)
        gc.collect()
        if b is batch:  # the tiny run did the lazy initialisation (autograd engine, Adam state)
            release_free_heap()
            try:
                Path("/proc/self/clear_refs").write_text("5")
                reset = True
            except OSError:
                reset = False
            before, before_peak = resident_bytes(), peak_resident_bytes()
            before_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            start = time.perf_counter()
        fill(b)
        opt.step()
    seconds = time.perf_counter() - start
    return {"learner": learner, "contender": contender, "tasks_per_chunk": chunk, "batch": MEMORY_BATCH,
            "peak_added_bytes": peak_resident_bytes() - before, "peak_was_reset": reset,
            "resolution_bytes": before_peak - before,
            "ru_maxrss_added_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before_maxrss,
            "seconds_single_run": seconds}


def memory_rows(peers: list[str]) -> list[dict[str, Any]]:
    """One subprocess per (learner, contender, chunk), one at a time (the timings are not reported)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows: list[dict[str, Any]] = []
    for learner in LEARNERS:
        runs = [("gmhf", chunk) for chunk in CHUNKS] + [(peer, None) for peer in peers]
        for contender, chunk in runs:
            done = subprocess.run([sys.executable, __file__, "--memory-child", learner, contender, str(chunk)],
                                  cwd=ROOT, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                rows.append({"learner": learner, "contender": contender, "tasks_per_chunk": chunk,
                             "error": done.stderr.strip()[-300:]})
            else:
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for row in rows:  # gmhf chunked against each looped peer
        peer_peaks = {r["contender"]: r.get("peak_added_bytes") for r in rows
                      if r["learner"] == row["learner"] and r["contender"] != "gmhf"}
        if row["contender"] == "gmhf" and "peak_added_bytes" in row:
            row["x_peer"] = {p: row["peak_added_bytes"] / v for p, v in peer_peaks.items() if v}
            if row["tasks_per_chunk"] is not None:
                row["met"] = {p: x <= MEMORY_GOAL for p, x in row["x_peer"].items()}
    return rows


# ------------------------------------------------------------------------------------ report


def timing_table(rows: list[Row]) -> str:
    """One line per (learner, B, contender)."""
    header = ["learner", "B", "contender", "grad rel diff", "ms/iter", "min ms", "iter/s", "spread", "runs"]
    cells = [[r.learner, f"{r.batch}", r.contender, "-" if r.contender == "gmhf" else
              f"{r.difference:.1e}" + ("" if r.agrees else " MISMATCH"), f"{r.median * 1e3:,.1f}",
              f"{min(r.seconds) * 1e3:,.1f}", f"{r.rate:,.2f}", f"{r.spread:.0%}",
              f"{len(r.seconds)}x{r.iterations}"] for r in rows]
    return text_table(header, cells, {1, 3, 4, 5, 6, 7, 8})


def ratio_table(compared: list[dict[str, Any]]) -> str:
    """Peer time / gmhf time, paired per round, with the issue's goals (second-order MAML)."""
    header = ["learner", "B", "peer", "x faster (paired)", "x (medians)", "goal", "met?"]
    cells = [[c["learner"], f"{c['batch']}", c["peer"], f"{c['ratio']:.1f}x", f"{c['ratio_of_medians']:.1f}x",
              "-" if c["goal"] is None else f">= {c['goal']:g}x",
              {None: "-", True: "yes", False: "NO"}[c["met"]]] for c in compared]
    return text_table(header, cells, {1, 3, 4})


def memory_table(rows: list[dict[str, Any]]) -> str:
    """Peak resident set added by one B = 512 meta-iteration."""
    header = ["learner", "contender", "tasks_per_chunk", "peak MiB", "x higher", "x learn2learn", "goal", "met?",
              "s (1 run)"]
    cells = []
    for r in rows:
        if "error" in r:
            cells.append([r["learner"], r["contender"], str(r["tasks_per_chunk"] or "-"), "failed", *[""] * 5])
            continue
        x = r.get("x_peer", {})
        met = r.get("met")
        cells.append([r["learner"], r["contender"], str(r["tasks_per_chunk"] or "-"),
                      f"{r['peak_added_bytes'] / 2**20:,.1f}",
                      f"{x['higher']:.1f}x" if "higher" in x else "-",
                      f"{x['learn2learn']:.1f}x" if "learn2learn" in x else "-",
                      f"<= {MEMORY_GOAL:g}x" if met is not None else "-",
                      ", ".join(f"{'yes' if ok else 'NO'} ({p})" for p, ok in met.items()) if met else "-",
                      f"{r['seconds_single_run']:.2f}"])
    return text_table(header, cells, {2, 3, 4, 5, 8})


def notes(rows: list[Row], compared: list[dict[str, Any]], memory: list[dict[str, Any]], missing: dict[str, str],
          start_load: list[float] | None) -> list[str]:
    """Missing peers, mismatches, goal summary, the memory method and the noise."""
    lines = [f"{peer} not measured: {why}" for peer, why in missing.items()]
    if "learn2learn" not in missing:
        lines.append("learn2learn: `learn2learn.algorithms.MAML` loaded without the package's __init__ (which "
                     "imports torchvision and gym; PyPI's torchvision is a CUDA build that cannot load against "
                     "CPU torch): the wrapper's own code is unchanged")
    lines += [f"MISMATCH {r.contender} {r.learner} B={r.batch}: meta-gradient differs from gmhf's by {r.difference:.1e} "
              f"(> {AGREEMENT:g}); its timing compares different computations" for r in rows if not r.agrees]
    if all(r.agrees for r in rows):
        worst = max((r.difference for r in rows), default=0.0)
        lines.append(f"every peer's meta-gradient matches gmhf's on the timed batch (worst {worst:.1e} <= {AGREEMENT:g})")
    for c in compared:
        if c["goal"] is not None:
            lines.append(f"goal MAML (2nd order) B={c['batch']} vs {c['peer']}: {c['ratio']:.1f}x, need "
                         f">= {c['goal']:g}x: {'met' if c['met'] else 'NOT met'}")
    failed = [m for m in memory if "error" in m]
    lines += [f"memory child {m['learner']}/{m['contender']}/{m['tasks_per_chunk']} failed: {m['error']}"
              for m in failed]
    resolution = max((m.get("resolution_bytes", 0) for m in memory), default=0)
    lines.append(f"memory: VmHWM reset by /proc/self/clear_refs ({'yes' if all(m.get('peak_was_reset') for m in memory if 'error' not in m) else 'NOT everywhere'}); "
                 f"resolution (peak - resident set before the run) at most {resolution / 2**20:.2f} MiB")
    inherited = [m for m in memory if "error" not in m and m["ru_maxrss_added_bytes"] < m["peak_added_bytes"] / 2]
    if inherited:
        lines.append(f"memory: ru_maxrss - baseline under-reads in {len(inherited)} of {len(memory)} children (the "
                     "child inherits this process's high-water mark across fork/exec), hence VmHWM after a reset")
    lines.append("memory: a looped peer holds one task's graph at a time; gmhf holds tasks_per_chunk of them (about "
                 "the same bytes per task), so its peak scales with the chunk; 's (1 run)' is that one run's time in the child, indicative only")
    lines.append(load_note(rows, start_load, NOISY))
    return lines


def write_json(machine: dict[str, Any], peers: dict[str, Any], rows: list[Row], compared: list[dict[str, Any]],
               memory: list[dict[str, Any]], lines: list[str]) -> None:
    """Store the results for comparison across commits (bench/results/ is not tracked)."""
    document = {
        "benchmark": "meta", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
        "peers": peers,
        "settings": {"seed": SEED, "model": f"mlp 1-{'-'.join(map(str, HIDDEN))}-1", "dtype": "float32",
                     "inner_lr": INNER_LR, "inner_steps": INNER_STEPS, "outer": f"Adam lr {OUTER_LR:g}",
                     "support": SUPPORT, "query": QUERY, "batches": BATCHES,
                     "rounds": {str(b): r for b, r in ROUNDS.items()}, "run_target_s": RUN_TARGET_S,
                     "max_iterations": MAX_ITERATIONS,
                     "agreement": AGREEMENT, "goals_maml": {str(b): g for b, g in GOALS.items()},
                     "memory_batch": MEMORY_BATCH, "chunks": CHUNKS, "memory_goal": MEMORY_GOAL,
                     "statistic": "median; ratios paired per round"},
        "rows": [r.to_json() for r in rows], "comparison": compared, "memory": memory, "notes": lines,
    }
    write_results(RESULTS, document)


def main() -> int:
    """Check, time, measure memory, print the tables and notes, write the JSON; exit 0 even when goals are missed."""
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    machine = machine_info()
    started = time.perf_counter()
    found, missing = available_peers()
    peers = {p: {"version": version(p), "measured": p in found, "why_not": missing.get(p)} for p in PEERS}
    rows = [row for learner in LEARNERS for b in BATCHES for row in time_config(learner, b, ["gmhf", *found])]
    compared = ratios(rows)
    memory = memory_rows(found)
    lines = notes(rows, compared, memory, missing, machine["load_average"])
    print(timing_table(rows))
    print()
    if compared:
        print(ratio_table(compared))
        print()
    print(memory_table(memory))
    print()
    for line in lines:
        print(f"* {line}")
    print("\n" + footer(machine, time.perf_counter() - started, RESULTS))
    write_json(machine, peers, rows, compared, memory, lines)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory-child"]:
        learner_, contender_, chunk_ = sys.argv[2:5]
        print(json.dumps(memory_child(learner_, contender_, None if chunk_ == "None" else int(chunk_))))
        sys.exit(0)
    sys.exit(main())
