"""bench/steer.py's summaries: outcomes grouped into the grid, over-trust and panel rows, the checks and notes."""

from __future__ import annotations

import os
import statistics
from typing import Any

from steer_floor import answers_floor
from steer_report import reach_stats, summarise, worse
from steer_run import DRAWS, SPECS, TARGET, Outcome

PENDING_CLAIMS = "pending: SimulatedExpert takes no claims= yet"


def _select(outcomes: list[Outcome], section: str, spec: str, agent: str,
            accuracy: tuple[float, ...] | None = None) -> list[Outcome]:
    return sorted((o for o in outcomes if o.case.section == section and o.case.spec == spec and o.case.agent == agent
                   and (accuracy is None or o.case.accuracy == accuracy)), key=lambda o: o.case.seed)


def grid_rows(outcomes: list[Outcome], context: dict[str, Any], reliabilities: tuple[float, ...]) -> list[dict[str, Any]]:
    """One row per (spec, agent, p); a skipped agent gets a row saying why."""
    rows = []
    for spec in SPECS:
        for agent, why in context["why"].items():
            for p in reliabilities:
                head = {"spec": spec, "agent": agent, "p": p}
                chosen = _select(outcomes, "grid", spec, agent, (p,))
                if why is not None or not chosen:
                    rows.append(head | {"skipped": why or "not run"})
                    continue
                baseline = context["baselines"][spec]
                rows.append(head | summarise(chosen, context["cap"], baseline, context["floors"][spec]["bits"], p)
                            | {"spec_only_mmd": baseline["mmd"], "spec_only_in_support": baseline["in_support"]})
    return rows


def _estimates(chosen: list[Outcome]) -> str | None:
    """The loop's final reliability estimate of each expert over the seeds, and the weight it used, as one cell."""
    keys = list(dict.fromkeys(k for o in chosen for k in (o.final.get("reliability") or {})))
    if not keys:
        return None
    parts = []
    for key in keys:
        values = [o.final["reliability"][key] for o in chosen if key in (o.final.get("reliability") or {})]
        used = [o.final["weights"][key] for o in chosen if key in (o.final.get("weights") or {})]
        parts.append(f"{key.split(':', 1)[1].split(',')[0]}: est {statistics.median(values):.2f} "
                     f"({min(values):.2f}-{max(values):.2f})"
                     + (f", used {statistics.median(used):.2f} ({min(used):.2f}-{max(used):.2f})" if used else ""))
    return "; ".join(parts)


