"""How fast the batched meta-learners are: sinusoid meta-iterations/s beside the looped peers, and memory.

Run with `.venv/bin/python bench/meta.py` (the peers come from `bash bench/peers/install.sh`; without
them only gmhf's rows are measured). It prints three tables (time per meta-iteration, the ratios,
peak memory) and notes, and writes `bench/results/meta.json`.

Workload (issue 4): sinusoid regression, amplitude U(0.1, 5), phase U(0, π), x U(-5, 5), 10 support
+ 10 query points per task, MLP 1-40-40-1 (`mlp(1, 1, (40, 40))`), float32, 5 inner SGD steps at
lr 0.01, mse loss. One meta-iteration = zero the grads, fill `.grad` with the meta-gradient of B
tasks, take one Adam step. Learners: MAML (second order), FOMAML, ANIL (head only, second order),
Reptile (`.grad` = θ - mean φ). Contenders, each on its own copy of the same initial weights:

* gmhf: `MAML(...).backward(batch)` etc., all tasks at once (`tasks_per_chunk=None`);
* higher, looped over tasks: `higher.innerloop_ctx(model, SGD, copy_initial_weights=False,
  track_higher_grads=second_order)`, each task's query loss / B backpropagated inside the loop.
  First order: the query gradient at the (detached) fast weights is added to `.grad`; ANIL: the
  context wraps the head, fed the body's features; Reptile: θ - φ of the fast weights;
* learn2learn, looped: `l2l.algorithms.MAML(model, lr, first_order=...)`, `clone()`, `adapt()`;
  ANIL: l2l's MAML on the head with the shared body (as l2l's ANIL examples do); Reptile: a
  `copy.deepcopy` of the model stepped by `torch.optim.SGD` (l2l has no Reptile wrapper).

Before anything is timed, each peer's meta-gradient is compared with gmhf's on the same batch and
weights, at every B (that run is also the warm-up): max over parameter tensors of
max|g_peer - g_gmhf| / max|g_gmhf| must be at most 1e-4, else the row is flagged MISMATCH.

Timing: per (learner, B), the contenders run round-robin, one timed run each per round (a run
repeats the meta-iteration for about RUN_TARGET_S, its count fixed by one untimed iteration; the
order rotates each round), so a load spike on the shared machine hits all of them alike. Figures are medians over rounds; ratios are medians of per-round
ratios (paired runs are seconds apart), which a slow phase of the machine moves far less.

Memory, B = 512: one fresh subprocess per (learner, contender, tasks_per_chunk). It builds the model
and batch, runs a 2-task meta-iteration (lazy initialisation), hands glibc's free heap back
(`malloc_trim`, so blocks the warm-up freed cannot hide what the run needs), resets the resident-set
high-water mark (`5` into /proc/self/clear_refs), reads the resident set, runs one meta-iteration;
peak = VmHWM after - the resident set before. Not ru_maxrss alone: Linux carries the parent's high-water mark into a child
across fork/exec, so a child of a big process would read the parent's size (ru_maxrss - baseline
is kept in the JSON for reference).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import torch
from common import ROOT, footer, machine_info, write_results  # bench/common.py (run as a script)
from meta_memory import CHUNKS, MEMORY_BATCH, MEMORY_GOAL, memory_child, memory_rows
from meta_peers import PEERS, available_peers, version
from meta_report import memory_table, notes, ratio_table, timing_table
from meta_timing import AGREEMENT, BATCHES, GOALS, MAX_ITERATIONS, ROUNDS, RUN_TARGET_S, Row, ratios, time_config
from meta_workload import HIDDEN, INNER_LR, INNER_STEPS, LEARNERS, OUTER_LR, QUERY, SEED, SUPPORT

RESULTS = ROOT / "bench" / "results" / "meta.json"


def write_json(machine: dict[str, Any], peers: dict[str, Any], rows: list[Row], compared: list[dict[str, Any]],
               memory: list[dict[str, Any]], lines: list[str]) -> None:
    """Store the results for comparison across commits (bench/results/ is not tracked)."""
    document = {
        "benchmark": "meta", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
        "peers": peers,
        "settings": {"seed": SEED, "model": f"mlp 1-{'-'.join(map(str, HIDDEN))}-1", "dtype": "float32",
                     "inner_lr": INNER_LR, "inner_steps": INNER_STEPS, "outer": f"Adam lr {OUTER_LR:g}",
                     "support": SUPPORT, "query": QUERY, "batches": BATCHES,
                     "rounds": {str(b): r for b, r in ROUNDS.items()}, "run_target_s": RUN_TARGET_S,
                     "max_iterations": MAX_ITERATIONS,
                     "agreement": AGREEMENT, "goals_maml": {str(b): g for b, g in GOALS.items()},
                     "memory_batch": MEMORY_BATCH, "chunks": CHUNKS, "memory_goal": MEMORY_GOAL,
                     "statistic": "median; ratios paired per round"},
        "rows": [r.to_json() for r in rows], "comparison": compared, "memory": memory, "notes": lines,
    }
    write_results(RESULTS, document)


def main() -> int:
    """Check, time, measure memory, print the tables and notes, write the JSON; exit 0 even when goals are missed."""
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    machine = machine_info()
    started = time.perf_counter()
    found, missing = available_peers()
    peers = {p: {"version": version(p), "measured": p in found, "why_not": missing.get(p)} for p in PEERS}
    rows = [row for learner in LEARNERS for b in BATCHES for row in time_config(learner, b, ["gmhf", *found])]
    compared = ratios(rows)
    memory = memory_rows(found)
    lines = notes(rows, compared, memory, missing, machine["load_average"])
    print(timing_table(rows))
    print()
    if compared:
        print(ratio_table(compared))
        print()
    print(memory_table(memory))
    print()
    for line in lines:
        print(f"* {line}")
    print("\n" + footer(machine, time.perf_counter() - started, RESULTS))
    write_json(machine, peers, rows, compared, memory, lines)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory-child"]:
        learner_, contender_, chunk_ = sys.argv[2:5]
        print(json.dumps(memory_child(learner_, contender_, None if chunk_ == "None" else int(chunk_))))
        sys.exit(0)
    sys.exit(main())
