"""bench/cnode.py's timing: round-robin training steps per (B, h), and cProfile of gmhf's step."""

from __future__ import annotations

import copy
import cProfile
import gc
import io
import math
import pstats
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from cnode_paths import Path_, gmhf_loss  # bench/cnode_paths.py (run as a script)
from cnode_problem import BATCHES, ROUNDS, RUN_TARGET_S, SEED, STEPS, WINDOW, make_batch
from cnode_verify import op_counts
from torch import Tensor

from gmhf.core.generator import ConditionalNODE
from gmhf.core.mlp_rk4 import Workspace

PROFILE_STEPS = 15
#: The bench's own folder: cProfile entries from its modules are the harness, not gmhf.
BENCH = Path(__file__).resolve().parent


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
        if Path(filename).resolve().parent == BENCH:
            continue  # the bench's own loop and loss closure
        parts = Path(filename).parts
        where = name if filename == "~" else f"{'/'.join(parts[-2:])}:{line}({name})"
        entries.append({"function": where, "calls_per_step": calls / PROFILE_STEPS,
                        "own_ms_per_step": own / PROFILE_STEPS * 1e3, "cumulative_ms_per_step": cumulative / PROFILE_STEPS * 1e3,
                        "own_share": own / total})
    entries.sort(key=lambda e: -e["own_ms_per_step"])
    return entries[:14], total / PROFILE_STEPS