def over_trust_rows(outcomes: list[Outcome], context: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (spec, agent): π after the last checkpoint of random answers stated at p = 0.9, against spec-only."""
    rows = []
    for spec in SPECS:
        baseline = context["baselines"][spec]
        for agent, why in context["why"].items():
            chosen = [o for o in _select(outcomes, "over-trust", spec, agent) if o.checkpoints]
            head = {"spec": spec, "agent": agent}
            if why is not None or not context["claims"] or not chosen:
                rows.append(head | {"skipped": why or ("not run" if context["claims"] else PENDING_CLAIMS)})
                continue
            rows.append(head | _over_trust(chosen, baseline))
    return rows


def _over_trust(chosen: list[Outcome], baseline: dict[str, Any]) -> dict[str, Any]:
    end = max(max(o.checkpoints) for o in chosen)
    ends = [o.checkpoints[end] for o in chosen if end in o.checkpoints]
    flags = [worse(o, end, baseline) for o in chosen]
    return {"questions": end, "seeds": len(ends), "in_support": statistics.median(e["in_support"] for e in ends),
            "mmd": statistics.median(e["mmd"] for e in ends), "worst_mmd": max(e["mmd"] for e in ends),
            "no_worse": sum(f is False for f in flags),
            "worse_seeds": [o.case.seed for o, f in zip(chosen, flags, strict=True) if f],
            "spec_only_mmd": baseline["mmd"], "spec_only_in_support": baseline["in_support"],
            "tolerance": baseline["tolerance"], "reliability": _estimates(chosen),
            "per_seed": [{"seed": o.case.seed, **o.checkpoints.get(end, {})} for o in chosen]}


def panel_rows(outcomes: list[Outcome], context: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (spec, agent, panel mode): questions to the target with the three experts vs the 0.9 expert alone."""
    rows = []
    for spec in SPECS:
        for agent, why in context["why"].items():
            for mode in ("split", "shared"):
                panel = [o for o in _select(outcomes, "panel", spec, agent) if o.case.panel == mode]
                alone = _select(outcomes, "grid", spec, agent, (0.9,))
                head = {"spec": spec, "agent": agent, "mode": mode}
                if why is not None or not panel or not alone:
                    rows.append(head | {"skipped": why or "not run"})
                    continue
                rows.append(head | _panel_against(panel, alone, context["cap"]))
    return rows


def _panel_against(panel: list[Outcome], alone: list[Outcome], cap: int) -> dict[str, Any]:
    by_seed = {o.case.seed: o for o in alone if o.error is None}
    pairs = [(o.reached or cap + 1, by_seed[o.case.seed].reached or cap + 1) for o in panel
             if o.error is None and o.case.seed in by_seed]
    p, a = reach_stats(panel, cap), reach_stats(alone, cap)
    if p["median"] is None or a["median"] is None or (p["median_censored"] and a["median_censored"]):
        met = None  # both medians stop at the cap: the comparison says nothing
    else:
        met = not p["median_censored"] and p["median"] <= a["median"]
    return {"panel": p, "alone": a, "paired": len(pairs), "met": met,
            "not_more": sum(x <= y for x, y in pairs), "reliability": _estimates(panel)}


def _row(rows: list[dict[str, Any]], **keys: Any) -> dict[str, Any] | None:
    """The row with these keys that has figures (not skipped, not every seed failed)."""
    return next((r for r in rows if all(r.get(k) == v for k, v in keys.items()) and not r.get("skipped")
                 and r.get("median", 0) is not None and r.get("seeds", 1)
                 and (r.get("met", True) is not None)), None)


def acceptance(grid: list[dict[str, Any]], trust: list[dict[str, Any]], panel: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 14's acceptance points for the posterior agent, each with the figure measured."""
    checks = []
    row = _row(grid, spec="vague", agent="posterior", p=0.9)
    checks.append({"point": "vague, posterior, p=0.9: median answers to 90 % <= 100",
                   "measured": f"{'>' if row and row['median_censored'] else ''}{row['median']:g}" if row else "-",
                   "met": None if row is None else (row["median"] <= 100 and not row["median_censored"])})
    for p in (1.0, 0.9, 0.7):
        row = _row(grid, spec="vague", agent="posterior", p=p)
        if row is None or row["ratio"] is None:
            checks.append({"point": f"vague, posterior, p={p:g}: median <= 2x the information floor",
                           "measured": "-", "met": None})
            continue
        censored, ratio = row["median_censored"], row["ratio"]
        # a censored median is at least the cap: the ratio is a lower bound, decisive only above 2
        met = (ratio <= 2) if not censored else (False if ratio > 2 else None)
        checks.append({"point": f"vague, posterior, p={p:g}: median <= 2x the information floor",
                       "measured": f"{'>' if censored else ''}{ratio:.2f}x ({row['median']:g} / {row['floor']:.1f})",
                       "met": met})
    for spec in SPECS:
        row = _row(trust, spec=spec, agent="posterior")
        checks.append({"point": f"{spec}, posterior, over-trust (random answers stated 0.9): π ends no worse than "
                                "spec-only in 10 of 10 seeds",
                       "measured": f"{row['no_worse']} of {row['seeds']} no worse (MMD²)" if row else "-",
                       "met": None if row is None else row["no_worse"] == row["seeds"] >= 10})
        row = _row(grid, spec=spec, agent="posterior", p=0.7)
        checks.append({"point": f"{spec}, posterior, p=0.7, after 500 answers: worse than spec-only in <= 1 of 10",
                       "measured": f"worse in {row['worse_500']} of {row['measured_500']}"
                       if row and row["worse_500"] is not None else "-",
                       "met": None if not row or row["worse_500"] is None else
                       row["worse_500"] <= 1 and row["measured_500"] >= 10})
        row = _row(panel, spec=spec, agent="posterior", mode="split")
        checks.append({"point": f"{spec}, posterior: experts 0.9+0.7+0.5 (split, the default) need no more answers "
                                "per expert than 0.9 alone (medians)",
                       "measured": f"{row['panel']['median']:g} vs {row['alone']['median']:g}" if row else "-",
                       "met": None if row is None else row["met"]})
    return checks


def notes(context: dict[str, Any], outcomes: list[Outcome], seconds: float, start_load: Any) -> list[str]:
    """How each figure was made, what was skipped, errors, the machine's load."""
    lines = [f"{agent} not run: {why}" for agent, why in context["why"].items() if why]
    if not context["claims"]:
        lines.append(f"over-trust {PENDING_CLAIMS}")
    if not context["estimates"]:
        lines.append("the loop reports no online reliability estimate (RoundReport.reliability): answers are "
                     "weighted by the reliability each expert states")
    lines.append(f"reached = the first round after which {TARGET:.0%} of {DRAWS} draws of π lie in the truth's "
                 "support; 'median'/'p90' count questions (with one expert, = answers); a seed not reached by the "
                 "cap counts as the cap, and '>' marks a figure such a seed enters")
    for spec, f in context["floors"].items():
        b = context["baselines"][spec]
        lines.append(f"{spec}: floor bits {f['bits']:.1f} (eps {f['epsilon']:.4f}; the lead's literal 2d-bound "
                     f"count {f['literal_bits']:.1f} bits, eps {f['literal_epsilon']:.4f}); floor answers "
                     + ", ".join(f"p={p:g} {answers_floor(f['bits'], p):.1f}" for p in (1.0, 0.9, 0.7))
                     + f"; q_H puts {f['q_h_in_box']:.1%} in the truth's support, so one point inside needs about "
                     f"{f['point_bits']:.1f} bits (a π collapsed onto a point could beat the floor)")
        lines.append(f"{spec}: spec-only MMD² {b['mmd']:.4f} (sd {b['mmd_sd']:.4f} over {len(b['draws'])} q_H draws), "
                     f"in-support {b['in_support']:.3f}; q_H vs q_H MMD² at most {b['self_mmd_max']:.4f}; worse = "
                     f"MMD² > spec-only + {b['tolerance']:.4f} (the larger of that and 2 sd)")
        if f["unflagged_truth_factors"]:
            lines.append(f"{spec}: the truth shifts {f['unflagged_truth_factors']}, which the spec does not flag")
    errors = [o for o in outcomes if o.error]
    lines += [f"ERROR {o.case.label}: {o.error}" for o in errors]
    end_load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    lines.append(f"load average {start_load} at start, {end_load} at end (2 cores shared with other work: "
                 f"seconds are indicative); {sum(o.seconds for o in outcomes):.0f} s of runs in all, kept ones included")
    return lines
