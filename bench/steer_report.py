"""bench/steer.py's report: per-case summaries, the tables and the issue's acceptance checks."""

from __future__ import annotations

import math
import statistics
from typing import Any

from common import text_table  # bench/common.py (run as a script)
from steer_floor import answers_floor
from steer_run import Outcome

#: Questions after which π's MMD is reported (those within the cap).
CHECKPOINTS = (100, 200, 500)


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def reach_stats(outcomes: list[Outcome], cap: int) -> dict[str, Any]:
    """Median and 90th percentile of questions to the target; a seed not reached counts as the cap, marked '>'."""
    ok = [o for o in outcomes if o.error is None]
    values = [float(o.reached if o.reached is not None else cap) for o in ok]
    reached = sorted(o.reached for o in ok if o.reached is not None)
    if not values:
        return {"seeds": 0, "reached": 0, "median": None, "p90": None, "median_censored": False, "p90_censored": False}
    out: dict[str, Any] = {"seeds": len(values), "reached": len(reached), "errors": len(outcomes) - len(ok)}
    for key, q in (("median", 0.5), ("p90", 0.9)):
        out[key] = quantile(values, q)
        out[f"{key}_censored"] = math.ceil(q * (len(values) - 1)) > len(reached) - 1  # a capped seed enters it
    out["per_seed"] = [o.reached for o in ok]
    return out


def worse(outcome: Outcome, at: int, baseline: dict[str, Any]) -> bool | None:
    """π's MMD² at `at` questions above spec-only's median by more than the tolerance (None: not measured)."""
    point = outcome.checkpoints.get(at)
    return None if point is None else point["mmd"] > baseline["mmd"] + baseline["tolerance"]


def summarise(outcomes: list[Outcome], cap: int, baseline: dict[str, Any], bits: float | None,
              p: float) -> dict[str, Any]:
    """One grid row: reach statistics, the floor and ratio, MMD and in-support at each checkpoint, worse counts."""
    stats = reach_stats(outcomes, cap)
    floor = answers_floor(bits, p) if bits is not None else None
    stats["floor"] = floor
    stats["ratio"] = stats["median"] / floor if floor and stats["median"] is not None and math.isfinite(floor) else None
    for at in CHECKPOINTS:
        points = [o.checkpoints[at] for o in outcomes if at in o.checkpoints]
        flags = [w for o in outcomes if (w := worse(o, at, baseline)) is not None]
        stats[f"mmd_{at}"] = statistics.median(x["mmd"] for x in points) if points else None
        stats[f"in_support_{at}"] = statistics.median(x["in_support"] for x in points) if points else None
        stats[f"worse_{at}"] = sum(flags) if flags else None
        stats[f"measured_{at}"] = len(flags)
    stats["seconds"] = sum(o.seconds for o in outcomes)
    return stats


def mark(value: float | None, censored: bool = False, digits: int = 0) -> str:
    """A figure for the table, '>' where a seed that never reached the target (counted at the cap) enters it."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return (">" if censored else "") + f"{value:.{digits}f}"


def grid_table(rows: list[dict[str, Any]]) -> str:
    """The issue's main table: answers to 90 % in support, the floor, the ratio, MMD² at 100/200/500."""
    header = ["spec", "agent", "p", "reached", "median", "p90", "floor", "x floor", "MMD²@100", "MMD²@200",
              "MMD²@500", "spec-only", "worse@500", "in-supp@500", "s"]
    cells = []
    for r in rows:
        if r.get("skipped"):
            cells.append([r["spec"], r["agent"], f"{r['p']:g}", f"skipped: {r['skipped']}", *[""] * 11])
            continue
        ratio = r["ratio"]
        cells.append([r["spec"], r["agent"], f"{r['p']:g}", f"{r['reached']}/{r['seeds']}",
                      mark(r["median"], r["median_censored"]), mark(r["p90"], r["p90_censored"]),
                      mark(r["floor"]), mark(ratio, r["median_censored"], 2) + ("x" if ratio else ""),
                      *[mark(r[f"mmd_{at}"], digits=4) for at in CHECKPOINTS], f"{r['spec_only_mmd']:.4f}",
                      f"{r['worse_500']}/{r['measured_500']}" if r["worse_500"] is not None else "-",
                      mark(r["in_support_500"], digits=3), f"{r['seconds']:.0f}"])
    return text_table(header, cells, {2, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14})


