"""What a spec does in effect, estimated from fixed-seed samples: for `gmhf explain`.

The effective marginals (after every `require` and `prefer`), each `prefer`'s effect, each
`expect`'s rejection rate on generated data, rare constraints, and the factor-by-factor overlap of
two specs. Every estimate is from a fixed seed, so `explain` prints the same numbers every time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor

from gmhf.core.constraints import Constraint, Prefer
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from gmhf.core.guidance import Guidance

__all__ = ["compare", "effective_marginals", "expect_rejections", "prefer_effects", "rare_constraints",
           "sparkline"]

#: Draws behind every estimate, the histogram's bins, and the acceptance below which a constraint is rare.
SAMPLES = 4000
BINS = 20
RARE = 0.01
SPARKS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: list[int]) -> str:
    """One character per bin, its height proportional to the count (a blank for an empty bin)."""
    top = max(counts, default=0) or 1
    return "".join(SPARKS[0] if c == 0 else SPARKS[max(1, round(c / top * (len(SPARKS) - 1)))] for c in counts)


def _summary(column: Tensor, factor: Any, low: float, high: float) -> dict[str, Any]:
    if factor.kind == "categorical":
        counts = torch.bincount(column.long(), minlength=len(factor.levels)).tolist()
        return {"factor": factor.name, "kind": factor.kind,
                "levels": {lvl: c / max(1, len(column)) for lvl, c in zip(factor.levels, counts, strict=True)}}
    q05, q50, q95 = (float(v) for v in torch.quantile(column, torch.tensor([0.05, 0.5, 0.95], dtype=column.dtype)))
    counts = torch.histc(column, bins=BINS, min=low, max=high).long().tolist() if high > low else [len(column)]
    return {"factor": factor.name, "kind": factor.kind, "q05": q05, "q50": q50, "q95": q95,
            "range": [low, high], "histogram": counts, "sparkline": sparkline(counts)}


def effective_marginals(guidance: Guidance, *, samples: int = SAMPLES, seed: int = 0) -> list[dict[str, Any]]:
    """Per factor, from `samples` draws of the spec: quantiles 5/50/95 % and a `BINS`-bin histogram.

    Categorical factors get their level shares instead. The histogram spans the draws' range.
    """
    values = guidance.sample(samples, seed=seed).values
    rows = []
    for i, factor in enumerate(guidance.space):
        column = values[:, i]
        low, high = (float(column.min()), float(column.max())) if len(column) else (0.0, 0.0)
        rows.append(_summary(column, factor, low, high))
    return rows


def _constraints(guidance: Guidance) -> list[Constraint]:
    return cast("list[Constraint]", list(guidance.constraints))


def _before_weighting(guidance: Guidance, samples: int, seed: int) -> Tensor:
    """Draws from the marginals that every hard (`require`) constraint accepts, before any `prefer`."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.stack([guidance.marginals[name].sample(samples, generator) for name in guidance.space.names], 1)
    keep = torch.ones(samples, dtype=torch.bool)
    for constraint in _constraints(guidance):
        if constraint.role == "hard":
            keep &= constraint.accepts(values)
    return values[keep]


def prefer_effects(guidance: Guidance, *, samples: int = SAMPLES, seed: int = 0) -> list[dict[str, Any]]:
    """Per `prefer`: the share of draws where its condition holds before and after the weighting.

    "Before" is the spec without its soft terms (marginals and `require`s); "after" the spec
    itself. A plugin's soft statement reports its mean log weight instead (`holds_*` are None).
    """
    soft = [c for c in _constraints(guidance) if c.role == "soft"]
    if not soft:
        return []
    before = _before_weighting(guidance, samples, seed)
    after = guidance.sample(samples, seed=seed).values
    rows = []
    for constraint in soft:
        row: dict[str, Any] = {"where": constraint.where, "holds_before": None, "holds_after": None}
        if isinstance(constraint, Prefer) and constraint.weight != 0:
            row["holds_before"] = _share(constraint.log_weight(before) != 0)
            row["holds_after"] = _share(constraint.log_weight(after) != 0)
        else:
            row["mean_log_weight_before"] = float(constraint.log_weight(before).mean()) if len(before) else None
            row["mean_log_weight_after"] = float(constraint.log_weight(after).mean())
        rows.append(row)
    return rows


