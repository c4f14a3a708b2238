"""bench/ode.py's search and timing: the cheapest passing rung per method, round-robin runs, the machine's rates."""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from common import Counted  # bench/common.py (run as a script)
from ode_methods import Method, Setting
from ode_problems import BATCHES, SEARCH_BATCH, TOLERANCE, Box, max_error
from torch import Tensor

#: Rounds of timing per (box, B): every method runs once per round.
ROUNDS = {1_024: 7, 8_192: 5}
#: A search run slower than this ends that method's ladder (the next rungs cost more).
RUN_LIMIT_S = 20.0
#: Flops of one Duffing field evaluation besides its cos: ω·t, γ·cos, δ·v, x·x, β·x², α+, ·x, two subtractions.
FIELD_FLOPS = 9


@dataclass
class Choice:
    """The cheapest passing rung of one method on one box, and the rungs tried on the way."""

    method: Method
    box: str
    setting: Setting | None
    tried: list[dict[str, Any]]


def search(method: Method, box: Box, t: Tensor) -> Choice:
    """Climb the ladder on the first SEARCH_BATCH trajectories until the error is at most TOLERANCE."""
    f, y0, reference = box.problem(SEARCH_BATCH)
    tried = []
    for setting in method.ladder:
        counted = Counted(f)
        gc.collect()
        start = time.perf_counter()
        y = setting.run(counted, y0, t)
        seconds = time.perf_counter() - start
        error = max_error(y, reference)
        tried.append({"setting": setting.label, "max_error": error, "evaluations": counted.calls, "seconds": seconds})
        if error <= TOLERANCE:
            return Choice(method, box.name, setting, tried)
        if seconds > RUN_LIMIT_S:
            break
    return Choice(method, box.name, None, tried)


@dataclass
class Row:
    """One timed row: a method at its chosen setting on one (box, B)."""

    box: str
    batch: int
    method: str
    library: str
    setting: str
    evaluations: int = 0
    search_error: float = math.nan
    error: float = math.nan
    seconds: list[float] = field(default_factory=list)
    page_faults: list[int] = field(default_factory=list)  # minor faults per timed run (Linux; empty elsewhere)
    goal_peer: bool = True
    limit_s: float = math.nan
    sums_limit_s: float = math.nan
    peak_limit_s: float = math.nan

    @property
    def median(self) -> float:
        """Median seconds per run."""
        return statistics.median(self.seconds) if self.seconds else math.nan

    @property
    def rate(self) -> float:
        """Trajectories per second at the median."""
        return self.batch / self.median if self.seconds else math.nan

    @property
    def spread(self) -> float:
        """(max - min) / median of the run times."""
        return (max(self.seconds) - min(self.seconds)) / self.median if self.seconds else math.nan

    def to_json(self) -> dict[str, Any]:
        """The JSON record of this row."""
        return {"box": self.box, "batch": self.batch, "method": self.method, "library": self.library,
                "setting": self.setting, "evaluations": self.evaluations, "max_error_search": self.search_error,
                "max_error": self.error, "median_s": self.median, "min_s": min(self.seconds, default=None),
                "seconds": self.seconds, "page_faults": self.page_faults, "trajectories_per_s": self.rate,
                "spread": self.spread,
                "goal_peer": self.goal_peer, "arithmetic_limit_s": self.limit_s,
                "x_arithmetic_limit": self.median / self.limit_s, "arithmetic_limit_with_sums_s": self.sums_limit_s,
                "x_arithmetic_limit_with_sums": self.median / self.sums_limit_s,
                "peak_limit_s": self.peak_limit_s, "x_peak_limit": self.median / self.peak_limit_s}


def time_box(box: Box, choices: list[Choice], t: Tensor, rates: dict[str, float]) -> list[Row]:
    """Time every chosen setting on one box, at each B, round-robin."""
    rows = []
    for batch in BATCHES:
        f, y0, reference = box.problem(batch)
        chosen = [c for c in choices if c.box == box.name and c.setting is not None]
        batch_rows = []
        for choice in chosen:  # warm-up run: evaluation count and error at this B
            assert choice.setting is not None
            counted = Counted(f)
            y = choice.setting.run(counted, y0, t)
            row = Row(box.name, batch, choice.method.name, choice.method.library, choice.setting.label,
                      counted.calls, choice.tried[-1]["max_error"], max_error(y, reference), goal_peer=choice.method.goal_peer)
            work = counted.calls * batch
            row.limit_s = work * (FIELD_FLOPS / rates["fma_flops"] + 1 / rates["cos_per_s"])
            row.sums_limit_s = row.limit_s + work * choice.method.sum_flops / rates["fma_flops"]
            row.peak_limit_s = work * (FIELD_FLOPS / rates["peak_flops"] + 1 / rates["cos_per_s"])
            batch_rows.append(row)
            del y
        pairs = list(zip(chosen, batch_rows, strict=True))
        for round_ in range(ROUNDS[batch]):  # the order rotates: which method follows which changes the heap
            for choice, row in pairs[round_ % len(pairs):] + pairs[:round_ % len(pairs)]:
                assert choice.setting is not None
                gc.collect()
                faults = _minor_faults()
                start = time.perf_counter()
                choice.setting.run(f, y0, t)
                row.seconds.append(time.perf_counter() - start)
                if faults is not None:
                    row.page_faults.append(_minor_faults() - faults)  # type: ignore[operator]
        rows += batch_rows
    return rows


def _minor_faults() -> int | None:
    """Minor page faults of this process so far (a fresh page's first touch), where the OS tells."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# ------------------------------------------------------------------------------------ arithmetic limit


def throughput(run: Callable[[], object], work: float, calls: int = 200, repeats: int = 7) -> float:
    """Work per second of `run`, median over repeats of `calls` calls."""
    for _ in range(10):
        run()
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        per_call.append((time.perf_counter() - start) / calls)
    return work / statistics.median(per_call)


def machine_rates() -> dict[str, float]:
    """Float64 rates on this machine, one thread: elementwise fused multiply-add (addcmul, 65,536 elements,
    cache-resident so memory does not bound it), cos, and a 512x512 matmul (the FMA units' peak)."""
    n = 65_536
    a, b, c = (torch.rand(n, dtype=torch.float64) for _ in range(3))
    out = torch.empty_like(a)
    m = torch.rand(512, 512, dtype=torch.float64)
    product = torch.empty_like(m)
    return {
        "fma_flops": throughput(lambda: torch.addcmul(c, a, b, out=out), 2 * n),
        "cos_per_s": throughput(lambda: torch.cos(a, out=out), n),
        "peak_flops": throughput(lambda: torch.mm(m, m, out=product), 2 * 512**3, calls=10),
    }

