"""bench/steer.py's information floor: the fewest answers that could locate the truth's box, and spec-only's figures.

The truth's support on the flagged factors is a box; clipped to the spec's support (π never leaves
it) it is [c'_f, d'_f] on factor f, of width w_f, inside the spec's range R_f. Suppose π is uniform
over an estimate of that box. If every bound of the box that lies strictly inside the spec's range
is placed within ε·w_f of the truth's, the worst case (every such bound placed ε·w_f outside) keeps
Π_f 1 / (1 + n_f·ε) of π in the truth's support, n_f the number of interior bounds of factor f (0, 1
or 2); ε solves Π_f (1 + n_f·ε) = 1 / 0.9. With n_f = 2 for all d factors this is the lead's
(1 + 2ε)^(−d) = 0.9. A bound at the spec's own edge cannot be overshot, so it needs no locating.
Placing one bound anywhere in R_f to within ε·w_f takes log2(R_f / (ε·w_f)) bits; B sums them over
the interior bounds. An answer of an expert right with probability p carries at most 1 − H₂(p) bits
(the capacity of a binary symmetric channel), so the floor is B / (1 − H₂(p)) answers. R_f and w_f
are read exactly from the marginals' `low`/`high` (no sampling). `literal_bits` is the lead's
formula taken literally (all 2·d bounds, each log2(R/(ε·w))), for comparison.

It is a floor for an agent whose π covers the box it located (as π ∝ q_H · s does), not for any π:
a π collapsed onto one point inside the box is 100 % in support after finding that point, which
takes about log2(1 / q_H(box)) bits (`point_bits`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from steer_run import DRAWS, TARGET, measure  # bench/steer_run.py (run as a script)

import gmhf
from gmhf.core.metrics import mmd
from gmhf.core.seeding import named_stream


def binary_entropy(p: float) -> float:
    """H₂(p) in bits."""
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def solve_epsilon(counts: list[int], target: float = TARGET) -> float:
    """ε with Π (1 + n·ε) = 1 / target, by bisection (the product grows with ε)."""
    low, high = 0.0, 1.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if math.prod(1 + n * middle for n in counts) < 1 / target else (low, middle)
    return (low + high) / 2


def floor(spec: gmhf.Guidance, truth: gmhf.Guidance) -> dict[str, Any]:
    """The floor's parts for `spec` steered toward `truth` (raises ValueError where the truth is not a box)."""
    if any(c.role == "hard" for c in truth.constraints):
        raise ValueError("the truth has a `require`: its support is not a box, the floor does not apply")
    factors = []
    for name in spec.flagged:
        a, b = float(spec.marginals[name].low), float(spec.marginals[name].high)
        c, d = max(a, float(truth.marginals[name].low)), min(b, float(truth.marginals[name].high))
        factors.append({"factor": name, "spec": [a, b], "truth_in_spec": [c, d], "R": b - a, "w": d - c,
                        "interior_bounds": int(c > a) + int(d < b)})
    counts = [f["interior_bounds"] for f in factors if f["interior_bounds"]]
    epsilon = solve_epsilon(counts) if counts else 0.0
    bits = sum(f["interior_bounds"] * math.log2(f["R"] / (epsilon * f["w"])) for f in factors if f["interior_bounds"])
    literal_epsilon = solve_epsilon([2] * len(factors))
    literal = sum(2 * math.log2(f["R"] / (literal_epsilon * f["w"])) for f in factors)
    theta = spec.sample(1 << 16, generator=named_stream("bench-steer-floor")).values
    share = float(truth.accepts(theta).to(torch.float64).mean())
    unflagged = [n for n in truth.flagged if n not in spec.flagged]
    return {"factors": factors, "epsilon": epsilon, "bits": bits, "literal_epsilon": literal_epsilon,
            "literal_bits": literal, "q_h_in_box": share, "point_bits": math.log2(1 / share) if share else None,
            "unflagged_truth_factors": unflagged}


def answers_floor(bits: float, p: float) -> float:
    """B / (1 − H₂(p)): infinite at p = ½."""
    capacity = 1 - binary_entropy(p)
    return bits / capacity if capacity > 0 else math.inf


def spec_only(spec: gmhf.Guidance, truth: gmhf.Guidance, reference: torch.Tensor, seeds: int) -> dict[str, Any]:
    """q_H's in-support share and MMD² to the truth over `seeds` draws, and the MMD²'s noise at this sample size.

    The tolerance: the larger of (a) the largest |MMD²| between two independent q_H draws of DRAWS rows
    (what the estimator reads when the distributions are equal) and (b) twice the standard deviation of
    spec-only's MMD² to the truth over the draws.
    """
    rows, self_mmd = [], []
    for seed in range(seeds):
        drawn = spec.sample(DRAWS, generator=named_stream("bench-steer-spec", seed)).values
        rows.append(measure(drawn, truth, reference))
        other = spec.sample(DRAWS, generator=named_stream("bench-steer-spec-other", seed)).values
        pooled = torch.cat([drawn, other])
        centre, spread = pooled.mean(0), pooled.std(0).clamp(min=1e-12)
        self_mmd.append(mmd((drawn - centre) / spread, (other - centre) / spread).value)
    values = torch.tensor([r["mmd"] for r in rows], dtype=torch.float64)
    inside = torch.tensor([r["in_support"] for r in rows], dtype=torch.float64)
    sd = float(values.std()) if len(values) > 1 else 0.0
    return {"mmd": float(values.median()), "mmd_sd": sd, "in_support": float(inside.median()),
            "in_support_sd": float(inside.std()) if len(inside) > 1 else 0.0,
            "self_mmd_max": max(abs(v) for v in self_mmd), "tolerance": max(max(abs(v) for v in self_mmd), 2 * sd),
            "draws": [r | {"seed": s} for s, r in enumerate(rows)], "self_mmd": self_mmd}
