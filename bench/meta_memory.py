"""bench/meta.py's memory: the peak resident set one B = 512 meta-iteration adds, in a fresh process each."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from common import ROOT, peak_resident_bytes, reset_peak, resident_bytes  # bench/common.py (run as a script)
from meta_peers import FILLS, gmhf_fill
from meta_workload import LEARNERS, OUTER_LR, SEED, new_model, sinusoid_tasks

#: The script whose `--memory-child` mode runs `memory_child` in a fresh process.
ENTRY = Path(__file__).with_name("meta.py")

MEMORY_BATCH = 512
CHUNKS = (None, 2, 4, 8, 32, 64)
#: The issue's memory goal: gmhf with tasks_per_chunk at most this many times the looped peer's peak.
MEMORY_GOAL = 2.0


def release_free_heap() -> None:
    """Hand glibc's free heap back to the system, so the warm-up's freed blocks do not hide the run's needs."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the warm-up's few freed blocks stay in the heap
        pass


def memory_child(learner: str, contender: str, chunk: int | None) -> dict[str, Any]:
    """In a fresh process: the peak resident set one B = 512 meta-iteration adds."""
    torch.set_num_threads(1)
    model = new_model()
    fill = gmhf_fill(learner, model, chunk) if contender == "gmhf" else FILLS[contender](learner, model)
    opt = torch.optim.Adam(model.parameters(), lr=OUTER_LR)
    batch, tiny = sinusoid_tasks(MEMORY_BATCH, SEED), sinusoid_tasks(2, SEED + 1)
    for b in (tiny, batch):
        opt.zero_grad(set_to_none=True)
        gc.collect()
        if b is batch:  # the tiny run did the lazy initialisation (autograd engine, Adam state)
            release_free_heap()
            reset = reset_peak()
            before, before_peak = resident_bytes(), peak_resident_bytes()
            before_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            start = time.perf_counter()
        fill(b)
        opt.step()
    seconds = time.perf_counter() - start
    return {"learner": learner, "contender": contender, "tasks_per_chunk": chunk, "batch": MEMORY_BATCH,
            "peak_added_bytes": peak_resident_bytes() - before, "peak_was_reset": reset,
            "resolution_bytes": before_peak - before,
            "ru_maxrss_added_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before_maxrss,
            "seconds_single_run": seconds}


def memory_rows(peers: list[str]) -> list[dict[str, Any]]:
    """One subprocess per (learner, contender, chunk), one at a time (the timings are not reported)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows: list[dict[str, Any]] = []
    for learner in LEARNERS:
        runs = [("gmhf", chunk) for chunk in CHUNKS] + [(peer, None) for peer in peers]
        for contender, chunk in runs:
            done = subprocess.run([sys.executable, str(ENTRY), "--memory-child", learner, contender, str(chunk)],
                                  cwd=ROOT, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                rows.append({"learner": learner, "contender": contender, "tasks_per_chunk": chunk,
                             "error": done.stderr.strip()[-300:]})
            else:
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for row in rows:  # gmhf chunked against each looped peer
        peer_peaks = {r["contender"]: r.get("peak_added_bytes") for r in rows
                      if r["learner"] == row["learner"] and r["contender"] != "gmhf"}
        if row["contender"] == "gmhf" and "peak_added_bytes" in row:
            row["x_peer"] = {p: row["peak_added_bytes"] / v for p, v in peer_peaks.items() if v}
            if row["tasks_per_chunk"] is not None:
                row["met"] = {p: x <= MEMORY_GOAL for p, x in row["x_peer"].items()}
    return rows

