"""How fast steering agents learn from simulated experts: answers to 90 % in the truth's support, vs a floor.

Run with `.venv/bin/python bench/steer.py` (`--quick` for a smoke run; `--seeds`, `--max-answers`,
`--sections`). It prints the tables of issue 14 item 5 and writes `bench/results/steer.json`.

What is measured. For the moderately vague (`examples/specs/duffing.guide`) and the vague
(`duffing_vague.guide`) Duffing specs, the `posterior` and `reinforce` agents are driven through
the real `FeedbackLoop` (rounds of 5 questions, a SQLite feedback store, the simulator as generator)
by `SimulatedExpert`s that know the shipped truth (`gmhf/domains/duffing/truth.guide`) and answer
right with probability p ∈ {1, 0.9, 0.7}. After each round, until π first has 90 % in the truth's
support, 2,048 draws of π (a fixed stream per seed and round) give the in-support share; the
questions asked by then are the row's figure (median and 90th percentile over the seeds; a seed
that never gets there within `--max-answers` counts as that cap, marked '>'). After 100, 200 and
500 questions the same draws give MMD²(π, truth): `gmhf.core.metrics.mmd` on columns standardised
by the pooled mean and std of the two samples, as the engine measures it, against one fixed sample
of 2,048 truth draws. Spec-only is q_H measured the same way (median over as many draws as seeds);
a seed is *worse than spec-only* when its MMD² exceeds spec-only's by more than the tolerance in
`steer_floor.spec_only` (the estimator's own noise at this sample size).

The information floor (`steer_floor`) is the fewest answers that could locate the truth's box
well enough for 90 % in support; each row gives its median's ratio to it. The over-trust case is an
expert answering at random (p = 0.5) who states p = 0.9 (`SimulatedExpert(truth, 0.5, claims=0.9)`),
500 questions; the panel is three experts (0.9, 0.7, 0.5) against the 0.9 expert alone (the grid's
p = 0.9 runs, same seeds), counting questions per expert: split (the loop's default: each expert
answers its own 5 questions a round, chosen together for the three reliabilities) and shared
(every expert answers the same 5). Runs go to two worker processes, one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from datetime import UTC, datetime

import torch
from common import ROOT, machine_info, write_results  # bench/common.py (run as a script)
from steer_floor import floor, spec_only
from steer_report import (
    CHECKPOINTS,
    acceptance_table,
    floor_table,
    grid_table,
    over_trust_table,
    panel_table,
)
from steer_run import (
    DRAWS,
    PER_ROUND,
    SPECS,
    TARGET,
    TRUTH,
    Case,
    Outcome,
    available_agents,
    claims_supported,
    reliability_reported,
    run_case,
    truth_sample,
)
from steer_summary import acceptance, grid_rows, notes, over_trust_rows, panel_rows

import gmhf

RESULTS = ROOT / "bench" / "results" / "steer.json"
RELIABILITIES = (1.0, 0.9, 0.7)
PANEL = (0.9, 0.7, 0.5)
PANEL_MODES = ("split", "shared")
SECTIONS = ("grid", "over-trust", "panel")


def cases(args: argparse.Namespace, agents: list[str]) -> list[Case]:
    """Every run of the chosen sections, the longest first (p = 0.7 on the vague spec) so the workers end together."""
    points = tuple(c for c in CHECKPOINTS if c <= args.max_answers)
    out = []
    for spec in SPECS:
        for agent in agents:
            for seed in range(args.seeds):
                if "grid" in args.sections:
                    out += [Case("grid", spec, agent, (p,), (None,), seed, args.max_answers, points, True)
                            for p in RELIABILITIES]
                if "over-trust" in args.sections and claims_supported():
                    cap = max(points, default=args.max_answers)
                    out.append(Case("over-trust", spec, agent, (0.5,), (0.9,), seed, cap, points, False))
                if "panel" in args.sections:
                    out += [Case("panel", spec, agent, PANEL, (None,) * len(PANEL), seed, args.max_answers, (), True,
                                 mode) for mode in PANEL_MODES]
    cost = {0.7: 3, 0.9: 2}
    return sorted(out, key=lambda c: -(cost.get(min(c.accuracy), 1) * (2 if c.spec == "vague" else 1)
                                       + (len(c.accuracy) > 1)))


def run_all(todo: list[Case], processes: int) -> list[Outcome]:
    """The runs on `processes` workers, a progress line as each ends."""
    outcomes = []
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for i, outcome in enumerate(pool.imap_unordered(run_case, todo), 1):
            outcomes.append(outcome)
            what = (f"90 % at {outcome.reached} questions" if outcome.reached is not None else
                    "90 % not reached" if outcome.case.track else "done")
            end = outcome.checkpoints.get(max(outcome.checkpoints, default=0), {})
            print(f"[{i}/{len(todo)} {time.perf_counter() - started:6.0f} s] {outcome.case.label}: "
                  + (f"ERROR {outcome.error}" if outcome.error else what)
                  + (f"; MMD² {end['mmd']:.4f} at {max(outcome.checkpoints)}" if end else "")
                  + f" ({outcome.seconds:.0f} s)", flush=True)
    return outcomes


def previous(args: argparse.Namespace, agents: list[str]) -> list[Outcome]:
    """Outcomes of the (section, agent) pairs not run now, from the last results file (`--sections` and
    `--agents` rerun part of the bench). Records of runs with control questions (a feature since removed from
    the loop; their case has `controls` true) are dropped, and the key is ignored on the others. A panel
    recorded before panels could be split was shared."""
    if not RESULTS.exists():
        return []
    document = json.loads(RESULTS.read_text(encoding="utf-8"))
    settings = document.get("settings", {})
    if (settings.get("seeds"), settings.get("max_answers")) != (args.seeds, args.max_answers):
        print(f"{RESULTS.relative_to(ROOT)} was run with other --seeds/--max-answers: nothing kept from it")
        return []
    kept = []
    for raw in document.get("outcomes", []):
        case = raw["case"]
        if case["section"] in args.sections and case["agent"] in agents or case.pop("controls", False):
            continue
        case = Case(**{"panel": "shared", **case, "accuracy": tuple(case["accuracy"]), "claims": tuple(case["claims"]),
                       "checkpoints": tuple(case["checkpoints"])})
        kept.append(Outcome(case, raw["reached"], {int(k): v for k, v in raw["checkpoints"].items()}, raw["final"],
                            [tuple(x) for x in raw["curve"]], [tuple(x) for x in raw.get("screens", [])],
                            raw["seconds"], raw["error"]))
    return kept


def parse(argv: list[str]) -> argparse.Namespace:
    """The bench's size: seeds, cap, sections, workers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per case (the issue asks for >= 10)")
    parser.add_argument("--max-answers", type=int, default=1000, help="questions after which a run stops unreached")
    parser.add_argument("--quick", action="store_true", help="2 seeds, at most 200 questions: a smoke run")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated subset of grid,over-trust,panel; the others are kept from the last "
                             "results file")
    parser.add_argument("--agents", default="posterior,reinforce",
                        help="comma-separated agents to run; the others are kept from the last results file")
    parser.add_argument("--processes", type=int, default=2, choices=(1, 2), help="worker processes (at most 2)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.max_answers = 2, 200
    args.sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    args.agents = tuple(a.strip() for a in args.agents.split(",") if a.strip())
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown or args.seeds < 1 or args.max_answers < PER_ROUND:
        parser.error(f"bad --sections {unknown}" if unknown else "--seeds >= 1 and --max-answers >= 5")
    return args


def main(argv: list[str]) -> int:
    """Run, summarise, print the tables and notes, write the JSON; exit 0 whether or not the points are met."""
    # Long: the bench read top to bottom: settings, the runs with progress, then each table in turn.
    torch.set_num_threads(1)
    args = parse(argv)
    machine = machine_info(peers=())
    started = time.perf_counter()
    why = available_agents()
    agents = [a for a, reason in why.items() if reason is None and a in args.agents]
    todo = cases(args, agents)
    print(f"steer bench: {len(todo)} runs, {args.seeds} seeds, cap {args.max_answers} questions, agents "
          f"{', '.join(agents)}; sections {', '.join(args.sections)}", flush=True)
    kept = previous(args, agents)
    earlier = json.loads(RESULTS.read_text(encoding="utf-8")) if kept else {}
    kept_from = [*earlier.get("kept_from", []), {k: earlier.get(k) for k in ("date",)} | {
        "git_commit": earlier.get("machine", {}).get("git_commit"), "git_dirty": earlier.get("machine", {}).get(
            "git_dirty"), "agents_run": earlier.get("settings", {}).get("agents_run")}] if kept else []
    outcomes = kept + run_all(todo, args.processes)
    truth = gmhf.load(ROOT / TRUTH)
    reference = truth_sample(truth)
    floors, baselines = {}, {}
    for name, path in SPECS.items():
        spec = gmhf.load(ROOT / path)
        floors[name] = floor(spec, truth)
        baselines[name] = spec_only(spec, truth, reference, args.seeds)
    context = {"why": why, "floors": floors, "baselines": baselines, "cap": args.max_answers,
               "claims": claims_supported(), "estimates": reliability_reported()}
    grid = grid_rows(outcomes, context, RELIABILITIES)
    trust = over_trust_rows(outcomes, context)
    panel = panel_rows(outcomes, context)
    checks = acceptance(grid, trust, panel)
    seconds = time.perf_counter() - started
    lines = notes(context, outcomes, seconds, machine["load_average"])
    lines += [f"panel ({r['mode']}), {r['spec']}, {r['agent']}: the loop's final reliability estimates {r['reliability']}"
              for r in panel if r.get("reliability")]
    for table in (grid_table(grid), floor_table(floors, [*RELIABILITIES]), over_trust_table(trust),
                  panel_table(panel), acceptance_table(checks)):
        print("\n" + table)
    print()
    for line in lines:
        print(f"* {line}")
    print(f"\ntook {seconds:.0f} s on {machine['cpus']} CPUs ({args.processes} workers); results in "
          f"{RESULTS.relative_to(ROOT)}")
    write_results(RESULTS, {
        "benchmark": "steer", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
        "settings": {"seeds": args.seeds, "max_answers": args.max_answers, "quick": args.quick,
                     "sections": list(args.sections), "agents_run": list(agents), "processes": args.processes,
                     "draws": DRAWS,
                     "per_round": PER_ROUND, "target": TARGET, "checkpoints": list(CHECKPOINTS),
                     "reliabilities": list(RELIABILITIES), "panel": list(PANEL), "specs": SPECS, "truth": TRUTH},
        "kept_from": kept_from, "agents": why, "floors": floors, "spec_only": baselines, "grid": grid, "over_trust": trust,
        "panel": panel, "acceptance": checks, "notes": lines, "seconds": seconds,
        "outcomes": [o.to_json() for o in outcomes]})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
