"""bench/dsl.py's measures: a goal, the per-run values, and timing runs that a limit can stop."""

from __future__ import annotations

import contextlib
import gc
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

SEED = 0
REPEATS = 7
#: One run longer than this is stopped: the measure is reported as missed, with a bound.
RUN_LIMIT_S = 20.0
#: Stop repeating a measure once its runs have taken this long (at least one run is always made).
MEASURE_BUDGET_S = 15.0


@dataclass(frozen=True)
class Goal:
    """A target from the issue: `value >= target` for rates, `value <= target` for times."""

    op: str  # ">=" or "<="
    target: float

    def met(self, value: float) -> bool:
        """Whether `value` reaches the goal."""
        return value >= self.target if self.op == ">=" else value <= self.target


@dataclass
class Measure:
    """One row of the table: the per-run values, or the bound reached when a run hit the limit."""

    name: str
    unit: str
    goal: Goal | None
    values: list[float] = field(default_factory=list)
    bound: float | None = None  # set when a run was stopped at RUN_LIMIT_S
    note: str = ""

    @property
    def median(self) -> float | None:
        """The headline figure (None when no run finished)."""
        return statistics.median(self.values) if self.values else None

    @property
    def met(self) -> bool | None:
        """Goal reached by the median; a stopped run is a miss; None when there is no goal."""
        if self.goal is None:
            return None
        return self.bound is None and self.median is not None and self.goal.met(self.median)

    def to_json(self) -> dict[str, Any]:
        """The JSON record of this measure."""
        return {"measure": self.name, "unit": self.unit, "median": self.median,
                "min": min(self.values) if self.values else None, "repeats": len(self.values),
                "values": self.values,
                "goal": None if self.goal is None else {"op": self.goal.op, "target": self.goal.target},
                "met": self.met, "stopped_at_limit": self.bound is not None, "bound": self.bound, "note": self.note}


class RunLimit(BaseException):
    """Raised inside a run that exceeded RUN_LIMIT_S (a BaseException, so `except Exception` cannot eat it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the enclosed run after `seconds` (where SIGALRM exists; elsewhere, no limit)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise RunLimit

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timings(run: Callable[[], object], *, repeats: int = REPEATS, warmup: bool = True) -> tuple[list[float], bool]:
    """Seconds per run, and whether a run hit the limit.

    The warm-up run absorbs imports and caches (parser tables, the plugin registry) that a user pays
    once per process, not per spec. Garbage is collected before each run, not disabled during it:
    allocation-heavy code pays for its garbage in real use too.
    """
    seconds: list[float] = []
    try:
        if warmup:
            with time_limit(RUN_LIMIT_S):
                run()
        for _ in range(repeats):
            gc.collect()
            start = time.perf_counter()
            with time_limit(RUN_LIMIT_S):
                run()
            seconds.append(time.perf_counter() - start)
            if sum(seconds) > MEASURE_BUDGET_S:
                break
    except RunLimit:
        return seconds, True
    return seconds, False


def rate(name: str, count: int, unit: str, goal: Goal | None, timed: tuple[list[float], bool]) -> Measure:
    """A throughput measure: `count` items per run, reported per second."""
    seconds, stopped = timed
    return Measure(name, unit, goal, [count / s for s in seconds], count / RUN_LIMIT_S if stopped else None)


def duration(name: str, unit: str, goal: Goal | None, timed: tuple[list[float], bool]) -> Measure:
    """A time measure in `unit` ("ms" or "s")."""
    scale = 1000.0 if unit == "ms" else 1.0
    seconds, stopped = timed
    return Measure(name, unit, goal, [s * scale for s in seconds], RUN_LIMIT_S * scale if stopped else None)

