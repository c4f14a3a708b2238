"""What a report reads: a sweep's records and plan, a run's round rows, deployment losses and θ samples.

Everything comes from files the runs wrote (`results.json`, `metrics.jsonl`, `config.json`, the
last checkpoint); nothing is trained or asked. The one computation is drawing θ from the spec and
the truth to compare with π, which reads the specs the run names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gmhf.errors import GmhfError, UsageError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["FactorSamples", "RunData", "SweepData", "factor_samples", "kind_of", "load_run", "load_sweep",
           "round_rows"]

#: θ drawn from the spec and the truth for the per-factor plots.
SAMPLES = 2048


@dataclass
class SweepData:
    """A sweep directory's records, the settings it ran with and the methods it planned."""

    root: Path
    records: list[dict[str, Any]]
    config: dict[str, Any]
    methods: list[str]
    available: list[str]
    rounds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run name -> round rows


@dataclass
class RunData:
    """A `gmhf run` (or `gmhf train`) directory: its settings, round rows and deployment losses."""

    root: Path
    config: dict[str, Any]
    rounds: list[dict[str, Any]]
    deployment: dict[str, dict[str, float]]  # method -> {"k0": …, "k5": …}
    result: dict[str, Any] | None = None  # result.json, when the run wrote one


@dataclass(frozen=True)
class FactorSamples:
    """θ `[n, k]` from π (the run's last task pool), from the spec's q_H and from the truth."""

    names: tuple[str, ...]
    flagged: tuple[str, ...]
    pi: Tensor
    spec: Tensor
    truth: Tensor | None


def kind_of(root: Path) -> str:
    """`"sweep"` or `"run"`; a usage error for a folder that is neither."""
    if (root / "results.json").exists() or (root / "sweep.json").exists():
        return "sweep"
    if (root / "config.json").exists():
        return "run"
    raise UsageError(f"{root} holds neither a sweep (results.json) nor a run (config.json).")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GmhfError(f"{path} cannot be read ({error}).") from None


def round_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The feedback rounds of a run's `metrics.jsonl` (empty for a training run)."""
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        return []
    lines = metrics.read_text(encoding="utf-8").splitlines()
    return [row for line in lines if line and "round" in (row := json.loads(line))]


def _final_deployment(run_dir: Path) -> dict[str, float] | None:
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        return None
    found = None
    for line in metrics.read_text(encoding="utf-8").splitlines():
        if line and '"deployment"' in line:
            found = json.loads(line)["deployment"]
    return found


def load_sweep(root: Path) -> SweepData:
    """A sweep directory: `results.json`, `sweep.json`, `plan.json` and each feedback run's round rows."""
    records = _json(root / "results.json") if (root / "results.json").exists() else []
    config = _json(root / "sweep.json") if (root / "sweep.json").exists() else {}
    plan = _json(root / "plan.json") if (root / "plan.json").exists() else {}
    methods = list(plan.get("methods", sorted({r["method"] for r in records})))
    data = SweepData(root, records, config, methods, list(plan.get("available", methods)))
    for record in records:
        if record.get("reliability") is not None:
            data.rounds[record["run"]] = round_rows(root / "runs" / record["run"])
    return data


def load_run(root: Path) -> RunData:
    """A run directory, with the baselines `gmhf run --baselines` trained in `baselines/<name>/`."""
    config = _json(root / "config.json")
    deployment: dict[str, dict[str, float]] = {}
    if (own := _final_deployment(root)) is not None:
        deployment["gmhf" if "gmhf_run" in config else "trained"] = own
    baselines = root / "baselines"
    for folder in sorted(baselines.iterdir()) if baselines.is_dir() else []:
        if (losses := _final_deployment(folder)) is not None:
            deployment[folder.name] = losses
    result = _json(root / "result.json") if (root / "result.json").exists() else None
    return RunData(root, config, round_rows(root), deployment, result)


def _latest_pool_theta(run_dir: Path) -> Tensor | None:
    import re

    import torch

    folder = run_dir / "checkpoints"
    steps = sorted(p for p in folder.glob("step-*.pt") if re.fullmatch(r"step-\d+\.pt", p.name)) \
        if folder.is_dir() else []
    for path in reversed(steps):
        try:
            state = torch.load(path, weights_only=True)
        except Exception:  # a damaged checkpoint: the one before it  # noqa: BLE001
            continue
        theta: Tensor = state["pool"]["theta"]
        return theta.to(torch.float64)
    return None


def factor_samples(run_dir: Path) -> FactorSamples | None:
    """π's θ (the run's final task pool), q_H's and the truth's; None before the run has a checkpoint."""
    import torch

    from gmhf.api import load
    from gmhf.runner import load_truth

    pi = _latest_pool_theta(run_dir)
    if pi is None or pi.numel() == 0:
        return None
    config = _json(run_dir / "config.json")
    train = config.get("gmhf_run", {}).get("train") or config.get("gmhf_config") or {}
    if "spec" not in train:
        return None
    guidance = load(train["spec"], domain=train.get("domain"))
    truth, _ = load_truth(train.get("truth"), guidance)
    generator = torch.Generator().manual_seed(0)
    spec = guidance.sample(SAMPLES, generator=generator).values
    truth_theta = None if truth is guidance else truth.sample(SAMPLES, generator=generator).values
    rows = round_rows(run_dir)
    steered = rows[-1].get("agent", {}).get("steered") if rows else None
    flagged = tuple(steered) if steered else guidance.flagged
    return FactorSamples(guidance.space.names, flagged, pi, spec, truth_theta)
