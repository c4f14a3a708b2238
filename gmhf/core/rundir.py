"""A run's directory: its config, its logs and its checkpoints, none of which a crash can corrupt.

Every file is replaced whole by write-then-rename, so a reader (or a resumed run) sees either the
old file or the new one. The logs are append-only JSON lines; a checkpoint records how long each
log was when it was taken, and resuming cuts the logs back to that length, so the lines a killed
run wrote after its last checkpoint are written again exactly once.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from gmhf.errors import GmhfError, UsageError

__all__ = ["RunDirectory", "atomic_write"]

CHECKPOINT = re.compile(r"step-(\d+)\.pt")
#: Checkpoints kept on disk; older ones are removed once a newer one is safely written.
KEEP = 2


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` never holds a partial file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunDirectory:
    """`config.json`, `metrics.jsonl`, `timings.jsonl` and `checkpoints/step-NNNNNNNN.pt` of one run.

    `metrics.jsonl` holds what the run computed (deterministic for a seed); `timings.jsonl` holds
    wall-clock times (generating vs learning), which no two runs share.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.metrics = self.path / "metrics.jsonl"
        self.timings = self.path / "timings.jsonl"
        self.config = self.path / "config.json"

    def create(self, config: dict[str, Any]) -> None:
        """Start a new run; refuse to reuse a directory that already holds one."""
        if self.config.exists():
            raise UsageError(f"{self.path} already holds a run; resume it with --resume or choose another "
                             f"run directory.")
        if self.steps():
            raise UsageError(f"{self.checkpoints} holds checkpoints of an earlier run (its config.json is gone); "
                             f"remove them or choose another run directory.")
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        for log in (self.metrics, self.timings):  # before config.json: a run that has a config has its logs
            log.write_bytes(b"")
        atomic_write(self.config, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())

    def read_config(self) -> dict[str, Any]:
        """The run's config as written by `create`."""
        if not self.config.exists():
            raise GmhfError(f"{self.path} holds no run to resume (no config.json).")
        loaded: dict[str, Any] = json.loads(self.config.read_text(encoding="utf-8"))
        return loaded

    def log(self, line: dict[str, Any], *, timing: bool = False) -> None:
        """Append one JSON line to the metrics (or timings) log."""
        with open(self.timings if timing else self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")

    def log_sizes(self) -> dict[str, int]:
        """Byte lengths of the logs, stored in each checkpoint."""
        return {"metrics": self.metrics.stat().st_size, "timings": self.timings.stat().st_size}

    def truncate_logs(self, sizes: dict[str, int]) -> None:
        """Cut the logs back to the lengths a checkpoint recorded."""
        for name, path in (("metrics", self.metrics), ("timings", self.timings)):
            if not path.exists() and int(sizes[name]):
                raise GmhfError(f"{path} is missing, so the run cannot be resumed with its metrics intact.")
            with open(path, "a+b") as f:
                f.truncate(int(sizes[name]))

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write the checkpoint for `step` atomically, then drop all but the newest `KEEP`."""
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        path = self.checkpoints / f"step-{step:08d}.pt"
        atomic_write(path, buffer.getvalue())
        for old in self.steps()[:-KEEP]:
            (self.checkpoints / f"step-{old:08d}.pt").unlink(missing_ok=True)
        return path

    def steps(self) -> list[int]:
        """Steps that have a checkpoint, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.checkpoints.iterdir() if (m := CHECKPOINT.fullmatch(p.name)))

    def load_latest(self) -> dict[str, Any] | None:
        """The newest readable checkpoint, loaded tensors-only (`weights_only=True`); None before the first.

        Checkpoints are renamed into place whole, so an unreadable one was damaged afterwards (a full
        disk, a copy cut short); the one before it is used then, with a warning.
        """
        import warnings

        import torch

        problems = []
        for step in reversed(self.steps()):
            path = self.checkpoints / f"step-{step:08d}.pt"
            try:
                state: dict[str, Any] = torch.load(path, weights_only=True)
            except Exception as error:  # whatever torch raises for a damaged file
                problems.append(f"{path}: {error}")
                continue
            if problems:
                warnings.warn(f"skipped unreadable checkpoints ({'; '.join(problems)}); resuming from step {step}",
                              stacklevel=2)
            return state
        if problems:
            raise GmhfError(f"no checkpoint of {self.path} can be read: {'; '.join(problems)}")
        return None
