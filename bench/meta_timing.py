"""bench/meta.py's timing: meta-gradients checked against gmhf's, then meta-iterations round-robin."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from common import paired  # bench/common.py (run as a script)
from meta_peers import FILLS
from meta_workload import OUTER_LR, SEED, Fill, new_model, sinusoid_tasks
from torch import Tensor

from gmhf.core.tasks import TaskBatch

BATCHES = (8, 32, 128, 512)
#: Per B: rounds of timing (every contender makes one timed run per round).
ROUNDS = {8: 7, 32: 7, 128: 5, 512: 3}
#: A timed run repeats the meta-iteration until about this long (at most MAX_ITERATIONS times).
RUN_TARGET_S, MAX_ITERATIONS = 0.25, 50
#: Same meta-gradient: max relative difference (per tensor, against gmhf's largest entry), float32.
AGREEMENT = 1e-4
#: The issue's goals for second-order MAML: gmhf at least this many times as fast as each looped peer.
GOALS = {32: 10.0, 128: 20.0}


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

