"""bench/cnode.py's memory: peak resident set one training step adds, in a fresh process per (path, window)."""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from cnode_paths import paths  # bench/cnode_paths.py (run as a script)
from cnode_problem import SEED, make_batch, new_model
from common import ROOT, peak_resident_bytes, reset_peak, resident_bytes
from torch import Tensor

from gmhf.core.generator import ConditionalNODE

#: The script whose `--memory-child` mode runs `memory_child` in a fresh process.
ENTRY = Path(__file__).with_name("cnode.py")

MEMORY_BATCH, MEMORY_STEP, MEMORY_WINDOWS = 256, 0.1, (20, 100, 400)
MEMORY_PATHS = ("gmhf rk4 (rollout + _loss, as _train_step)", "torchdiffeq rk4, gmhf's steps",
                "torchdiffeq odeint_adjoint rk4, gmhf's steps")
#: Memory children run this many at a time (they do not share memory; their timings are not reported).
MEMORY_WORKERS = max(1, min(2, os.cpu_count() or 1))
#: One more row at the longest window: glibc told to mmap every block of 64 KiB and up (one [256, 64]
#: float32 activation), so that freed blocks go back to the system instead of staying in the heap.
MMAP_ENV = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}


def memory_child(problem_file: str, path_name: str, width: int) -> dict[str, Any]:
    """In a fresh process: peak RSS added by one training step, and the bytes autograd saves."""
    torch.set_num_threads(1)
    stored = torch.load(problem_file)
    model = new_model(stored["t"])
    model.load_state_dict(stored["state"])
    model.step = MEMORY_STEP
    data, theta = stored["data"], stored["theta"]
    path = {p.name: p for p in paths(importlib.util.find_spec("torchdiffeq") is not None)}[path_name]
    tiny = make_batch(model, data, theta, MEMORY_BATCH, 2, seed=SEED)
    b = make_batch(model, data, theta, MEMORY_BATCH, width, seed=SEED)
    model.zero_grad(set_to_none=True)
    path.loss(model, tiny).backward()  # lazy initialisation, at almost no memory
    saved: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:  # keeps the tensor itself: no copy, no extra memory but the dict
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.zero_grad(set_to_none=True)
    gc.collect()
    was_reset = reset_peak()
    before_rss, before_peak = resident_bytes(), peak_resident_bytes()
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = path.loss(model, b)
    forward_rss = resident_bytes()
    loss.backward()
    seconds = time.perf_counter() - start
    after_peak = peak_resident_bytes()
    return {"path": path_name, "window": width, "batch": MEMORY_BATCH, "step": MEMORY_STEP,
            "peak_added_bytes": after_peak - before_rss, "after_forward_added_bytes": forward_rss - before_rss,
            "resolution_bytes": before_peak - before_rss, "peak_was_reset": was_reset,
            "saved_for_backward_bytes": sum(saved.values()), "seconds_single_run": seconds}


def memory_rows(model: ConditionalNODE, data: Tensor, theta: Tensor, names: list[str]) -> list[dict[str, Any]]:
    """One subprocess per (path, window)."""
    with tempfile.TemporaryDirectory() as folder:
        problem_file = str(Path(folder) / "problem.pt")
        torch.save({"state": model.state_dict(), "t": model.t, "data": data, "theta": theta}, problem_file)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        runs = [(width, name, "") for width in MEMORY_WINDOWS for name in names]
        runs.append((max(MEMORY_WINDOWS), names[0], " [glibc mmap_threshold=64 KiB]"))

        def child(width: int, name: str, label: str) -> dict[str, Any]:
            done = subprocess.run([sys.executable, str(ENTRY), "--memory-child", problem_file, name, str(width)],
                                  cwd=ROOT, capture_output=True, text=True, env={**env, **(MMAP_ENV if label else {})})
            if done.returncode != 0:
                return {"path": name + label, "window": width, "error": done.stderr.strip()[-300:]}
            return {**json.loads(done.stdout.strip().splitlines()[-1]), "path": name + label}

        with ThreadPoolExecutor(MEMORY_WORKERS) as pool:
            rows = list(pool.map(lambda run: child(*run), runs))
    return rows


