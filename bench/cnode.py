"""How fast (and how lean) a cNODE training step is: gmhf's RK4 path beside torchdiffeq, same model, same steps.

Run with `.venv/bin/python bench/cnode.py` (torchdiffeq comes with the `bench` extra; without it only
the gmhf rows are measured). It prints four tables (time per training step, the ratios, peak memory
against the window, cProfile of gmhf's step), notes, and writes `bench/results/cnode.json`.

What is timed: one training step's forward + backward (zero grads, integrate a window, loss, backward)
of ONE `ConditionalNODE` (Duffing, hidden 64, depth 2, float32, weights after a short warm fit), on
the SAME batch: B = 64 and 256 windows of 20 output points at spacing 0.1, drawn exactly as
`ConditionalNODE._train_step` draws them, with the model's `step` h = 0.1 and 0.05. Paths:

* gmhf rk4: `model.rollout` then `model._loss(solution.y[ok], target[ok])`, which is what
  `_train_step` runs between drawing the batch and the optimiser, with one `Workspace` for all
  its steps as `fit` has (each step writes its activations where the last step's were, instead of
  into fresh pages that fault in again on every step; a row also times the whole `_train_step`,
  Adam and clipping included, for scale, at B = 64);
* torchdiffeq `odeint(model.field(θ, start), y0, grid, method="rk4", options={"step_size": h})`:
  the public call, which takes its own steps;
* torchdiffeq rk4 with `grid_constructor` giving exactly gmhf's steps. torchdiffeq's "rk4" is
  Kutta's 3/8 rule (`rk4_alt_step_func`), not the classical RK4 gmhf uses, so a third row runs
  torchdiffeq's own classical `rk4_step_func` on the same grid (registered as a solver here):
  that one is the same arithmetic, and is checked to give gmhf's loss to 1e-10 and gradients to
  1e-8 (float64 copy of model and batch) before anything is timed;
* torchdiffeq `odeint_adjoint`, same steps: the memory-saving peer (its gradient is the adjoint
  ODE's, not the discrete one, so it differs at the discretisation level);
* gmhf's previous path, `rk4(model.field(θ, start), …)` with autograd recording every op, checked
  against the fused rollout the same way (the "before / now" column).

gmhf's rollout (`gmhf.core.mlp_rk4`) is one autograd node with a hand-written reverse sweep, the
normalisations folded into the first and last layers, the first layer's conditioning computed once
and its time features once per stage time, and tanh evaluated as 2σ(2z) − 1 with the factors in the weights: the
same function and the same discrete gradient (the checks below hold it to 1e-10 / 1e-8 in float64).

Step count: the "RK4 steps" column shows what each path really integrates. (This bench found that a
float32 grid, on which 0.1 is 0.10000000149, made rk4 split most intervals in two; rk4 now splits
with a relative tolerance, `gmhf.core.ode.substeps_for`.)

Timing: per (B, h), every path runs round-robin, one timed run each per round (a run repeats the
step until ~RUN_TARGET_S; the order rotates from round to round), so a load spike hits all of them
alike; figures are medians over rounds. The ratios are medians of per-round ratios (paired: the two
runs of a pair are a second or so apart), which a slow phase of the machine moves far less than the
medians themselves: on the shared VM this was written on, the same step ran at ~60 or ~105 ms in
phases lasting seconds, with no page faults or system time in either (see the spread column).

Memory: one fresh subprocess per (path, window). It loads the same weights and data, does a
2-point warm-up step (lazy initialisation), resets the kernel's resident-set high-water mark
(`5` into /proc/self/clear_refs), reads the resident set, and runs one step; peak = VmHWM after
the step - resident set before it: what the step adds to the process at its worst, every
allocation included (torch's CPU tensors come from malloc, so tracemalloc would miss them). Not
ru_maxrss: Linux carries the parent's high-water mark into a child across fork/exec, so a child
of a big benchmark process reads the parent's size. Children run two at a time (memory is per
process; their timings are not reported). One more row repeats gmhf at the longest window with
glibc's mmap threshold at 64 KiB, which tells tensors alive from freed blocks kept in the heap.
The bytes autograd saves for backward (saved_tensors_hooks, deduplicated by storage; the hook
keeps the tensor itself) are counted in the same step.
"""

from __future__ import annotations

import copy
import cProfile
import gc
import importlib
import importlib.util
import io
import json
import math
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