def floor_table(floors: dict[str, dict[str, Any]], reliabilities: list[float]) -> str:
    """How each spec's floor is made up: R and w per factor, ε, bits, answers at each p."""
    header = ["spec", "factor: spec range R -> truth in spec w (interior bounds)", "eps", "bits",
              *[f"floor p={p:g}" for p in reliabilities], "lead's literal bits", "1-point bits"]
    cells = []
    for spec, f in floors.items():
        parts = "; ".join(f"{x['factor']}: [{x['spec'][0]:g}, {x['spec'][1]:g}] R={x['R']:.2f} -> "
                          f"[{x['truth_in_spec'][0]:g}, {x['truth_in_spec'][1]:g}] w={x['w']:.2f} "
                          f"({x['interior_bounds']})" for x in f["factors"])
        cells.append([spec, parts, f"{f['epsilon']:.4f}", f"{f['bits']:.1f}",
                      *[mark(answers_floor(f["bits"], p), digits=1) for p in reliabilities],
                      f"{f['literal_bits']:.1f}", mark(f["point_bits"], digits=1)])
    return text_table(header, cells, {2, 3, 4, 5, 6, 7, 8})


def over_trust_table(rows: list[dict[str, Any]]) -> str:
    """Random answers stated at p = 0.9: where π ends against spec-only."""
    header = ["spec", "agent", "seeds", "in-supp end (spec-only)", "MMD² end (spec-only, tol)", "worst MMD²",
              "no worse", "est. reliability"]
    cells = []
    for r in rows:
        if r.get("skipped"):
            cells.append([r["spec"], r["agent"], f"skipped: {r['skipped']}", *[""] * 5])
            continue
        cells.append([r["spec"], r["agent"], str(r["seeds"]),
                      f"{mark(r['in_support'], digits=3)} ({r['spec_only_in_support']:.3f})",
                      f"{mark(r['mmd'], digits=4)} ({r['spec_only_mmd']:.4f}, {r['tolerance']:.4f})",
                      mark(r["worst_mmd"], digits=4), f"{r['no_worse']}/{r['seeds']}",
                      r["reliability"] or "not reported"])
    return text_table(header, cells, {2})


def panel_table(rows: list[dict[str, Any]]) -> str:
    """Three experts (0.9, 0.7, 0.5), split or shared, vs the 0.9 expert alone: questions per expert to 90 %."""
    header = ["spec", "agent", "panel", "panel reached", "panel median", "panel p90", "0.9 alone median", "0.9 alone p90",
              "seeds panel <= alone", "met (median)"]
    cells = []
    for r in rows:
        if r.get("skipped"):
            cells.append([r["spec"], r["agent"], r["mode"], f"skipped: {r['skipped']}", *[""] * 6])
            continue
        p, a = r["panel"], r["alone"]
        cells.append([r["spec"], r["agent"], r["mode"], f"{p['reached']}/{p['seeds']}", mark(p["median"], p["median_censored"]),
                      mark(p["p90"], p["p90_censored"]), mark(a["median"], a["median_censored"]),
                      mark(a["p90"], a["p90_censored"]), f"{r['not_more']}/{r['paired']}",
                      {None: "-", True: "yes", False: "NO"}[r["met"]]])
    return text_table(header, cells, {4, 5, 6, 7})


def acceptance_table(checks: list[dict[str, Any]]) -> str:
    """The issue's acceptance points with what was measured."""
    header = ["acceptance point", "measured", "met?"]
    cells = [[c["point"], c["measured"], {None: "pending", True: "yes", False: "NO"}[c["met"]]] for c in checks]
    return text_table(header, cells, set())