def _share(mask: Tensor) -> float | None:
    return float(mask.double().mean()) if len(mask) else None


def expect_rejections(guidance: Guidance, *, samples: int = 256, seed: int = 0) -> dict[str, Any]:
    """Generate `samples` environments with the domain's simulator; per `expect`, the share it rejects.

    Rates are over the environments whose simulation succeeded; `diverged` counts the others.
    """
    from gmhf.core.generator import SimulatorGenerator

    theta = guidance.sample(samples, seed=seed).values
    data = SimulatorGenerator(guidance.domain).generate(theta, generator=torch.Generator().manual_seed(seed))
    ok = data["ok"].bool()
    observables = guidance.domain.observe(theta, data)
    rows = []
    for constraint in guidance.expects:
        holds = constraint.holds(theta, observables).bool()
        rejected = int((~holds & ok).sum())
        rows.append({"where": constraint.where, "rejected": rejected, "generated": int(ok.sum()),
                     "rejection_rate": rejected / max(1, int(ok.sum()))})
    return {"generated": samples, "diverged": int((~ok).sum()), "expect": rows}


def rare_constraints(explained: dict[str, Any], prefers: list[dict[str, Any]]) -> list[str]:
    """Warnings for constraints that accept under `RARE` of draws (and for the spec as a whole)."""
    warnings = [f"{j['where']}: `{j['statement']}` accepts only {j['accepted']:.2%} of draws; sampling is slow "
                f"and the estimate rough" for j in explained["joint"] if j["accepted"] < RARE]
    if explained["acceptance_rate"] < RARE:
        warnings.append(f"all joint constraints together accept only {explained['acceptance_rate']:.2%} of draws")
    warnings += [f"{p['where']}: its condition holds in only {p['holds_before']:.2%} of draws before weighting"
                 for p in prefers if p.get("holds_before") is not None and p["holds_before"] < RARE]
    return warnings


def compare(a: Guidance, b: Guidance, *, samples: int = SAMPLES, seed: int = 0) -> list[dict[str, Any]]:
    """Factor by factor: each spec's quantiles, the overlap coefficient of the two marginals, and
    the overlap of their 5–95 % intervals (intersection over union).

    The overlap coefficient, ∑ min(p, q) over `2 * BINS` shared bins (level shares for a
    categorical factor), is 1 for identical marginals and 0 for disjoint ones.
    """
    if a.space.names != b.space.names:
        raise UsageError(f"the two specs are about different domains ({a.checked.domain!r} and "
                         f"{b.checked.domain!r}); only specs of one domain can be compared.")
    left, right = a.sample(samples, seed=seed).values, b.sample(samples, seed=seed).values
    rows = []
    for i, factor in enumerate(a.space):
        x, y = left[:, i], right[:, i]
        low, high = float(torch.minimum(x.min(), y.min())), float(torch.maximum(x.max(), y.max()))
        first, second = _summary(x, factor, low, high), _summary(y, factor, low, high)
        row: dict[str, Any] = {"factor": factor.name, "a": first, "b": second}
        if factor.kind == "categorical":
            row["overlap"] = sum(min(p, second["levels"][k]) for k, p in first["levels"].items())
            row["interval_overlap"] = None
        else:
            bins = 2 * BINS
            p = torch.histc(x, bins=bins, min=low, max=high) / len(x) if high > low else torch.ones(1)
            q = torch.histc(y, bins=bins, min=low, max=high) / len(y) if high > low else torch.ones(1)
            row["overlap"] = float(torch.minimum(p, q).sum())
            inner = min(first["q95"], second["q95"]) - max(first["q05"], second["q05"])
            outer = max(first["q95"], second["q95"]) - min(first["q05"], second["q05"])
            row["interval_overlap"] = max(0.0, inner) / outer if outer > 0 else 1.0
        rows.append(row)
    return rows
