"""What every bench here shares: where the numbers came from, plain-text tables, strict JSON."""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import gmhf

ROOT = Path(__file__).resolve().parent.parent


def machine_info(peers: tuple[str, ...] = ("torchdiffeq", "scipy")) -> dict[str, Any]:
    """Where the numbers came from: they mean little without the machine and its load; `peers`' versions too."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), None) if Path("/proc/cpuinfo").exists() else None
    versions = {}
    for package in peers:
        try:
            versions[package] = importlib.import_module(package).__version__
        except ImportError:
            versions[package] = None
    return {
        "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
        "cpu_model": model, "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "gmhf": gmhf.__version__,
        **versions, "git_commit": commit.stdout.strip() or None, "git_dirty": bool(dirty.stdout.strip()),
    }


def text_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    """A plain-text table: readable in a terminal, a CI log and a pasted issue comment alike."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_results(path: Path, document: dict[str, Any]) -> None:
    """`document` as strict JSON at `path` (non-finite floats as null), where `make bench` collects the results."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite(document), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def load_note(rows: list[Any], start_load: Any, noisy_above: float) -> str:
    """The machine's load at start and end, and how many rows were noisy (spread above `noisy_above`)."""
    noisy = [r for r in rows if r.spread > noisy_above]
    end_load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return (f"load average {start_load} at start, {end_load} at end; "
            + (f"{len(noisy)} of {len(rows)} rows spread more than {noisy_above:.0%} (max - min over median): noisy"
               if noisy else f"every row's spread is within {noisy_above:.0%}"))


def footer(machine: dict[str, Any], seconds: float, results: Path) -> str:
    """The closing line: machine, versions, run time and where the JSON went."""
    return (f"{machine['platform']}, {machine['cpu_model']}, Python {machine['python']}, torch {machine['torch']} "
            f"({machine['torch_threads']} thread), torchdiffeq {machine['torchdiffeq']}, {machine['cpus']} CPUs; "
            f"took {seconds:.0f} s; results in {results.relative_to(ROOT)}")


def resident_bytes() -> int:
    """The process's resident set now."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_resident_bytes() -> int:
    """The resident high-water mark (VmHWM); ru_maxrss where /proc has none."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current resident set (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def paired(slow: Any, fast: Any) -> float:
    """Median over rounds of slow's time / fast's time in the same round (rows with `.seconds`, one per round)."""
    return statistics.median(a / b for a, b in zip(slow.seconds, fast.seconds, strict=True))


class Counted:
    """A vector field with a call counter (every call evaluates the whole batch)."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f, self.calls = f, 0
        self.theta = getattr(f, "theta", None)  # the fused Duffing solvers read θ directly

    def __call__(self, t: Any, y: Any) -> Any:
        self.calls += 1
        return self.f(t, y)
