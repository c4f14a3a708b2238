"""`gmhf sweep`: every method, at every reliability, over several seeds, resumably and in parallel.

A sweep reproduces the paper's comparison the way DomainBed reports domain generalisation: each
(method, reliability, seed) is one run in its own folder under `DIR/runs/`, finished runs carry a
done marker (`done.json`, the run's record) and are never run again, unfinished ones resume from
their last checkpoint. Within a seed every method starts from the same initial weights and is
evaluated on the same truth tasks (`runner.run_seeds`), so methods can be compared seed by seed
(paired). `DIR/results.json` lists the records of the finished runs; `gmhf.report` reads them.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gmhf.core.trainer import TrainConfig
from gmhf.errors import UsageError
from gmhf.files import write_atomic

__all__ = ["BASELINE_METHODS", "DEFAULT_RELIABILITIES", "FEEDBACK_METHODS", "QUICK", "QUICK_RELIABILITIES",
           "Planned", "SweepConfig", "available_methods", "planned_runs", "sweep"]

#: The comparison methods, trained once per seed, and what each trains on (see `gmhf.sweep.runs`).
BASELINE_METHODS = ("source-only", "spec-only", "domain-randomisation", "oracle")
#: The feedback methods, by the name results use, and the `RunConfig.agent` each runs.
FEEDBACK_METHODS = {"gmhf": "posterior", "gmhf-reinforce": "reinforce"}
DEFAULT_RELIABILITIES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
QUICK_RELIABILITIES = (0.5, 0.7, 0.9, 1.0)
#: What `--quick` changes (fewer steps and rounds, four reliabilities); measured in docs/results.md.
QUICK: dict[str, Any] = {"steps": 120, "rounds": 20, "reliabilities": QUICK_RELIABILITIES}


class SweepConfig(BaseModel):
    """Everything that decides a sweep (saved as `DIR/sweep.json`; a rerun must match it).

    `train` is the meta-training of every run (its `spec`, `truth` and `seed` are set per run);
    `rounds` and `answers_per_round` the feedback budget of the feedback methods.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    train: TrainConfig
    reliabilities: tuple[float, ...] = Field(DEFAULT_RELIABILITIES, min_length=1)
    seeds: int = Field(3, ge=1)
    rounds: int = Field(30, ge=0)
    answers_per_round: int = Field(5, ge=1)
    steer: Literal["flagged", "all"] = "flagged"

    @field_validator("reliabilities")
    @classmethod
    def _probabilities(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        for value in values:
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"every reliability must be in [0, 1], got {value!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"reliabilities repeat: {values!r}")
        return tuple(sorted(values))


@dataclass(frozen=True)
class Planned:
    """One run of a sweep: the method, the expert's reliability (None for a baseline) and the seed."""

    method: str
    reliability: float | None
    seed: int

    @property
    def name(self) -> str:
        """The run's folder under `DIR/runs/`, e.g. `gmhf-p0.9-s2` or `oracle-s0`."""
        middle = "" if self.reliability is None else f"-p{self.reliability:g}"
        return f"{self.method}{middle}-s{self.seed}"


def available_methods() -> tuple[str, ...]:
    """The methods this installation can run: `gmhf-reinforce` only once `RunConfig` offers that agent."""
    from gmhf.pipeline import RunConfig

    agents = typing.get_args(RunConfig.model_fields["agent"].annotation)
    feedback = tuple(name for name, agent in FEEDBACK_METHODS.items() if agent in agents)
    return (*BASELINE_METHODS[:3], *feedback, BASELINE_METHODS[3])


def planned_runs(config: SweepConfig, methods: Sequence[str]) -> list[Planned]:
    """Every run of the sweep, the long ones (feedback methods) first so parallel jobs end together."""
    feedback = [Planned(m, p, s) for m in methods if m in FEEDBACK_METHODS
                for p in config.reliabilities for s in range(config.seeds)]
    baselines = [Planned(m, None, s) for m in methods if m not in FEEDBACK_METHODS for s in range(config.seeds)]
    return feedback + baselines


def sweep(config: SweepConfig, root: str | os.PathLike[str], *, jobs: int = 1,
          methods: Sequence[str] | None = None,
          on_start: Callable[[int, int], None] | None = None,
          on_done: Callable[[Planned, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every (method, reliability, seed) of `config` under `root`, skipping finished runs.

    Args:
        config: the sweep's settings; a folder that holds a sweep of other settings is refused.
        root: the sweep directory (`sweep.json`, `runs/<name>/`, `results.json`).
        jobs: runs at once, each in its own process (1: in this process).
        methods: a subset of `available_methods()` (default: all of them).
        on_start: called once with (runs already done, runs in all).
        on_done: called with each run that finishes now, and its record.

    Returns:
        The records of every finished run (also written to `root/results.json`).

    Example:
        >>> config = SweepConfig(train=TrainConfig(spec="examples/specs/duffing_vague.guide",
        ...                                        truth="gmhf/domains/duffing/truth.guide", steps=300))
        >>> records = sweep(config, "runs/sweep", jobs=2)
    """
    from gmhf.sweep.runs import done_record, run_many

    chosen = tuple(methods) if methods is not None else available_methods()
    unknown = sorted(set(chosen) - set(available_methods()))
    if unknown:
        raise UsageError(f"unknown or unavailable methods {unknown}; choose from {', '.join(available_methods())}.")
    if jobs < 1:
        raise UsageError(f"`jobs` must be at least 1, got {jobs!r}.")
    folder = Path(root)
    _claim(folder, config)
    plan = planned_runs(config, chosen)
    write_atomic(folder / "plan.json", json.dumps({"methods": list(chosen), "available": list(available_methods()),
                                                   "runs": [r.name for r in plan]}, indent=2) + "\n")
    records = {run.name: record for run in plan if (record := done_record(folder, run)) is not None}
    if on_start is not None:
        on_start(len(records), len(plan))

    def finished(run: Planned, record: dict[str, Any]) -> None:
        records[run.name] = record
        write_results(folder, [records[r.name] for r in plan if r.name in records])
        if on_done is not None:
            on_done(run, record)

    write_results(folder, [records[r.name] for r in plan if r.name in records])
    run_many(config, folder, [run for run in plan if run.name not in records], jobs, finished)
    return [records[r.name] for r in plan if r.name in records]


def write_results(folder: Path, records: list[dict[str, Any]]) -> None:
    """`results.json`: one record per finished run, in plan order (strict JSON: no NaN)."""
    write_atomic(folder / "results.json", json.dumps(records, indent=2, allow_nan=False) + "\n")


def _claim(folder: Path, config: SweepConfig) -> None:
    """Save the sweep's settings, or check that a rerun in the same folder asks for the same sweep."""
    saved_path = folder / "sweep.json"
    wanted = config.model_dump(mode="json")
    if saved_path.exists():
        try:
            saved = SweepConfig.model_validate_json(saved_path.read_text(encoding="utf-8")).model_dump(mode="json")
        except (ValidationError, UnicodeDecodeError) as error:
            raise UsageError(f"{saved_path} is damaged or not a gmhf sweep ({error}); choose another --run.") from None
        if saved != wanted:
            differ = sorted(_differences(saved, wanted))
            raise UsageError(f"{folder} holds a sweep with other settings ({', '.join(differ)} differ); rerun it "
                             f"with the same command, or choose another --run.")
        return
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} exists and holds no gmhf sweep; choose an empty or new --run folder.")
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    write_atomic(saved_path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")


def _differences(saved: dict[str, Any], wanted: dict[str, Any], prefix: str = "") -> list[str]:
    names = []
    for key in sorted(set(saved) | set(wanted)):
        left, right = saved.get(key), wanted.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            names += _differences(left, right, f"{prefix}{key}.")
        elif left != right:
            names.append(f"{prefix}{key}")
    return names