import gmhf
from gmhf.core.generator import ConditionalNODE
from gmhf.core.mlp_rk4 import Workspace
from gmhf.core.ode import Solution, rk4, substeps_for
from gmhf.plugins.duffing import Duffing

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cnode.json"
SEED = 0
#: The data: source Duffing trajectories on t = 0, 0.1, ..., 39.9 (long enough for 400-point windows).
SPACING, POINTS, TRAJECTORIES = 0.1, 400, 320
HIDDEN, DEPTH = 64, 2
#: Weights come from this many Adam steps of `fit` (window 20, B 64), so the field is not the tiny init.
WARM_FIT_STEPS = 30
WINDOW = 20
BATCHES = (64, 256)
STEPS = (0.1, 0.05)
#: Timed rounds per (B, h); the shared 2-core VM has slow phases of seconds, so the paired median needs several.
ROUNDS = 10
RUN_TARGET_S = 0.08
MEMORY_BATCH, MEMORY_STEP, MEMORY_WINDOWS = 256, 0.1, (20, 100, 400)
#: The issue's goal: gmhf's training step at least this many times as fast as torchdiffeq's, same steps.
GOAL = 2.0
LOSS_TOLERANCE, GRAD_TOLERANCE = 1e-10, 1e-8
NOISY = 0.25
PROFILE_STEPS = 15
#: gmhf's previous training path, kept as a row: the speed-up of the fused rollout over it.
AUTOGRAD = "gmhf rk4 through model.field (autograd per op: the path before the fused rollout)"


# ------------------------------------------------------------------------------------ problem


@dataclass
class Batch:
    """One training batch, exactly as `ConditionalNODE._train_step` builds it."""

    theta: Tensor  # [b, k]
    target: Tensor  # [b, width, d]
    grid: Tensor  # [width] relative output times, in the data's dtype (as _train_step makes it)
    start: Tensor  # [b] absolute start times
    grid64: Tensor = field(default_factory=lambda: torch.empty(0))  # the same grid kept in float64

    @property
    def y0(self) -> Tensor:
        """Initial states: the targets' first points."""
        return self.target[:, 0]

    def to(self, dtype: torch.dtype) -> Batch:
        """A copy in `dtype` (the grid's values are kept, so the steps are the same)."""
        return Batch(self.theta.to(dtype), self.target.to(dtype), self.grid.to(dtype), self.start.to(dtype),
                     self.grid64)


def problem() -> tuple[ConditionalNODE, Tensor, Tensor]:
    """The warm-fitted model and its training data (float32, as `fit` keeps them)."""
    theta = gmhf.load("domain duffing\n").sample(TRAJECTORIES, seed=SEED).values.to(torch.float64)
    horizon = (0.0, SPACING * (POINTS - 1))
    data = Duffing().simulate(theta, points=POINTS, horizon=horizon)
    trajectories = torch.stack((data["x"], data["v"]), -1)
    model = new_model(data["t"])
    model.fit(trajectories, theta, steps=WARM_FIT_STEPS, batch_size=64, window=WINDOW,
              validate_every=WARM_FIT_STEPS, generator=torch.Generator().manual_seed(SEED), progress=False)
    trajectories, theta = model._check(trajectories, theta)
    return model, trajectories, theta


def new_model(t: Tensor) -> ConditionalNODE:
    """The benchmarked architecture (Duffing, forcing features cos/sin(ωt))."""
    return ConditionalNODE(Duffing().space, Duffing.state_factors, t=t, forcing_frequency="omega", step=0.1,
                           hidden=HIDDEN, depth=DEPTH, seed=SEED)


def make_batch(model: ConditionalNODE, data: Tensor, theta: Tensor, size: int, width: int, seed: int) -> Batch:
    """`_train_step`'s draw: random rows, random window starts, targets, relative grid, absolute starts."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(data), generator=generator)[:size]
    starts = torch.randint(len(model.t) - width + 1, (len(rows),), generator=generator)
    target = data[rows[:, None], starts[:, None] + torch.arange(width)]
    grid = (model.t[:width] - model.t[0]).to(data.dtype)
    return Batch(theta[rows], target, grid, model.t[starts].to(data.dtype), model.t[:width] - model.t[0])


# ------------------------------------------------------------------------------------ paths

Loss = Callable[[ConditionalNODE, Batch], Tensor]


def gmhf_loss(workspace: Workspace | None) -> Loss:
    """What `_train_step` runs between drawing the batch and the optimiser, with a `Workspace` as `fit` keeps one."""

    def loss(model: ConditionalNODE, b: Batch) -> Tensor:
        solution = model.rollout(b.theta, b.y0, b.grid, b.start, workspace=workspace)
        ok = solution.ok
        return model._loss(solution.y[ok], b.target[ok])

    return loss


def gmhf_steps(step: float) -> Callable[[Any, Tensor, Tensor], Tensor]:
    """A torchdiffeq grid_constructor taking gmhf rk4's steps: each output interval split as rk4 splits it.

    torchdiffeq hands it decreasing times when it integrates backwards (odeint_adjoint's backward
    pass), so the split is by |dt|: the adjoint then retraces the forward steps.
    """

    def construct(func: Any, y0: Tensor, t: Tensor) -> Tensor:
        times = t.tolist()
        points = []
        for i in range(len(times) - 1):
            substeps = substeps_for(abs(times[i + 1] - times[i]), step)
            h = (times[i + 1] - times[i]) / substeps
            points += [times[i] + j * h for j in range(substeps)]
        points.append(times[-1])
        return torch.tensor(points, dtype=t.dtype, device=t.device)

    return construct


def register_classical_rk4() -> None:
    """torchdiffeq's own classical RK4 step (`rk4_step_func`) as method "rk4_classical" (its "rk4" is the 3/8 rule)."""
    from torchdiffeq._impl.misc import Perturb  # type: ignore[import-not-found]
    from torchdiffeq._impl.odeint import SOLVERS  # type: ignore[import-not-found]
    from torchdiffeq._impl.rk_common import rk4_step_func  # type: ignore[import-not-found]
    from torchdiffeq._impl.solvers import FixedGridODESolver  # type: ignore[import-not-found]

    class ClassicalRK4(FixedGridODESolver):  # type: ignore[misc]
        order = 4

        def _step_func(self, func: Any, t0: Tensor, dt: Tensor, t1: Tensor, y0: Tensor) -> tuple[Tensor, Tensor]:
            f0 = func(t0, y0, perturb=Perturb.NEXT if self.perturb else Perturb.NONE)
            return rk4_step_func(func, t0, dt, t1, y0, f0=f0, perturb=self.perturb), f0

    SOLVERS.setdefault("rk4_classical", ClassicalRK4)


