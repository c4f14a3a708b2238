"""A run's directory: its config, logs, stores and checkpoints, none of which a crash can corrupt.

Every file is replaced whole by write-then-rename, so a reader (or a resumed run) sees either the
old file or the new one. Two kinds of append-only file live here, and resuming treats them
differently:

* **replayed logs** (`metrics.jsonl`, `timings.jsonl`): what the run computed since its last
  checkpoint is computed again on resume, so a checkpoint records how long each log was and
  resuming cuts the log back to that length: every line is written exactly once.
* **stores** (`feedback.sqlite`): what came from outside the run (an expert's answers) cannot be
  computed again, so a store is never cut back; a resumed run replays it instead of asking again.

One process at a time owns a directory (`lock`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gmhf.errors import GmhfError, UsageError
from gmhf.files import write_atomic

__all__ = ["REPLAYED_LOGS", "RunDirectory"]

CHECKPOINT = re.compile(r"step-(\d+)\.pt")
#: Checkpoints kept on disk; older ones are removed once a newer one is safely written.
KEEP = 2
#: Logs cut back to the checkpoint on resume, by the name a checkpoint records their size under.
REPLAYED_LOGS = ("metrics", "timings")


class RunDirectory:
    """The files of one run, each path named once.

    Attributes:
        config: `config.json`, what decides the run.
        metrics: `metrics.jsonl`, what the run computed (deterministic for a seed); replayed.
        timings: `timings.jsonl`, wall-clock times (generating vs learning); replayed.
        feedback: `feedback.sqlite`, every question and expert answer; append-only, never cut back.
        checkpoints: `checkpoints/step-NNNNNNNN.pt`, the newest `KEEP`.
        twin: `twin.pt`, a fitted cNODE twin, reused on resume.
        result: `result.json`, what `gmhf run` ended with (its `--json` document), rewritten at
            each end.
        report: `report.html`, the run's self-contained report.
        plots: `plots/`, the report's figures as PNG.
        lockfile: `.lock`, held by the process that owns the run.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.metrics = self.path / "metrics.jsonl"
        self.timings = self.path / "timings.jsonl"
        self.feedback = self.path / "feedback.sqlite"
        self.checkpoints = self.path / "checkpoints"
        self.twin = self.path / "twin.pt"
        self.result = self.path / "result.json"
        self.report = self.path / "report.html"
        self.plots = self.path / "plots"
        self.lockfile = self.path / ".lock"

    def replayed_logs(self) -> dict[str, Path]:
        """The logs cut back to the checkpoint on resume, by name."""
        return {"metrics": self.metrics, "timings": self.timings}

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Own the directory while the block runs; a second process gets a clear error, not a shared log.

        An advisory `flock` on `.lock`: the kernel drops it when the process dies, so a killed run
        never leaves a stale lock behind.
        """
        import fcntl

        made = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.lockfile, "a+") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UsageError(f"another gmhf process is using the run in {self.path}; wait for it to end "
                                     f"(or stop it) before resuming.") from None
                try:
                    yield
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            if made and not self.config.exists():  # a run refused before it began leaves nothing behind
                self.lockfile.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self.path.rmdir()

    def create(self, config: dict[str, Any]) -> None:
        """Start a new run; refuse to reuse a directory that already holds one."""
        self.check_new()
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        for log in self.replayed_logs().values():  # before config.json: a run that has a config has its logs
            log.write_bytes(b"")
        write_atomic(self.config, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def check_new(self) -> None:
        """Refuse a directory that already holds a run (or an earlier run's checkpoints)."""
        if self.config.exists():
            raise UsageError(f"{self.path} already holds a run; resume it with --resume or choose another "
                             f"run directory.")
        if self.steps():
            raise UsageError(f"{self.checkpoints} holds checkpoints of an earlier run (its config.json is gone); "
                             f"remove them or choose another run directory.")

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace the config of an existing run atomically (`gmhf train --resume --steps` extends a run)."""
        write_atomic(self.config, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def read_config(self) -> dict[str, Any]:
        """The run's config as written by `create`."""
        if not self.config.exists():
            raise GmhfError(f"{self.path} holds no run to resume (no config.json).")
        try:
            loaded = json.loads(self.config.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise GmhfError(f"{self.config} is damaged ({error}); the run cannot be resumed from it.") from None
        if not isinstance(loaded, dict):
            raise GmhfError(f"{self.config} is damaged (not a JSON object); the run cannot be resumed from it.")
        return loaded

    def log(self, line: dict[str, Any], *, timing: bool = False) -> None:
        """Append one JSON line to the metrics (or timings) log."""
        with open(self.timings if timing else self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")

    def log_sizes(self) -> dict[str, int]:
        """Byte lengths of the logs, stored in each checkpoint."""
        return {name: path.stat().st_size for name, path in self.replayed_logs().items()}

    def truncate_logs(self, sizes: dict[str, int]) -> None:
        """Cut the logs back to the lengths a checkpoint recorded."""
        for name, path in self.replayed_logs().items():
            if not path.exists() and int(sizes.get(name, 0)):
                raise GmhfError(f"{path} is missing, so the run cannot be resumed with its metrics intact.")
            with open(path, "a+b") as f:
                f.truncate(int(sizes.get(name, 0)))

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write the checkpoint for `step` atomically, then drop all but the newest `KEEP`."""
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        path = self.checkpoints / f"step-{step:08d}.pt"
        write_atomic(path, buffer.getvalue())
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
                problems.append(f"{path}: {_unreadable(error)}")
                continue
            if problems:
                warnings.warn(f"skipped unreadable checkpoints ({'; '.join(problems)}); resuming from step {step}",
                              stacklevel=2)
            return state
        if problems:
            raise GmhfError(f"no checkpoint of {self.path} can be read: {'; '.join(problems)}")
        return None


def _unreadable(error: BaseException) -> str:
    """Why `torch.load` could not read a checkpoint, in one clause, without torch's advice.

    torch suggests loading with `weights_only=False`, which runs arbitrary code from the file: a
    damaged checkpoint is never worth that, so the advice is left out.
    """
    text = str(error).strip()
    if isinstance(error, EOFError) or not text:
        return "empty or cut short"
    if "zip archive" in text or "central directory" in text:
        return "not a complete checkpoint archive (cut short or overwritten)"
    if "weights_only" in text or type(error).__name__ == "UnpicklingError":
        return "holds something other than tensors and numbers (damaged, or not written by gmhf)"
    first = re.split(r"(?<=\.)\s|\n", text, maxsplit=1)[0]
    return f"{type(error).__name__}: {first[:200]}"
