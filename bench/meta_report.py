"""bench/meta.py's report: the three tables and the notes."""

from __future__ import annotations

from typing import Any

from common import load_note, text_table  # bench/common.py (run as a script)
from meta_memory import MEMORY_GOAL
from meta_timing import AGREEMENT, Row

NOISY = 0.25


def timing_table(rows: list[Row]) -> str:
    """One line per (learner, B, contender)."""
    header = ["learner", "B", "contender", "grad rel diff", "ms/iter", "min ms", "iter/s", "spread", "runs"]
    cells = [[r.learner, f"{r.batch}", r.contender, "-" if r.contender == "gmhf" else
              f"{r.difference:.1e}" + ("" if r.agrees else " MISMATCH"), f"{r.median * 1e3:,.1f}",
              f"{min(r.seconds) * 1e3:,.1f}", f"{r.rate:,.2f}", f"{r.spread:.0%}",
              f"{len(r.seconds)}x{r.iterations}"] for r in rows]
    return text_table(header, cells, {1, 3, 4, 5, 6, 7, 8})


def ratio_table(compared: list[dict[str, Any]]) -> str:
    """Peer time / gmhf time, paired per round, with the issue's goals (second-order MAML)."""
    header = ["learner", "B", "peer", "x faster (paired)", "x (medians)", "goal", "met?"]
    cells = [[c["learner"], f"{c['batch']}", c["peer"], f"{c['ratio']:.1f}x", f"{c['ratio_of_medians']:.1f}x",
              "-" if c["goal"] is None else f">= {c['goal']:g}x",
              {None: "-", True: "yes", False: "NO"}[c["met"]]] for c in compared]
    return text_table(header, cells, {1, 3, 4})


def memory_table(rows: list[dict[str, Any]]) -> str:
    """Peak resident set added by one B = 512 meta-iteration."""
    header = ["learner", "contender", "tasks_per_chunk", "peak MiB", "x higher", "x learn2learn", "goal", "met?",
              "s (1 run)"]
    cells = []
    for r in rows:
        if "error" in r:
            cells.append([r["learner"], r["contender"], str(r["tasks_per_chunk"] or "-"), "failed", *[""] * 5])
            continue
        x = r.get("x_peer", {})
        met = r.get("met")
        cells.append([r["learner"], r["contender"], str(r["tasks_per_chunk"] or "-"),
                      f"{r['peak_added_bytes'] / 2**20:,.1f}",
                      f"{x['higher']:.1f}x" if "higher" in x else "-",
                      f"{x['learn2learn']:.1f}x" if "learn2learn" in x else "-",
                      f"<= {MEMORY_GOAL:g}x" if met is not None else "-",
                      ", ".join(f"{'yes' if ok else 'NO'} ({p})" for p, ok in met.items()) if met else "-",
                      f"{r['seconds_single_run']:.2f}"])
    return text_table(header, cells, {2, 3, 4, 5, 8})


def notes(rows: list[Row], compared: list[dict[str, Any]], memory: list[dict[str, Any]], missing: dict[str, str],
          start_load: list[float] | None) -> list[str]:
    """Missing peers, mismatches, goal summary, the memory method and the noise."""
    lines = [f"{peer} not measured: {why}" for peer, why in missing.items()]
    if "learn2learn" not in missing:
        lines.append("learn2learn: `learn2learn.algorithms.MAML` loaded without the package's __init__ (which "
                     "imports torchvision and gym; PyPI's torchvision is a CUDA build that cannot load against "
                     "CPU torch): the wrapper's own code is unchanged")
    lines += [f"MISMATCH {r.contender} {r.learner} B={r.batch}: meta-gradient differs from gmhf's by {r.difference:.1e} "
              f"(> {AGREEMENT:g}); its timing compares different computations" for r in rows if not r.agrees]
    if all(r.agrees for r in rows):
        worst = max((r.difference for r in rows), default=0.0)
        lines.append(f"every peer's meta-gradient matches gmhf's on the timed batch (worst {worst:.1e} <= {AGREEMENT:g})")
    for c in compared:
        if c["goal"] is not None:
            lines.append(f"goal MAML (2nd order) B={c['batch']} vs {c['peer']}: {c['ratio']:.1f}x, need "
                         f">= {c['goal']:g}x: {'met' if c['met'] else 'NOT met'}")
    failed = [m for m in memory if "error" in m]
    lines += [f"memory child {m['learner']}/{m['contender']}/{m['tasks_per_chunk']} failed: {m['error']}"
              for m in failed]
    resolution = max((m.get("resolution_bytes", 0) for m in memory), default=0)
    lines.append(f"memory: VmHWM reset by /proc/self/clear_refs ({'yes' if all(m.get('peak_was_reset') for m in memory if 'error' not in m) else 'NOT everywhere'}); "
                 f"resolution (peak - resident set before the run) at most {resolution / 2**20:.2f} MiB")
    inherited = [m for m in memory if "error" not in m and m["ru_maxrss_added_bytes"] < m["peak_added_bytes"] / 2]
    if inherited:
        lines.append(f"memory: ru_maxrss - baseline under-reads in {len(inherited)} of {len(memory)} children (the "
                     "child inherits this process's high-water mark across fork/exec), hence VmHWM after a reset")
    lines.append("memory: a looped peer holds one task's graph at a time; gmhf holds tasks_per_chunk of them (about "
                 "the same bytes per task), so its peak scales with the chunk; 's (1 run)' is that one run's time in the child, indicative only")
    lines.append(load_note(rows, start_load, NOISY))
    return lines

