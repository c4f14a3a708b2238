"""bench/cnode.py's report: the four tables and the notes."""

from __future__ import annotations

from typing import Any

from cnode_memory import MEMORY_BATCH, MEMORY_PATHS, MEMORY_STEP, MEMORY_WINDOWS  # bench/cnode_memory.py
from cnode_paths import AUTOGRAD
from cnode_problem import BATCHES, GOAL, GRAD_TOLERANCE, LOSS_TOLERANCE, NOISY, SPACING, STEPS, WINDOW
from cnode_timing import Row
from common import load_note, paired, text_table


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
    """Checks, the step-count finding, suggestions with their measured effect, memory, and noise."""
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
    return [*lines, *memory_notes(memory), load_note(rows, start_load, NOISY)]


def memory_notes(memory: list[dict[str, Any]]) -> list[str]:
    """How the peaks were measured, their growth with the window, the mmap row, and failed children."""
    lines = []
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
    return lines

