"""Sweep statistics: mean ± standard error over seeds, and paired differences seed by seed.

Seed-to-seed noise in deployment loss is larger than the gaps between methods, so unpaired means
hide the effect. Within a seed every method starts from the same weights and is scored on the same
truth tasks (common random numbers): the difference of two methods at one seed cancels most of that
noise, and its mean ± SE over seeds is what the report compares.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["METHODS", "UPPER_BOUND", "Row", "Summary", "answers_needed", "mean_se", "paired", "rows"]

#: Method names in the order every table and plot lists them.
METHODS = ("source-only", "spec-only", "domain-randomisation", "gmhf", "gmhf-reinforce", "oracle")
#: The method trained on the truth itself: a reference no real run can use, labelled as such.
UPPER_BOUND = "oracle"


@dataclass(frozen=True)
class Summary:
    """Mean ± standard error over `n` values (stderr None with fewer than two)."""

    mean: float
    stderr: float | None
    n: int

    def text(self, digits: int = 4) -> str:
        """`0.0376 ± 0.0012` (or the mean alone for one value)."""
        if self.stderr is None:
            return f"{self.mean:.{digits}g}"
        return f"{self.mean:.{digits}g} ± {self.stderr:.2g}"


def mean_se(values: Iterable[float | None]) -> Summary | None:
    """Mean and standard error (sample standard deviation / √n) of the finite values; None without any."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return None
    mean = sum(kept) / len(kept)
    if len(kept) < 2:
        return Summary(mean, None, 1)
    variance = sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)
    return Summary(mean, math.sqrt(variance / len(kept)), len(kept))


@dataclass(frozen=True)
class Row:
    """One (method, reliability) of a sweep, summarised over its seeds."""

    method: str
    reliability: float | None
    seeds: int
    loss_k0: Summary | None
    loss: Summary | None
    mmd: Summary | None
    answers: Summary | None
    minus_spec_only: Summary | None
    minus_oracle: Summary | None

    @property
    def label(self) -> str:
        """`gmhf p=0.9`, `oracle (upper bound)`, `spec-only`."""
        if self.reliability is not None:
            return f"{self.method} p={self.reliability:g}"
        return f"{self.method} (upper bound)" if self.method == UPPER_BOUND else self.method


def _order(record: dict[str, Any]) -> tuple[int, float, int]:
    method = record["method"]
    rank = METHODS.index(method) if method in METHODS else len(METHODS)
    return rank, -1.0 if record["reliability"] is None else float(record["reliability"]), int(record["seed"])


def paired(records: Sequence[dict[str, Any]], against: Sequence[dict[str, Any]],
           key: str = "deployment_loss") -> Summary | None:
    """Mean ± SE over seeds of `records[key]` minus the same seed's `against[key]` (seeds in both only)."""
    reference = {r["seed"]: r.get(key) for r in against}
    differences = [r.get(key) - reference[r["seed"]] for r in records  # type: ignore[operator]
                   if r.get(key) is not None and reference.get(r["seed"]) is not None]
    return mean_se(differences)


def rows(records: Sequence[dict[str, Any]]) -> list[Row]:
    """One row per (method, reliability), in `METHODS` order then by reliability."""
    groups: dict[tuple[str, float | None], list[dict[str, Any]]] = {}
    for record in sorted(records, key=_order):
        groups.setdefault((record["method"], record["reliability"]), []).append(record)
    spec_only = groups.get(("spec-only", None), [])
    oracle = groups.get((UPPER_BOUND, None), [])
    result = []
    for (method, reliability), group in groups.items():
        result.append(Row(
            method, reliability, len(group),
            mean_se(r.get("deployment_loss_k0") for r in group), mean_se(r.get("deployment_loss") for r in group),
            mean_se(r.get("mmd") for r in group), mean_se(r.get("answers") for r in group),
            None if method == "spec-only" or not spec_only else paired(group, spec_only),
            None if method == UPPER_BOUND or not oracle else paired(group, oracle)))
    return result


def answers_needed(rounds: Sequence[dict[str, Any]], share: float = 0.9) -> int | None:
    """Answers given when π first had `share` of its draws inside the truth's support (None: never)."""
    for row in rounds:
        inside = row.get("in_support")
        if inside is not None and inside >= share:
            return int(row["answers"])
    return None
