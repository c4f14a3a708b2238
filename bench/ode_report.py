"""bench/ode.py's report: the two tables and the notes."""

from __future__ import annotations

import statistics
from typing import Any

from common import load_note, text_table  # bench/common.py (run as a script)
from ode_methods import ADAMS_ORDER, ADAMS_SUMS, DOPRI5_SUMS, RK4_SUMS
from ode_problems import BATCHES, CHECK_SUBSET, REFERENCE_STEP, SEARCH_BATCH, TOLERANCE, Box
from ode_timing import FIELD_FLOPS, Choice, Row

#: The issue's goal: gmhf's best at least this many times as fast as torchdiffeq's best, at equal accuracy.
GOAL = 3.0
#: Rounds after which a spread (max - min) / median above this marks a figure as noisy.
NOISY = 0.25


def timing_table(rows: list[Row]) -> str:
    """One line per (box, B, method)."""
    header = ["box", "B", "method", "setting", "evals", "max error", "median s", "min s", "traj/s", "spread",
              "x limit", "x limit+sums"]
    cells = [[r.box, f"{r.batch:,}", r.method, r.setting[:44], f"{r.evaluations:,}", f"{r.error:.1e}",
              f"{r.median:.3f}", f"{min(r.seconds):.3f}", f"{r.rate:,.0f}", f"{r.spread:.0%}",
              f"{r.median / r.limit_s:.1f}", f"{r.median / r.sums_limit_s:.1f}"] for r in rows]
    return text_table(header, cells, {1, 4, 5, 6, 7, 8, 9, 10, 11})


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """Per (box, B): gmhf's fastest vs torchdiffeq's fastest at equal accuracy, among the goal's peers (rk4, dopri5)
    and among every torchdiffeq method tried."""
    out = []
    for box in dict.fromkeys(r.box for r in rows):
        for batch in BATCHES:
            here = [r for r in rows if r.box == box and r.batch == batch and r.error <= TOLERANCE]
            ours = [r for r in here if r.library == "gmhf"]
            peers = [r for r in here if r.library == "torchdiffeq" and r.goal_peer]
            others = [r for r in here if r.library == "torchdiffeq"]
            if not (ours and peers):
                continue
            best, peer, other = (min(group, key=lambda r: r.median) for group in (ours, peers, others))
            ratio = peer.median / best.median
            out.append({"box": box, "batch": batch, "gmhf": f"{best.method}, {best.setting}",
                        "torchdiffeq": f"{peer.method}, {peer.setting}", "ratio": ratio, "goal": GOAL,
                        "met": ratio >= GOAL, "torchdiffeq_any": f"{other.method}, {other.setting}",
                        "ratio_any": other.median / best.median})
    return out


def ratio_table(compared: list[dict[str, Any]]) -> str:
    """gmhf best / torchdiffeq best, with the goal."""
    header = ["box", "B", "gmhf best", "torchdiffeq best (rk4, dopri5)", "ratio", "goal", "met?",
              "vs any torchdiffeq method"]
    cells = [[c["box"], f"{c['batch']:,}", c["gmhf"], c["torchdiffeq"], f"{c['ratio']:.2f}x", f">= {GOAL:g}x",
              "yes" if c["met"] else "NO", f"{c['ratio_any']:.2f}x ({c['torchdiffeq_any'].split(',')[0]})"]
             for c in compared]
    return text_table(header, cells, {1, 4})


def notes(choices: list[Choice], boxes_: list[Box], rows: list[Row], rates: dict[str, float],
          start_load: list[float] | None) -> list[str]:
    """The search trails, the reference check, the machine's rates and the noise."""
    lines = []
    for box in boxes_:
        lines.append(f"reference ({box.name}): gmhf rk4 step {REFERENCE_STEP:g} on all {len(box.theta):,} "
                     f"({box.reference_s:.1f} s); max |reference - scipy DOP853 rtol 1e-10| on {CHECK_SUBSET} "
                     f"trajectories = {box.check_error:.1e}" + ("" if box.check_error <= TOLERANCE / 100 else
                                                                " - TOO LOOSE to judge 1e-4"))
    for choice in choices:
        trail = ", ".join(f"{t['setting']} -> {t['max_error']:.1e} ({t['evaluations']:,} evals)"
                          for t in choice.tried)
        verdict = "chosen: " + choice.setting.label if choice.setting else f"NO rung reached {TOLERANCE:g}"
        lines.append(f"search {choice.method.name}, {choice.box}, B={SEARCH_BATCH:,}: {trail}; {verdict}")
    for row in rows:
        if row.error > TOLERANCE:
            lines.append(f"{row.method}, {row.box}, B={row.batch:,}: error {row.error:.1e} exceeds {TOLERANCE:g} "
                         f"at this B (the setting was chosen on the first {SEARCH_BATCH:,})")
    lines.append(f"rates, 1 thread, float64: addcmul {rates['fma_flops'] / 1e9:.2f} GFLOP/s (65,536 elements), "
                 f"cos {rates['cos_per_s'] / 1e6:.0f} M/s, matmul {rates['peak_flops'] / 1e9:.1f} GFLOP/s")
    lines.append(f"arithmetic limit = evals x B x ({FIELD_FLOPS} flops / addcmul rate + 1 cos / cos rate): the field "
                 "alone; 'x limit' = median / limit. 'x limit+sums' adds each method's own sums per evaluation at the "
                 f"addcmul rate (RK4 {RK4_SUMS:g}, Dormand-Prince {DOPRI5_SUMS:.0f}, Adams order {ADAMS_ORDER} "
                 f"{ADAMS_SUMS:g} flops: its history sums outweigh the field). Against the matmul peak instead: "
                 + ", ".join(f"{r.method} {r.box} B={r.batch:,} {r.median / r.peak_limit_s:.1f}x"
                             for r in rows if r.batch == max(BATCHES)))
    faulted = [f"{r.method} {r.box} {statistics.median(r.page_faults):,.0f}" for r in rows
               if r.batch == max(BATCHES) and r.page_faults]
    if faulted:
        lines.append(f"minor page faults per run, median, B={max(BATCHES):,} (a 26 MB output is 6,400 fresh pages): "
                     + ", ".join(faulted))
    lines.append(load_note(rows, start_load, NOISY))
    return lines