def tdq_step_size(model: ConditionalNODE, b: Batch) -> Tensor:
    """The public call: `odeint(..., method="rk4", options={"step_size": h})` on the same grid."""
    from torchdiffeq import odeint

    y = odeint(model.field(b.theta, b.start), b.y0, b.grid, method="rk4", options={"step_size": model.step})
    return model._loss(y.transpose(0, 1), b.target)


def tdq_grid(method: str) -> Loss:
    """torchdiffeq `method` on gmhf's steps (the grid in float64, as gmhf keeps its times in Python floats)."""

    def loss(model: ConditionalNODE, b: Batch) -> Tensor:
        from torchdiffeq import odeint

        y = odeint(model.field(b.theta, b.start), b.y0, b.grid.to(torch.float64), method=method,
                   options={"grid_constructor": gmhf_steps(model.step)})
        return model._loss(y.transpose(0, 1), b.target)

    return loss


def tdq_adjoint(model: ConditionalNODE, b: Batch) -> Tensor:
    """`odeint_adjoint`, rk4 (3/8) on gmhf's steps both ways; memory flat in the window."""
    from torchdiffeq import odeint_adjoint

    y = odeint_adjoint(model.field(b.theta, b.start), b.y0, b.grid.to(torch.float64), method="rk4",
                       options={"grid_constructor": gmhf_steps(model.step)}, adjoint_params=tuple(model.parameters()))
    return model._loss(y.transpose(0, 1), b.target)


def autograd_loss(model: ConditionalNODE, b: Batch) -> Tensor:
    """gmhf's previous training path: `rk4(model.field(...))`, every op of every stage recorded by autograd."""
    solution = rk4(model.field(b.theta, b.start), b.y0, b.grid, step=model.step, blowup=model.blowup)
    ok = solution.ok
    return model._loss(solution.y[ok], b.target[ok])


@dataclass(frozen=True)
class Path_:
    """One way of computing the training loss; `same_as` names the path whose loss and gradients it must match."""

    name: str
    library: str
    loss: Loss
    same_as: str | None = None  # checked to LOSS/GRAD_TOLERANCE in float64
    note: str = ""


def paths(with_torchdiffeq: bool) -> list[Path_]:
    """Every timed path, gmhf's first."""
    out = [Path_("gmhf rk4 (rollout + _loss, as _train_step)", "gmhf", gmhf_loss(Workspace()))]
    if with_torchdiffeq:
        register_classical_rk4()
        out += [
            Path_("torchdiffeq rk4, step_size h", "torchdiffeq", tdq_step_size,
                  note="its own steps; rk4 = 3/8 rule"),
            Path_("torchdiffeq rk4, gmhf's steps", "torchdiffeq", tdq_grid("rk4"),
                  note="grid_constructor; 3/8 rule"),
            Path_("torchdiffeq classical rk4, gmhf's steps", "torchdiffeq", tdq_grid("rk4_classical"),
                  same_as="gmhf rk4 (rollout + _loss, as _train_step)", note="same arithmetic as gmhf"),
            Path_("torchdiffeq odeint_adjoint rk4, gmhf's steps", "torchdiffeq-adjoint", tdq_adjoint,
                  note="adjoint gradient"),
        ]
    out.append(Path_(AUTOGRAD, "gmhf-autograd", autograd_loss, same_as=out[0].name,
                     note="the same RK4 through model.field, autograd per op"))
    return out


# ------------------------------------------------------------------------------------ verification


class Counted:
    """The field with a call counter."""

    def __init__(self, f: Callable[..., Tensor]) -> None:
        self.f, self.calls = f, 0

    def __call__(self, t: Any, y: Tensor) -> Tensor:
        self.calls += 1
        return self.f(t, y)


