"""How fast the guidance language is: parse+check, compile, sample, and the command line's start-up.

Run with `make bench` (or `.venv/bin/python bench/dsl.py`). It prints one table and writes
`bench/results/dsl.json`. Every figure is the median over repeats, because one slow run on a shared
machine should not move the headline; the minimum is printed too. One torch thread and fixed seeds
keep runs comparable across machines and commits. A single run that exceeds `RUN_LIMIT_S` is stopped
and reported as a miss, so a quadratic regression costs seconds here, not hours.
"""

from __future__ import annotations

import math
import random
import sys
import time
from datetime import UTC, datetime
from typing import Any

import torch
from common import ROOT, machine_info, text_table, write_results  # bench/common.py (run as a script)
from dsl_cli import cli_measures
from dsl_compile import compile_and_sample_measures
from dsl_language import language_measures
from dsl_measures import MEASURE_BUDGET_S, REPEATS, RUN_LIMIT_S, SEED, Measure
from dsl_scenic import scenic_comparison

RESULTS = ROOT / "bench" / "results" / "dsl.json"


def dsl_machine_info() -> dict[str, Any]:
    """common's machine record less the CPU model and peer versions, the keys dsl.json has always had."""
    return {key: value for key, value in machine_info(peers=()).items() if key != "cpu_model"}


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
    """One line per measure."""
    header = ["measure", "value (median)", "min", "unit", "goal", "met?", "runs"]
    return text_table(header, [row(m) for m in measures], {1, 2, 6})


def notes(measures: list[Measure]) -> list[str]:
    """Per-measure notes, including why a stopped run counts as a miss."""
    out = [f"{m.name}: {m.note}" for m in measures if m.note]
    out += [f"{m.name}: a run exceeded the {RUN_LIMIT_S:g} s limit and was stopped; the value is a bound"
            for m in measures if m.bound is not None]
    return out


def write_json(machine: dict[str, Any], measures: list[Measure], lines: list[str]) -> None:
    """Store the results for comparison across commits (bench/results/ is not tracked)."""
    document = {"benchmark": "dsl", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
                "settings": {"seed": SEED, "repeats": REPEATS, "run_limit_s": RUN_LIMIT_S,
                             "measure_budget_s": MEASURE_BUDGET_S, "statistic": "median"},
                "measures": [m.to_json() for m in measures], "notes": lines}
    write_results(RESULTS, document)


def main() -> int:
    """Run every measure, print the table and notes, write the JSON; exit 0 even when goals are missed."""
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    random.seed(SEED)
    machine = dsl_machine_info()
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
