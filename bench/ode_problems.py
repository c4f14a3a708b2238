"""bench/ode.py's problems: the settings, source and target θ, the output grid and the checked reference."""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from common import ROOT  # bench/common.py (run as a script)
from torch import Tensor

import gmhf
from gmhf.core.ode import rk4
from gmhf.domains.duffing import vector_field

TRUTH = ROOT / "gmhf" / "domains" / "duffing" / "truth.guide"
SEED = 0
BATCHES = (1_024, 8_192)
SEARCH_BATCH = 1_024
HORIZON, POINTS = (0.0, 20.0), 200
#: Equal accuracy: max abs error against the reference.
TOLERANCE = 1e-4
REFERENCE_STEP = 0.005
CHECK_SUBSET = 64


@dataclass
class Box:
    """θ for one box at the largest B, with its reference solution and the reference's check."""

    name: str
    theta: Tensor
    reference: Tensor = field(default_factory=lambda: torch.empty(0))
    reference_s: float = 0.0
    check_error: float = math.nan

    def problem(self, n: int) -> tuple[Callable[[Any, Tensor], Tensor], Tensor, Tensor]:
        """Field, initial states and reference of the first `n` trajectories."""
        theta = self.theta[:n]
        return vector_field(theta), theta[:, 5:7].contiguous(), self.reference[:n]


def boxes() -> list[Box]:
    """Source and target θ, B = max(BATCHES) each (the smaller batches are their first rows)."""
    n = max(BATCHES)
    source = gmhf.load("domain duffing\n").sample(n, seed=SEED).values
    target = gmhf.load(TRUTH).sample(n, seed=SEED).values
    return [Box("source", source.to(torch.float64)), Box("target", target.to(torch.float64))]


def grid() -> Tensor:
    """The output times."""
    return torch.linspace(*HORIZON, POINTS, dtype=torch.float64)


def solve_reference(box: Box, t: Tensor) -> None:
    """gmhf rk4 at REFERENCE_STEP on the whole batch, checked against scipy DOP853 on CHECK_SUBSET trajectories."""
    f, y0 = vector_field(box.theta), box.theta[:, 5:7].contiguous()
    start = time.perf_counter()
    box.reference = rk4(f, y0, t, step=REFERENCE_STEP).y
    box.reference_s = time.perf_counter() - start
    if importlib.util.find_spec("scipy") is None:
        return
    from scipy.integrate import solve_ivp

    times = t.numpy()
    worst = 0.0
    for row in torch.linspace(0, len(box.theta) - 1, CHECK_SUBSET).round().long().tolist():
        delta, alpha, beta, gamma, omega, x0, v0 = box.theta[row].tolist()

        def duffing(s: float, y: Any, d: float = delta, a: float = alpha, b: float = beta, g: float = gamma,
                    w: float = omega) -> list[float]:
            return [y[1], g * math.cos(w * s) - d * y[1] - (a + b * y[0] * y[0]) * y[0]]

        solution = solve_ivp(duffing, HORIZON, [x0, v0], method="DOP853", t_eval=times, rtol=1e-10, atol=1e-12)
        worst = max(worst, float(abs(solution.y.T - box.reference[row].numpy()).max()))
    box.check_error = worst


def max_error(y: Tensor, reference: Tensor) -> float:
    """Max abs difference; inf when the solution has non-finite values."""
    difference = (y - reference).abs()
    return float(difference.max()) if bool(torch.isfinite(difference).all()) else math.inf