def loss_and_grads(model: ConditionalNODE, b: Batch, path: Path_) -> tuple[float, list[Tensor], int, int]:
    """Loss, gradients, and the field evaluations of the forward pass and of the backward pass."""
    counters: list[Counted] = []
    field_, rollout_field = model.field, ConditionalNODE.field

    def counted_field(theta: Tensor, start: Tensor) -> Counted:
        counters.append(Counted(rollout_field(model, theta, start)))
        return counters[-1]

    fused = [0]  # evaluations of the fused rollout, which does not call `field`

    def counted_rollout(theta: Tensor, y0: Tensor, grid: Tensor, start: Tensor, **options: Any) -> Solution:
        solution = ConditionalNODE.rollout(model, theta, y0, grid, start, **options)
        fused[0] += solution.evaluations
        return solution

    model.field = counted_field  # type: ignore[method-assign]
    model.rollout = counted_rollout  # type: ignore[method-assign]
    try:
        model.zero_grad(set_to_none=True)
        loss = path.loss(model, b)
        forward = sum(c.calls for c in counters) + fused[0]
        loss.backward()
        backward = sum(c.calls for c in counters) - forward
    finally:
        model.field = field_  # type: ignore[method-assign]
        del model.field
        del model.rollout
    return float(loss.detach()), [p.grad.detach().clone() for p in model.parameters()], forward, backward


def verify(model: ConditionalNODE, batch: Batch, path_list: list[Path_]) -> dict[str, dict[str, Any]]:
    """Loss and gradient differences, in float64 (model and batch copied) and in float32, against each path's peer."""
    model64, batch64 = copy.deepcopy(model).double(), batch.to(torch.float64)
    results: dict[str, dict[str, Any]] = {}
    reference64: dict[str, tuple[float, list[Tensor]]] = {}
    reference32: dict[str, tuple[float, list[Tensor]]] = {}
    base = path_list[0].name
    for path in path_list:
        loss64, grads64, forward, backward = loss_and_grads(model64, batch64, path)
        loss32, grads32, _, _ = loss_and_grads(model, batch, path)
        reference64[path.name], reference32[path.name] = (loss64, grads64), (loss32, grads32)
        peer = path.same_as or base
        row: dict[str, Any] = {"evaluations_forward": forward, "evaluations_backward": backward, "peer": peer,
                               "loss_float64": loss64, "loss_float32": loss32}
        if peer in reference64:
            for label, (loss, grads), (ref_loss, ref_grads) in (
                    ("float64", (loss64, grads64), reference64[peer]),
                    ("float32", (loss32, grads32), reference32[peer])):
                scale = max(float(g.abs().max()) for g in ref_grads)
                row[f"loss_diff_{label}"] = abs(loss - ref_loss)
                row[f"grad_diff_{label}"] = max(float((g - r).abs().max()) for g, r in zip(grads, ref_grads, strict=True))
                row[f"grad_scale_{label}"] = scale
            row["checked"] = path.same_as is not None
            row["passed"] = (row["loss_diff_float64"] <= LOSS_TOLERANCE and row["grad_diff_float64"] <= GRAD_TOLERANCE
                             if path.same_as else None)
        results[path.name] = row
    return results


