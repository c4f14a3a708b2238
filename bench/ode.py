"""How fast the batched ODE solvers are: Duffing trajectories/s at equal accuracy, beside torchdiffeq.

Run with `.venv/bin/python bench/ode.py` (torchdiffeq comes with the `bench` extra; without it the
gmhf rows are still measured). It prints two tables and writes `bench/results/ode.json`.

What is compared: Duffing batches of B = 1,024 and 8,192 trajectories, θ drawn from the SOURCE
(`domain duffing` with no statements: every factor keeps its source distribution) and from the
shipped TARGET (`duffing_truth.guide`), t in [0, 20] with 200 output points, float64, one torch
thread. Methods: gmhf `rk4` and `adaptive`, the Duffing domain's fused solvers (`duffing_rk4`, and
`duffing_adams`: Adams–Bashforth–Moulton PECE of order 8, two field evaluations a step), torchdiffeq
`odeint` with "rk4" and "dopri5" (the methods the issue's goal names), and, so that the comparison
does not hide a better peer, torchdiffeq's own Adams ("explicit_adams", "implicit_adams", on gmhf's
grids, max_order 8 or 12) and "dopri8". The ratio table gives both comparisons.

Equal accuracy: every method runs at its cheapest setting whose max abs error (over trajectories,
output times and both components) is at most 1e-4 against a reference. The reference is gmhf rk4 at
step 0.005 on the whole batch, itself checked against scipy's DOP853 (rtol 1e-10, atol 1e-12) on the
same 64 trajectories (evenly spread over the 8,192) for every run. The setting is searched on the first
1,024 trajectories, climbing each method's ladder from its cheapest rung, and then timed at both B;
the error at the timed B is reported too.

Timing: the methods of one (box, B) run round-robin, one run each per round, so a load spike on a
shared machine hits all of them alike; each figure is the median over rounds, min and spread shown.
The order rotates from round to round. At B = 8,192 an output is 26 MB, and whether a method gets
memory glibc already holds or fresh pages from the kernel (a page fault per 4 KiB, ~2.5 µs each on
the VM this was written on: 15 ms for one output) depends on what ran before it; the JSON records
each run's minor page faults, and the notes give each method's median.
The arithmetic limit is evaluations x B x (9 flops at a measured fused multiply-add rate + 1 cos at a
measured cos rate): how far eager torch is from what the same arithmetic would cost.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import UTC, datetime
from typing import Any

import torch
from common import ROOT, footer, machine_info, write_results  # bench/common.py (run as a script)
from ode_methods import STEPS, TOLERANCES, gmhf_methods, torchdiffeq_methods
from ode_problems import (
    BATCHES,
    CHECK_SUBSET,
    HORIZON,
    POINTS,
    REFERENCE_STEP,
    SEARCH_BATCH,
    SEED,
    TOLERANCE,
    Box,
    boxes,
    grid,
    solve_reference,
)
from ode_report import GOAL, notes, ratio_table, ratios, timing_table
from ode_timing import FIELD_FLOPS, ROUNDS, Choice, Row, machine_rates, search, time_box

RESULTS = ROOT / "bench" / "results" / "ode.json"


def write_json(machine: dict[str, Any], rates: dict[str, float], boxes_: list[Box], choices: list[Choice],
               rows: list[Row], compared: list[dict[str, Any]], lines: list[str]) -> None:
    """Store the results for comparison across commits (bench/results/ is not tracked)."""
    document = {
        "benchmark": "ode", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
        "settings": {"seed": SEED, "batches": BATCHES, "search_batch": SEARCH_BATCH, "horizon": HORIZON,
                     "points": POINTS, "dtype": "float64", "tolerance": TOLERANCE, "steps": STEPS,
                     "tolerances": TOLERANCES, "reference_step": REFERENCE_STEP, "check_subset": CHECK_SUBSET,
                     "rounds": ROUNDS, "field_flops": FIELD_FLOPS, "goal": GOAL, "statistic": "median"},
        "rates": rates,
        "references": [{"box": b.name, "seconds": b.reference_s, "max_error_vs_dop853": b.check_error}
                       for b in boxes_],
        "search": [{"method": c.method.name, "box": c.box, "chosen": c.setting.label if c.setting else None,
                    "tried": c.tried} for c in choices],
        "rows": [r.to_json() for r in rows], "comparison": compared, "notes": lines,
    }
    write_results(RESULTS, document)


def main() -> int:
    """Search, time, print the tables and notes, write the JSON; exit 0 even when the goal is missed."""
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    machine = machine_info()
    started = time.perf_counter()
    t = grid()
    spacing = float(t[1] - t[0])
    methods = gmhf_methods(spacing)
    skipped = []
    if importlib.util.find_spec("torchdiffeq") is not None:
        methods += torchdiffeq_methods(spacing)
    else:
        skipped.append("torchdiffeq was not importable (`pip install -e .[bench]`): no side-by-side comparison")
    rates = machine_rates()
    problems = boxes()
    for box in problems:
        solve_reference(box, t)
    choices = [search(method, box, t) for box in problems for method in methods]
    rows = [row for box in problems for row in time_box(box, choices, t, rates)]
    compared = ratios(rows)
    lines = [*skipped, *notes(choices, problems, rows, rates, machine["load_average"])]
    print(timing_table(rows))
    print()
    if compared:
        print(ratio_table(compared))
        print()
    for line in lines:
        print(f"* {line}")
    print("\n" + footer(machine, time.perf_counter() - started, RESULTS))
    write_json(machine, rates, problems, choices, rows, compared, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
