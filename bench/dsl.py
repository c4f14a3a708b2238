"""How fast the guidance language is: parse+check, compile, sample, and the command line's start-up.

Run with `make bench` (or `.venv/bin/python bench/dsl.py`). It prints one table and writes
`bench/results/dsl.json`. Every figure is the median over repeats, because one slow run on a shared
machine should not move the headline; the minimum is printed too. One torch thread and fixed seeds
keep runs comparable across machines and commits. A single run that exceeds `RUN_LIMIT_S` is stopped
and reported as a miss, so a quadratic regression costs seconds here, not hours.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import torch

import gmhf
from gmhf.api import check_text
from gmhf.core.domain import Domain
from gmhf.core.factors import Factor, FactorSpace
from gmhf.dsl.parse import parse
from gmhf.plugins.hookspecs import hookimpl
from gmhf.plugins.manager import plugin_host, using_plugins

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "dsl.json"
SEED = 0
REPEATS = 7
#: One run longer than this is stopped: the measure is reported as missed, with a bound.
RUN_LIMIT_S = 20.0
#: Stop repeating a measure once its runs have taken this long (at least one run is always made).
MEASURE_BUDGET_S = 15.0
SCENIC_REFERENCE = "compiles a 5-factor scenario in ~30 ms and samples ~4k scenes/s by rejection"


# ------------------------------------------------------------------------------------ measures


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


# ------------------------------------------------------------------- 1. parse and check, sinusoid

SINUSOID_HEADER = (
    "domain sinusoid",
    "invariant phase",
    "shift amplitude in 1 .. 8",
    "shift frequency by *1.25",
    "prior noise between 0.01 and 0.2 with 90%",
    "trust 0.9",
)
#: Realistic statements, all valid together (a factor is shifted only in the header, once).
SINUSOID_STATEMENTS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"require amplitude < {r.randint(2, 6)} * frequency + {r.randint(3, 9)}",
    lambda r: f"prefer noise < {r.choice((0.05, 0.1, 0.15))} weight {r.choice((0.5, 1, 2))}",
    lambda r: f"expect max(abs(y)) < {r.randint(12, 40)}",
    lambda r: f"require amplitude + 2 * noise < {r.randint(9, 12)}   # headroom for the sensor",
    lambda r: f"prefer amplitude > {r.randint(1, 3)} and frequency < {r.choice((1.3, 1.4))} "
              f"weight -{r.choice((0.2, 0.5))}",
    lambda r: f"require noise < {r.choice((0.4, 0.5, 0.6))}",
    lambda r: f"expect min(y) > -{r.randint(12, 40)}",
)


def sinusoid_spec(statements: int) -> str:
    """A valid sinusoid spec of exactly `statements` statements, the same for the same size."""
    rng = random.Random(SEED)
    body = [SINUSOID_STATEMENTS[i % len(SINUSOID_STATEMENTS)](rng)
            for i in range(statements - len(SINUSOID_HEADER))]
    return "\n".join([*SINUSOID_HEADER, *body]) + "\n"


def language_measures() -> list[Measure]:
    """Parse+check at 1,000 and 10,000 statements (the ratio exposes superlinear work), and parse alone."""
    small, big = sinusoid_spec(1_000), sinusoid_spec(10_000)
    extensions = plugin_host().registry.extensions()
    unit = "statements/s"
    scaling = rate("parse+check, 1,000 statements (scaling reference)", 1_000, unit, None,
                   timings(lambda: check_text(small, path="bench-1k.guide"), repeats=5))
    # The 1,000-statement runs warmed the parser and the registry: no 10,000-statement warm-up.
    checked = rate("parse+check, 10,000 statements", 10_000, unit, Goal(">=", 30_000),
                   timings(lambda: check_text(big, path="bench-10k.guide"), warmup=False))
    parsed = rate("parse only, 10,000 statements", 10_000, unit, None,
                  timings(lambda: parse(big, path="bench-10k.guide", extensions=extensions), warmup=False))
    explain_split(scaling, checked, parsed)
    return [scaling, checked, parsed]


def explain_split(scaling: Measure, checked: Measure, parsed: Measure) -> None:
    """Notes that say where parse+check time goes: parsing vs checking, and how it scales with size."""
    check_rate = checked.median or checked.bound  # a bound when the run was stopped
    if check_rate and parsed.median:
        share = check_rate / parsed.median
        parsed.note = f"parsing is {'at most ' if checked.bound else ''}{share:.0%} of parse+check time"
    slowdown = scaling.median / check_rate if check_rate and scaling.median else 0.0
    if slowdown > 1.5 or (slowdown and not checked.bound):  # a bound near 1x says nothing
        scaling.note = (f"{'at least ' if checked.bound else ''}{slowdown:.1f}x faster per statement than at "
                        "10,000 statements" + (": work grows faster than the spec" if slowdown > 1.5 else ""))


# ----------------------------------------------------------------- 2-4. compile and sample, test domains


class BenchDomain(Domain):
    """Factors only: compiling and sampling a spec never simulates, so this domain cannot."""

    name = "bench"
    description = "benchmark domain: real factors f0, f1, ... on [0, 10], source uniform(1, 5)"
    space = FactorSpace(factors=(Factor.real("f0", 0.0, 10.0, source=("uniform", 1.0, 5.0)),))

    def simulate(self, theta: torch.Tensor, *, generator: torch.Generator | None = None, **options: Any) -> Any:
        """Not needed by the benchmark."""
        raise NotImplementedError("the benchmark domain has no simulator")

    def observe(self, theta: torch.Tensor, data: Any) -> dict[str, torch.Tensor]:
        """Not needed by the benchmark."""
        raise NotImplementedError("the benchmark domain has no observables")


def bench_domain(name: str, factors: int) -> Domain:
    """A `BenchDomain` called `name` with real factors f0 … f{factors-1}."""
    space = FactorSpace(factors=tuple(Factor.real(f"f{i}", 0.0, 10.0, source=("uniform", 1.0, 5.0))
                                      for i in range(factors)))
    return type(f"BenchDomain{factors}", (BenchDomain,), {"name": name, "space": space})()


class BenchPlugin:
    """Registers the benchmark domains through the hook, exactly as an installed plugin would."""

    def __init__(self, *domains: Domain) -> None:
        self.domains = domains

    @hookimpl
    def gmhf_domains(self, register: Callable[..., None]) -> None:
        """The benchmark domains."""
        for domain in self.domains:
            register(domain)


SMALL_SPEC = """\
domain bench5
shift f0 in 2 .. 6
prior f1 ~ normal(4, 1)
shift f2 by +0.5
prior f3 between 2 and 4 with 90%
require f0 < 2 * f1
require f2 + f3 < 8
"""


def big_spec(factors: int = 200, requires: int = 40) -> str:
    """Shifts and priors on three factors in four, and `requires` joint requires over disjoint pairs."""
    lines = [f"domain bench{factors}"]
    for i in range(factors):
        lines.append((f"shift f{i} in 2 .. 6", f"prior f{i} ~ normal(3, 1)", f"shift f{i} by *1.2", "")[i % 4])
    lines += [f"require f{2 * j} < 3 * f{2 * j + 1} + 1" for j in range(requires)]
    return "\n".join(line for line in lines if line) + "\n"


def guidance_measures(label: str, text: str, compile_goal: Goal, n: int, sample_goal: Goal) -> list[Measure]:
    """Compile time (text -> Guidance, including the 10,000-draw probe) and sampling throughput."""
    compiled = duration(f"compile {label}", "ms", compile_goal, timings(lambda: gmhf.load(text)))
    front = duration("parse+check", "ms", None, timings(lambda: check_text(text)))
    if front.median is not None and compiled.median:
        compiled.note = f"parse+check alone {front.median:.2f} ms ({front.median / compiled.median:.0%})"
    guidance = gmhf.load(text)
    sampled = rate(f"sample {label}, n={n:,}", n, "samples/s", sample_goal,
                   timings(lambda: guidance.sample(n, seed=SEED)))
    sampled.note = f"joint acceptance rate {guidance.explain()['acceptance_rate']:.2f} (compile-time probe)"
    return [compiled, sampled]


def compile_and_sample_measures() -> list[Measure]:
    """Measures 2-4, on two benchmark domains registered through a local plugin."""
    plugin = BenchPlugin(bench_domain("bench5", 5), bench_domain("bench200", 200))
    with using_plugins(plugin):
        small = guidance_measures("5 factors/2 requires", SMALL_SPEC, Goal("<=", 3), 100_000, Goal(">=", 1e6))
        big = guidance_measures("200 factors/40 requires", big_spec(), Goal("<=", 50), 20_000, Goal(">=", 1e5))
    return [small[0], big[0], small[1], big[1]]


# --------------------------------------------------------------------------------- 5. command line


def gmhf_script() -> str:
    """The `gmhf` script next to this interpreter (the venv's), else the one on PATH."""
    script = Path(sys.executable).with_name("gmhf")
    return str(script) if script.exists() else "gmhf"


def cli_measures() -> list[Measure]:
    """Wall time of whole `gmhf` processes: start-up is what a user waits for on every call."""
    measures = []
    for args in (["--help"], ["check", "examples/specs/sinusoid.guide"]):
        command = [gmhf_script(), *args]

        def run(command: list[str] = command) -> None:
            subprocess.run(command, cwd=ROOT, capture_output=True, check=True)

        measures.append(duration(f"gmhf {' '.join(args)}", "s", Goal("<=", 0.3), timings(run)))
    return measures


# ---------------------------------------------------------------------------------------- 6. Scenic

#: The 5-factor spec in Scenic 3 syntax (`between 2 and 4 with 90%` is normal(3, 0.61)). Written from
#: Scenic's documentation and never run here: Scenic is not installed in the development venv.
SCENIC_PROGRAM = """\
param f0 = Range(2, 6)
param f1 = Normal(4, 1)
param f2 = Range(1.5, 5.5)
param f3 = Normal(3, 0.61)
param f4 = Range(1, 5)
require globalParameters.f0 < 2 * globalParameters.f1
require globalParameters.f2 + globalParameters.f3 < 8
ego = new Object
"""


def scenic_measures(scenes: int = 200) -> list[Measure]:
    """Scenic's compile time and scenes/s on the 5-factor scenario (only where scenic is installed)."""
    import scenic  # type: ignore[import-not-found]

    compiled = duration("Scenic compile, 5 factors/2 requires", "ms", None,
                        timings(lambda: scenic.scenarioFromString(SCENIC_PROGRAM), repeats=5))
    scenario = scenic.scenarioFromString(SCENIC_PROGRAM)
    random.seed(SEED)

    def generate() -> None:
        for _ in range(scenes):
            scenario.generate(maxIterations=100_000)

    sampled = rate("Scenic sample, 5 factors/2 requires", scenes, "scenes/s", None, timings(generate, repeats=5))
    return [compiled, sampled]


def scenic_comparison(ours: list[Measure]) -> tuple[list[Measure], list[str]]:
    """Scenic side by side with the ratio, or a line saying why it was skipped."""
    if importlib.util.find_spec("scenic") is None:
        return [], ["Scenic was not importable: the side-by-side comparison was skipped.",
                    f"Scenic, quoted reference, not measured here: {SCENIC_REFERENCE}."]
    try:
        theirs = scenic_measures()
    except Exception as error:  # an API change in Scenic must not lose the rest of the results
        return [], [f"Scenic comparison failed: {type(error).__name__}: {error}"]
    mine = {m.name: m for m in ours}
    compiled, sampled = mine["compile 5 factors/2 requires"], mine["sample 5 factors/2 requires, n=100,000"]
    lines = []
    if compiled.median and theirs[0].median:
        lines.append(f"compile: gmhf is {theirs[0].median / compiled.median:,.1f}x as fast as Scenic")
    if sampled.median and theirs[1].median:
        lines.append(f"sampling: gmhf draws {sampled.median / theirs[1].median:,.0f}x as many per second as Scenic")
    return theirs, lines


# ----------------------------------------------------------------------------------------- report


def machine_info() -> dict[str, Any]:
    """Where the numbers came from: they mean little without the machine and its load."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    return {
        "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
        "cpus": os.cpu_count(), "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "gmhf": gmhf.__version__,
        "git_commit": commit.stdout.strip() or None, "git_dirty": bool(dirty.stdout.strip()),
    }


def number(value: float, unit: str) -> str:
    """A value as the table shows it: rates with thousands separators, times with enough digits."""
    if unit.endswith("/s"):
        return f"{value:,.0f}"
    return f"{value:.2f}" if unit == "ms" else f"{value:.3f}"


def row(measure: Measure) -> list[str]:
    """The table cells of one measure."""
    goal = "-" if measure.goal is None else f"{measure.goal.op} {number(measure.goal.target, measure.unit)}"
    met = {None: "-", True: "yes", False: "NO"}[measure.met]
    if measure.bound is not None and not measure.values:
        sign = "<" if measure.unit.endswith("/s") else ">"
        return [measure.name, f"{sign} {number(measure.bound, measure.unit)}", "-", measure.unit, goal, met, "0"]
    low = min(measure.values)
    return [measure.name, number(measure.median or math.nan, measure.unit), number(low, measure.unit),
            measure.unit, goal, met, str(len(measure.values))]


def table(measures: list[Measure]) -> str:
    """A plain-text table: readable in a terminal, a CI log and a pasted issue comment alike."""
    header = ["measure", "value (median)", "min", "unit", "goal", "met?", "runs"]
    rows = [header, *(row(m) for m in measures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {1, 2, 6}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def notes(measures: list[Measure]) -> list[str]:
    """Per-measure notes, including why a stopped run counts as a miss."""
    out = [f"{m.name}: {m.note}" for m in measures if m.note]
    out += [f"{m.name}: a run exceeded the {RUN_LIMIT_S:g} s limit and was stopped; the value is a bound"
            for m in measures if m.bound is not None]
    return out


def write_json(machine: dict[str, Any], measures: list[Measure], lines: list[str]) -> None:
    """Store the results for comparison across commits (bench/results/ is not tracked)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": "dsl", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
                "settings": {"seed": SEED, "repeats": REPEATS, "run_limit_s": RUN_LIMIT_S,
                             "measure_budget_s": MEASURE_BUDGET_S, "statistic": "median"},
                "measures": [m.to_json() for m in measures], "notes": lines}
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    """Run every measure, print the table and notes, write the JSON; exit 0 even when goals are missed."""
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    random.seed(SEED)
    machine = machine_info()
    started = time.perf_counter()
    measures = [*language_measures(), *compile_and_sample_measures(), *cli_measures()]
    scenic, comparison = scenic_comparison(measures)
    measures += scenic
    lines = [*notes(measures), *comparison]
    print(table(measures))
    print()
    for line in lines:
        print(f"* {line}")
    print(f"\n{machine['platform']}, Python {machine['python']}, torch {machine['torch']} "
          f"({machine['torch_threads']} thread), {machine['cpus']} CPUs; took {time.perf_counter() - started:.0f} s; "
          f"results in {RESULTS.relative_to(ROOT)}")
    write_json(machine, measures, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