class OpCounter(TorchDispatchMode):
    """Counts ATen ops (after autograd), forward and backward alike."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


def op_counts(model: ConditionalNODE, b: Batch, path: Path_) -> tuple[int, int]:
    """ATen ops of the forward pass and of the backward pass of one training step."""
    model.zero_grad(set_to_none=True)
    with OpCounter() as forward:
        loss = path.loss(model, b)
    with OpCounter() as backward:
        loss.backward()
    return forward.count, backward.count


# ------------------------------------------------------------------------------------ timing


@dataclass
class Row:
    """One timed row: a path at one (B, h)."""

    batch: int
    step: float
    path: str
    library: str
    rk4_steps: int = 0
    evaluations: int = 0
    ops_forward: int = 0
    ops_backward: int = 0
    seconds: list[float] = field(default_factory=list)  # per training step, one per round

    @property
    def median(self) -> float:
        """Median seconds per training step."""
        return statistics.median(self.seconds) if self.seconds else math.nan

    @property
    def rate(self) -> float:
        """Trajectories (windows) per second at the median."""
        return self.batch / self.median

    @property
    def spread(self) -> float:
        """(max - min) / median."""
        return (max(self.seconds) - min(self.seconds)) / self.median if self.seconds else math.nan

    def to_json(self) -> dict[str, Any]:
        """The JSON record of this row."""
        return {"batch": self.batch, "step": self.step, "window": WINDOW, "path": self.path, "library": self.library,
                "rk4_steps_per_window": self.rk4_steps, "evaluations_forward": self.evaluations,
                "aten_ops_forward": self.ops_forward, "aten_ops_backward": self.ops_backward,
                "median_s_per_step": self.median, "min_s_per_step": min(self.seconds, default=None),
                "seconds_per_step": self.seconds, "trajectories_per_s": self.rate, "spread": self.spread}


def full_train_step(model: ConditionalNODE, data: Tensor, theta: Tensor, size: int) -> Callable[[], object]:
    """The whole `_train_step` (draw, rollout, loss, backward, clip, Adam) on a copy of the model."""
    twin = copy.deepcopy(model)
    optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(SEED)
    workspace = Workspace()
    return lambda: twin._train_step(data, theta, WINDOW, size, optimizer, generator, workspace)


def time_config(model: ConditionalNODE, data: Tensor, theta: Tensor, size: int, step: float,
                path_list: list[Path_], verified: dict[str, dict[str, Any]],
                counts: dict[tuple[float, str], tuple[int, int]]) -> list[Row]:
    """Round-robin timing of every path (and the whole `_train_step`) at one (B, h)."""
    model = copy.deepcopy(model)
    model.step = step
    b = make_batch(model, data, theta, size, WINDOW, seed=SEED + size)

    def train_step(path: Path_) -> Callable[[], object]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            path.loss(model, b).backward()

        return run

    runs: list[tuple[Row, Callable[[], object]]] = []
    for path in path_list:
        row = Row(size, step, path.name, path.library, evaluations=verified[path.name]["evaluations_forward"])
        row.rk4_steps = row.evaluations // 4
        if (step, path.name) not in counts:  # the same at every B
            counts[(step, path.name)] = op_counts(model, b, path)
        row.ops_forward, row.ops_backward = counts[(step, path.name)]
        runs.append((row, train_step(path)))
    if size == BATCHES[0]:  # for scale, at the smaller batch only (it keeps the run short)
        full = Row(size, step, "gmhf ConditionalNODE._train_step (whole: + draw, clip, Adam)", "gmhf-full",
                   rk4_steps=runs[0][0].rk4_steps, evaluations=runs[0][0].evaluations)
        runs.insert(1, (full, full_train_step(model, data, theta, size)))
    repeats = []
    for _row, run in runs:  # warm-up, which also sets the repeat count that makes a run ~RUN_TARGET_S
        start = time.perf_counter()
        run()
        repeats.append(max(1, round(RUN_TARGET_S / (time.perf_counter() - start))))
    order = list(range(len(runs)))
    for round_ in range(ROUNDS):
        for i in order[round_ % len(order):] + order[:round_ % len(order)]:
            (row, run), count = runs[i], repeats[i]
            gc.collect()
            start = time.perf_counter()
            for _ in range(count):
                run()
            row.seconds.append((time.perf_counter() - start) / count)
    return [row for row, _ in runs]


# ------------------------------------------------------------------------------------ memory


MEMORY_PATHS = ("gmhf rk4 (rollout + _loss, as _train_step)", "torchdiffeq rk4, gmhf's steps",
                "torchdiffeq odeint_adjoint rk4, gmhf's steps")
#: Memory children run this many at a time (they do not share memory; their timings are not reported).
MEMORY_WORKERS = max(1, min(2, os.cpu_count() or 1))
#: One more row at the longest window: glibc told to mmap every block of 64 KiB and up (one [256, 64]
#: float32 activation), so that freed blocks go back to the system instead of staying in the heap.
MMAP_ENV = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}


def reset_peak() -> bool:
    """Reset VmHWM to the current resident set (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_child(problem_file: str, path_name: str, width: int) -> dict[str, Any]:
    """In a fresh process: peak RSS added by one training step, and the bytes autograd saves."""
    torch.set_num_threads(1)
    stored = torch.load(problem_file)
    model = new_model(stored["t"])
    model.load_state_dict(stored["state"])
    model.step = MEMORY_STEP
    data, theta = stored["data"], stored["theta"]
    path = {p.name: p for p in paths(importlib.util.find_spec("torchdiffeq") is not None)}[path_name]
    tiny = make_batch(model, data, theta, MEMORY_BATCH, 2, seed=SEED)
    b = make_batch(model, data, theta, MEMORY_BATCH, width, seed=SEED)
    model.zero_grad(set_to_none=True)
    path.loss(model, tiny).backward()  # lazy initialisation, at almost no memory
    saved: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:  # keeps the tensor itself: no copy, no extra memory but the dict
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.zero_grad(set_to_none=True)
    gc.collect()
    was_reset = reset_peak()
    before_rss, before_peak = resident_bytes(), peak_resident_bytes()
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = path.loss(model, b)
    forward_rss = resident_bytes()
    loss.backward()
    seconds = time.perf_counter() - start
    after_peak = peak_resident_bytes()
    return {"path": path_name, "window": width, "batch": MEMORY_BATCH, "step": MEMORY_STEP,
            "peak_added_bytes": after_peak - before_rss, "after_forward_added_bytes": forward_rss - before_rss,
            "resolution_bytes": before_peak - before_rss, "peak_was_reset": was_reset,
            "saved_for_backward_bytes": sum(saved.values()), "seconds_single_run": seconds}


def memory_rows(model: ConditionalNODE, data: Tensor, theta: Tensor, names: list[str]) -> list[dict[str, Any]]:
    """One subprocess per (path, window)."""
    with tempfile.TemporaryDirectory() as folder:
        problem_file = str(Path(folder) / "problem.pt")
        torch.save({"state": model.state_dict(), "t": model.t, "data": data, "theta": theta}, problem_file)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        runs = [(width, name, "") for width in MEMORY_WINDOWS for name in names]
        runs.append((max(MEMORY_WINDOWS), names[0], " [glibc mmap_threshold=64 KiB]"))

        def child(width: int, name: str, label: str) -> dict[str, Any]:
            done = subprocess.run([sys.executable, __file__, "--memory-child", problem_file, name, str(width)],
                                  cwd=ROOT, capture_output=True, text=True, env={**env, **(MMAP_ENV if label else {})})
            if done.returncode != 0:
                return {"path": name + label, "window": width, "error": done.stderr.strip()[-300:]}
            return {**json.loads(done.stdout.strip().splitlines()[-1]), "path": name + label}

        with ThreadPoolExecutor(MEMORY_WORKERS) as pool:
            rows = list(pool.map(lambda run: child(*run), runs))
    return rows


# ------------------------------------------------------------------------------------ profile


def profile_gmhf(model: ConditionalNODE, data: Tensor, theta: Tensor) -> tuple[list[dict[str, Any]], float]:
    """cProfile of gmhf's forward + backward at B=64, h=0.1: the top entries by own time."""
    model = copy.deepcopy(model)
    model.step = STEPS[0]
    b = make_batch(model, data, theta, BATCHES[0], WINDOW, seed=SEED + BATCHES[0])

    loss = gmhf_loss(Workspace())

    def run() -> None:
        for _ in range(PROFILE_STEPS):
            model.zero_grad(set_to_none=True)
            loss(model, b).backward()

    run()
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = []
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if Path(filename).resolve() == Path(__file__).resolve():
            continue  # the bench's own loop
        parts = Path(filename).parts
        where = name if filename == "~" else f"{'/'.join(parts[-2:])}:{line}({name})"
        entries.append({"function": where, "calls_per_step": calls / PROFILE_STEPS,
                        "own_ms_per_step": own / PROFILE_STEPS * 1e3, "cumulative_ms_per_step": cumulative / PROFILE_STEPS * 1e3,
                        "own_share": own / total})
    entries.sort(key=lambda e: -e["own_ms_per_step"])
    return entries[:14], total / PROFILE_STEPS


# ------------------------------------------------------------------------------------ report


def timing_table(rows: list[Row]) -> str:
    """One line per (B, h, path)."""
    base = {(r.batch, r.step): r.median for r in rows if r.library == "gmhf"}
    header = ["B", "h", "path", "RK4 steps", "evals", "ops fwd/bwd", "ms/step", "min ms", "traj/s", "spread",
              "x gmhf time"]
    cells = [[f"{r.batch}", f"{r.step:g}", r.path, f"{r.rk4_steps}", f"{r.evaluations}",
              f"{r.ops_forward:,}/{r.ops_backward:,}" if r.ops_forward else "-", f"{r.median * 1e3:.2f}",
              f"{min(r.seconds) * 1e3:.2f}", f"{r.rate:,.0f}", f"{r.spread:.0%}",
              f"{r.median / base[(r.batch, r.step)]:.2f}"] for r in rows]
    return text_table(header, cells, {0, 1, 3, 4, 5, 6, 7, 8, 9, 10})


def paired(slow: Row, fast: Row) -> float:
    """Median over rounds of slow's time / fast's time in the same round."""
    return statistics.median(a / b for a, b in zip(slow.seconds, fast.seconds, strict=True))


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """Per (B, h): torchdiffeq's time / gmhf's time (paired), same steps (the goal) and torchdiffeq's own step_size."""
    out = []
    for batch in BATCHES:
        for step in STEPS:
            here = {r.path: r for r in rows if r.batch == batch and r.step == step}
            gmhf_row = next(r for r in here.values() if r.library == "gmhf")
            same = [r for r in here.values() if r.library == "torchdiffeq" and "gmhf's steps" in r.path]
            if not same:
                continue
            best = min(same, key=lambda r: r.median)
            own, before = here["torchdiffeq rk4, step_size h"], here[AUTOGRAD]
            ratio = paired(best, gmhf_row)
            out.append({"batch": batch, "step": step, "gmhf_ms": gmhf_row.median * 1e3,
                        "torchdiffeq_same_steps": best.path, "torchdiffeq_same_steps_ms": best.median * 1e3,
                        "ratio_same_steps": ratio, "ratio_of_medians_same_steps": best.median / gmhf_row.median,
                        "ratio_vs_step_size": paired(own, gmhf_row),
                        "speedup_over_autograd_path": paired(before, gmhf_row),
                        "goal": GOAL, "met": ratio >= GOAL})
    return out


def ratio_table(compared: list[dict[str, Any]]) -> str:
    """torchdiffeq / gmhf time per training step."""
    header = ["B", "h", "gmhf ms", "torchdiffeq best, same steps", "ms", "ratio (paired)", "of medians", "goal",
              "met?", "vs step_size h", "gmhf before (autograd path) / now"]
    cells = [[f"{c['batch']}", f"{c['step']:g}", f"{c['gmhf_ms']:.2f}", c["torchdiffeq_same_steps"],
              f"{c['torchdiffeq_same_steps_ms']:.2f}", f"{c['ratio_same_steps']:.2f}x",
              f"{c['ratio_of_medians_same_steps']:.2f}x", f">= {GOAL:g}x", "yes" if c["met"] else "NO",
              f"{c['ratio_vs_step_size']:.2f}x", f"{c['speedup_over_autograd_path']:.2f}x"] for c in compared]
    return text_table(header, cells, {0, 1, 2, 4, 5, 6, 9, 10})


def memory_table(rows: list[dict[str, Any]]) -> str:
    """Peak added RSS and saved-for-backward bytes per (window, path)."""
    header = ["window", "path", "peak RSS added MiB", "after forward MiB", "saved for backward MiB"]
    cells = []
    for r in rows:
        if "error" in r:
            cells.append([f"{r['window']}", r["path"], "error", "-", "-"])
            continue
        cells.append([f"{r['window']}", r["path"], f"{r['peak_added_bytes'] / 2**20:.1f}",
                      f"{r['after_forward_added_bytes'] / 2**20:.1f}", f"{r['saved_for_backward_bytes'] / 2**20:.1f}"])
    return text_table(header, cells, {0, 2, 3, 4})


def profile_table(entries: list[dict[str, Any]]) -> str:
    """The cProfile top entries."""
    header = ["function", "calls/step", "own ms/step", "cum ms/step", "own share"]
    cells = [[e["function"][:70], f"{e['calls_per_step']:,.0f}", f"{e['own_ms_per_step']:.2f}",
              f"{e['cumulative_ms_per_step']:.2f}", f"{e['own_share']:.0%}"] for e in entries]
    return text_table(header, cells, {1, 2, 3, 4})


def notes(rows: list[Row], verified: dict[tuple[int, float], dict[str, dict[str, Any]]],
          memory: list[dict[str, Any]], start_load: list[float] | None) -> list[str]:
    """Checks, the step-count finding, suggestions with their measured effect, and noise."""
    lines = []
    for (batch, step), checks in verified.items():
        for name, c in checks.items():
            if "loss_diff_float64" not in c or name == c["peer"]:
                continue
            verdict = {True: "PASS", False: "FAIL", None: "not required"}[c["passed"]]
            lines.append(f"check B={batch} h={step:g} {name} vs {c['peer']}: float64 |dloss| {c['loss_diff_float64']:.1e}, "
                         f"max |dgrad| {c['grad_diff_float64']:.1e} (grads up to {c['grad_scale_float64']:.1e}); "
                         f"float32 |dloss| {c['loss_diff_float32']:.1e}, max |dgrad| {c['grad_diff_float32']:.1e}; "
                         f"{verdict}" + (f" (bar {LOSS_TOLERANCE:g} / {GRAD_TOLERANCE:g})" if c["passed"] is not None else ""))
    for (batch, step), checks in verified.items():
        adjoint = checks.get("torchdiffeq odeint_adjoint rk4, gmhf's steps")
        if adjoint and batch == BATCHES[0]:
            lines.append(f"adjoint, B={batch} h={step:g}: {adjoint['evaluations_forward']} field evaluations forward, "
                         f"{adjoint['evaluations_backward']} in the backward pass (augmented-state vjp)")
    first = verified[(BATCHES[0], STEPS[0])]
    gm, own = first[rows[0].path], first.get("torchdiffeq rk4, step_size h")
    lines.append(f"step count: a {WINDOW}-point window at spacing {SPACING:g} with step {STEPS[0]:g} takes "
                 f"{gm['evaluations_forward'] // 4} RK4 steps in gmhf's training path (intended: {WINDOW - 1})"
                 + (f"; torchdiffeq step_size h takes {own['evaluations_forward'] // 4}" if own else ""))
    by = {(r.batch, r.step, r.path): r for r in rows}
    for batch in BATCHES:
        for step in STEPS:
            base = by[(batch, step, rows[0].path)]
            full = by.get((batch, step, "gmhf ConditionalNODE._train_step (whole: + draw, clip, Adam)"))
            if full:
                lines.append(f"B={batch} h={step:g}: the whole _train_step takes {paired(full, base):.2f}x the "
                             "forward+backward")
    ok_memory = [m for m in memory if "error" not in m]
    if ok_memory:
        worst = max(m["resolution_bytes"] for m in ok_memory)
        reset = all(m["peak_was_reset"] for m in ok_memory)
        lines.append("memory: peak RSS added = VmHWM after one step - resident set before it, fresh process per row, "
                     f"B={MEMORY_BATCH}, h={MEMORY_STEP:g}, float32; VmHWM " + ("reset before the step" if reset else
                                                                              "NOT resettable here")
                     + f"; at most {worst / 2**20:.1f} MiB of earlier high-water mark above the resident set "
                     "(a row below that cannot be told apart from it)")
    for name in MEMORY_PATHS:
        mine = {m["window"]: m for m in ok_memory if m["path"] == name}
        low, high = min(MEMORY_WINDOWS), max(MEMORY_WINDOWS)
        if low in mine and high in mine:
            per = 100 / (high - low)
            lines.append(f"memory growth, {name}: {(mine[high]['peak_added_bytes'] - mine[low]['peak_added_bytes']) * per / 2**20:.1f} "
                         f"MiB peak RSS and {(mine[high]['saved_for_backward_bytes'] - mine[low]['saved_for_backward_bytes']) * per / 2**20:.1f} "
                         f"MiB saved for backward per 100 output points (B={MEMORY_BATCH}, h={MEMORY_STEP:g})")
    mmapped = [m for m in ok_memory if m["path"].endswith("KiB]")]
    plain = [m for m in ok_memory if m["path"] == MEMORY_PATHS[0] and m["window"] == max(MEMORY_WINDOWS)]
    if mmapped and plain:
        lines.append(f"memory, window {max(MEMORY_WINDOWS)}: with glibc's mmap threshold at 64 KiB the same gmhf step peaks at "
                     f"{mmapped[0]['peak_added_bytes'] / 2**20:.0f} MiB instead of {plain[0]['peak_added_bytes'] / 2**20:.0f} "
                     f"(saved for backward: {plain[0]['saved_for_backward_bytes'] / 2**20:.0f}): a peak that drops with "
                     "the threshold is freed temporaries kept in glibc's heap; one that does not is tensors alive at once")
    for m in memory:
        if "error" in m:
            lines.append(f"memory {m['path']} window {m['window']}: failed: {m['error']}")
    lines.append(load_note(rows, start_load, NOISY))
    return lines


def main() -> int:
    """Verify, time, measure memory, profile; print the tables and notes, write the JSON; exit 0 even when the goal is missed."""
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    machine = machine_info()
    started = time.perf_counter()
    have_tdq = importlib.util.find_spec("torchdiffeq") is not None
    path_list = paths(have_tdq)
    phases: dict[str, float] = {}
    mark = time.perf_counter()
    model, data, theta = problem()
    phases["data + warm fit"], mark = time.perf_counter() - mark, time.perf_counter()
    verified = {}
    for size in BATCHES:
        for step in STEPS:
            twin = copy.deepcopy(model)
            twin.step = step
            verified[(size, step)] = verify(twin, make_batch(twin, data, theta, size, WINDOW, seed=SEED + size),
                                            path_list)
    phases["verification"], mark = time.perf_counter() - mark, time.perf_counter()
    failed = [(key, name) for key, checks in verified.items() for name, c in checks.items() if c.get("passed") is False]
    counts: dict[tuple[float, str], tuple[int, int]] = {}
    rows = [row for size in BATCHES for step in STEPS
            for row in time_config(model, data, theta, size, step, path_list, verified[(size, step)], counts)]
    phases["timing"], mark = time.perf_counter() - mark, time.perf_counter()
    compared = ratios(rows) if have_tdq else []
    memory = memory_rows(model, data, theta, [n for n in MEMORY_PATHS if n in {p.name for p in path_list}])
    phases["memory"], mark = time.perf_counter() - mark, time.perf_counter()
    profile, profiled_s = profile_gmhf(model, data, theta)
    phases["profile"] = time.perf_counter() - mark
    lines = ([] if have_tdq else ["torchdiffeq was not importable (`pip install -e .[bench]`): no side-by-side comparison"])
    lines += [f"VERIFICATION FAILED for {name} at B={key[0]} h={key[1]:g}" for key, name in failed]
    lines += notes(rows, verified, memory, machine["load_average"])
    lines.append("phases: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items()))
    print(timing_table(rows))
    print()
    if compared:
        print(ratio_table(compared))
        print()
    print(memory_table(memory))
    print()
    print(f"cProfile, gmhf forward+backward, B={BATCHES[0]}, h={STEPS[0]:g}, window {WINDOW}: "
          f"{profiled_s * 1e3:.1f} ms/step under the profiler")
    print(profile_table(profile))
    print()
    for line in lines:
        print(f"* {line}")
    print("\n" + footer(machine, time.perf_counter() - started, RESULTS))
    document = {
        "benchmark": "cnode", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
        "settings": {"seed": SEED, "spacing": SPACING, "points": POINTS, "trajectories": TRAJECTORIES,
                     "hidden": HIDDEN, "depth": DEPTH, "warm_fit_steps": WARM_FIT_STEPS, "window": WINDOW,
                     "batches": BATCHES, "steps": STEPS, "rounds": ROUNDS, "run_target_s": RUN_TARGET_S,
                     "dtype": "float32", "memory": {"batch": MEMORY_BATCH, "step": MEMORY_STEP,
                                                    "windows": MEMORY_WINDOWS},
                     "goal": GOAL, "loss_tolerance": LOSS_TOLERANCE, "grad_tolerance": GRAD_TOLERANCE,
                     "statistic": "median"},
        "verification": [{"batch": k[0], "step": k[1], "path": name, **c}
                         for k, checks in verified.items() for name, c in checks.items()],
        "rows": [r.to_json() for r in rows], "comparison": compared, "memory": memory,
        "profile": {"batch": BATCHES[0], "step": STEPS[0], "ms_per_step_profiled": profiled_s * 1e3, "top": profile},
        "notes": lines,
    }
    write_results(RESULTS, document)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--memory-child":
        print(json.dumps(memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        sys.exit(0)
    sys.exit(main())
