"""How fast (and how lean) a cNODE training step is: gmhf's RK4 path beside torchdiffeq, same model, same steps.

Run with `.venv/bin/python bench/cnode.py` (torchdiffeq comes with the `bench` extra; without it only
the gmhf rows are measured). It prints four tables (time per training step, the ratios, peak memory
against the window, cProfile of gmhf's step), notes, and writes `bench/results/cnode.json`.

What is timed: one training step's forward + backward (zero grads, integrate a window, loss, backward)
of ONE `ConditionalNODE` (Duffing, hidden 64, depth 2, float32, weights after a short warm fit), on
the SAME batch: B = 64 and 256 windows of 20 output points at spacing 0.1, drawn exactly as
`ConditionalNODE._train_step` draws them, with the model's `step` h = 0.1 and 0.05. Paths:

* gmhf rk4: `model.rollout` then `model._loss(solution.y[ok], target[ok])`, which is what
  `_train_step` runs between drawing the batch and the optimiser, with one `Workspace` for all
  its steps as `fit` has (each step writes its activations where the last step's were, instead of
  into fresh pages that fault in again on every step; a row also times the whole `_train_step`,
  Adam and clipping included, for scale, at B = 64);
* torchdiffeq `odeint(model.field(θ, start), y0, grid, method="rk4", options={"step_size": h})`:
  the public call, which takes its own steps;
* torchdiffeq rk4 with `grid_constructor` giving exactly gmhf's steps. torchdiffeq's "rk4" is
  Kutta's 3/8 rule (`rk4_alt_step_func`), not the classical RK4 gmhf uses, so a third row runs
  torchdiffeq's own classical `rk4_step_func` on the same grid (registered as a solver here):
  that one is the same arithmetic, and is checked to give gmhf's loss to 1e-10 and gradients to
  1e-8 (float64 copy of model and batch) before anything is timed;
* torchdiffeq `odeint_adjoint`, same steps: the memory-saving peer (its gradient is the adjoint
  ODE's, not the discrete one, so it differs at the discretisation level);
* gmhf's previous path, `rk4(model.field(θ, start), …)` with autograd recording every op, checked
  against the fused rollout the same way (the "before / now" column).

gmhf's rollout (`gmhf.core.mlp_rk4`) is one autograd node with a hand-written reverse sweep, the
normalisations folded into the first and last layers, the first layer's conditioning computed once
and its time features once per stage time, and tanh evaluated as 2σ(2z) − 1 with the factors in the weights: the
same function and the same discrete gradient (the checks below hold it to 1e-10 / 1e-8 in float64).

Step count: the "RK4 steps" column shows what each path really integrates. (This bench found that a
float32 grid, on which 0.1 is 0.10000000149, made rk4 split most intervals in two; rk4 now splits
with a relative tolerance, `gmhf.core.ode.substeps_for`.)

Timing: per (B, h), every path runs round-robin, one timed run each per round (a run repeats the
step until ~RUN_TARGET_S; the order rotates from round to round), so a load spike hits all of them
alike; figures are medians over rounds. The ratios are medians of per-round ratios (paired: the two
runs of a pair are a second or so apart), which a slow phase of the machine moves far less than the
medians themselves: on the shared VM this was written on, the same step ran at ~60 or ~105 ms in
phases lasting seconds, with no page faults or system time in either (see the spread column).

Memory: one fresh subprocess per (path, window). It loads the same weights and data, does a
2-point warm-up step (lazy initialisation), resets the kernel's resident-set high-water mark
(`5` into /proc/self/clear_refs), reads the resident set, and runs one step; peak = VmHWM after
the step - resident set before it: what the step adds to the process at its worst, every
allocation included (torch's CPU tensors come from malloc, so tracemalloc would miss them). Not
ru_maxrss: Linux carries the parent's high-water mark into a child across fork/exec, so a child
of a big benchmark process reads the parent's size. Children run two at a time (memory is per
process; their timings are not reported). One more row repeats gmhf at the longest window with
glibc's mmap threshold at 64 KiB, which tells tensors alive from freed blocks kept in the heap.
The bytes autograd saves for backward (saved_tensors_hooks, deduplicated by storage; the hook
keeps the tensor itself) are counted in the same step.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import torch
from cnode_memory import MEMORY_BATCH, MEMORY_PATHS, MEMORY_STEP, MEMORY_WINDOWS, memory_child, memory_rows
from cnode_paths import paths
from cnode_problem import (  # bench/cnode_problem.py (run as a script)
    BATCHES,
    DEPTH,
    GOAL,
    GRAD_TOLERANCE,
    HIDDEN,
    LOSS_TOLERANCE,
    POINTS,
    ROUNDS,
    RUN_TARGET_S,
    SEED,
    SPACING,
    STEPS,
    TRAJECTORIES,
    WARM_FIT_STEPS,
    WINDOW,
    make_batch,
    problem,
)
from cnode_report import memory_table, notes, profile_table, ratio_table, ratios, timing_table
from cnode_timing import Row, profile_gmhf, time_config
from cnode_verify import verify
from common import ROOT, footer, machine_info, write_results

RESULTS = ROOT / "bench" / "results" / "cnode.json"


def main() -> int:
    """Verify, time, measure memory, profile; print the tables and notes, write the JSON; exit 0 even when the goal is missed."""
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    machine = machine_info()
    started = time.perf_counter()
    have_tdq = importlib.util.find_spec("torchdiffeq") is not None
    path_list = paths(have_tdq)
    phases: dict[str, float] = {}
    mark = time.perf_counter()
    model, data, theta = problem()
    phases["data + warm fit"], mark = time.perf_counter() - mark, time.perf_counter()
    verified = {}
    for size in BATCHES:
        for step in STEPS:
            twin = copy.deepcopy(model)
            twin.step = step
            verified[(size, step)] = verify(twin, make_batch(twin, data, theta, size, WINDOW, seed=SEED + size),
                                            path_list)
    phases["verification"], mark = time.perf_counter() - mark, time.perf_counter()
    failed = [(key, name) for key, checks in verified.items() for name, c in checks.items() if c.get("passed") is False]
    counts: dict[tuple[float, str], tuple[int, int]] = {}
    rows = [row for size in BATCHES for step in STEPS
            for row in time_config(model, data, theta, size, step, path_list, verified[(size, step)], counts)]
    phases["timing"], mark = time.perf_counter() - mark, time.perf_counter()
    compared = ratios(rows) if have_tdq else []
    memory = memory_rows(model, data, theta, [n for n in MEMORY_PATHS if n in {p.name for p in path_list}])
    phases["memory"], mark = time.perf_counter() - mark, time.perf_counter()
    profile, profiled_s = profile_gmhf(model, data, theta)
    phases["profile"] = time.perf_counter() - mark
    lines = ([] if have_tdq else ["torchdiffeq was not importable (`pip install -e .[bench]`): no side-by-side comparison"])
    lines += [f"VERIFICATION FAILED for {name} at B={key[0]} h={key[1]:g}" for key, name in failed]
    lines += notes(rows, verified, memory, machine["load_average"])
    lines.append("phases: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items()))
    print(timing_table(rows))
    print()
    if compared:
        print(ratio_table(compared))
        print()
    print(memory_table(memory))
    print()
    print(f"cProfile, gmhf forward+backward, B={BATCHES[0]}, h={STEPS[0]:g}, window {WINDOW}: "
          f"{profiled_s * 1e3:.1f} ms/step under the profiler")
    print(profile_table(profile))
    print()
    for line in lines:
        print(f"* {line}")
    print("\n" + footer(machine, time.perf_counter() - started, RESULTS))
    write_json(machine, verified, rows, compared, memory, (profile, profiled_s), lines)
    return 0


def write_json(machine: dict[str, Any], verified: dict[tuple[int, float], dict[str, dict[str, Any]]], rows: list[Row],
               compared: list[dict[str, Any]], memory: list[dict[str, Any]],
               profiled: tuple[list[dict[str, Any]], float], lines: list[str]) -> None:
    """Store the results for comparison across commits (bench/results/ is not tracked)."""
    profile, profiled_s = profiled
    document = {
        "benchmark": "cnode", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
        "settings": {"seed": SEED, "spacing": SPACING, "points": POINTS, "trajectories": TRAJECTORIES,
                     "hidden": HIDDEN, "depth": DEPTH, "warm_fit_steps": WARM_FIT_STEPS, "window": WINDOW,
                     "batches": BATCHES, "steps": STEPS, "rounds": ROUNDS, "run_target_s": RUN_TARGET_S,
                     "dtype": "float32", "memory": {"batch": MEMORY_BATCH, "step": MEMORY_STEP,
                                                    "windows": MEMORY_WINDOWS},
                     "goal": GOAL, "loss_tolerance": LOSS_TOLERANCE, "grad_tolerance": GRAD_TOLERANCE,
                     "statistic": "median"},
        "verification": [{"batch": k[0], "step": k[1], "path": name, **c}
                         for k, checks in verified.items() for name, c in checks.items()],
        "rows": [r.to_json() for r in rows], "comparison": compared, "memory": memory,
        "profile": {"batch": BATCHES[0], "step": STEPS[0], "ms_per_step_profiled": profiled_s * 1e3, "top": profile},
        "notes": lines,
    }
    write_results(RESULTS, document)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--memory-child":
        print(json.dumps(memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        sys.exit(0)
    sys.exit(main())
