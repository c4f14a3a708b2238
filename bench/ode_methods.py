"""bench/ode.py's contenders: each solver with its ladder of settings, cheapest first."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from common import Counted  # bench/common.py (run as a script)
from ode_problems import HORIZON, POINTS
from torch import Tensor

from gmhf.core.ode import Solution, adaptive, rk4, substeps_for
from gmhf.domains.duffing.adams import ORDER as ADAMS_ORDER
from gmhf.domains.duffing.adams import duffing_adams
from gmhf.domains.duffing.rk4 import duffing_rk4

STEPS = (0.4, 0.25, 0.2, 0.15, 0.1, 0.075, 0.05, 0.025, 0.0125)
TOLERANCES = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7, 1e-8, 1e-9)
#: Each method's own flops per evaluation besides the field (2 state components, an FMA = 2 flops): RK4's stage
#: states and update, 14 FMAs a step of 4 evaluations; Dormand–Prince 5 (and 8 about alike), 34 FMAs a step of 6;
#: Adams PECE, predictor and corrector sums over ORDER past derivatives plus the newest term, a step of 2.
RK4_SUMS = 2 * 14 * 2 / 4
DOPRI5_SUMS = 2 * 34 * 2 / 6
ADAMS_SUMS = 2 * (2 * ADAMS_ORDER + 1) * 2 / 2

Runner = Callable[[Callable[[Any, Tensor], Tensor], Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Setting:
    """One rung of a method's ladder: what the table prints, and how to solve at it (y `[n, t, d]`)."""

    label: str
    run: Runner


@dataclass
class Method:
    """A solver with its ladder of settings, cheapest first, and its own flops per evaluation besides the field's."""

    name: str
    library: str
    ladder: list[Setting]
    sum_flops: float
    goal_peer: bool = True  # torchdiffeq's rk4 and dopri5: the methods the goal names


def gmhf_methods(spacing: float) -> list[Method]:
    """gmhf rk4 over the step ladder (rungs with the same effective step dropped), adaptive over tolerances, and
    the Duffing domain's fused solvers (RK4, and Adams PECE of order 8) over the same steps."""
    steps = [Setting(f"step {step:g} (h={spacing / substeps_for(spacing, step):.4f})",
                     lambda f, y0, t, step=step: rk4(f, y0, t, step=step).y) for step in _distinct_steps(spacing)]
    tolerances = [Setting(f"rtol=atol={tol:g}", lambda f, y0, t, tol=tol: adaptive(f, y0, t, rtol=tol, atol=tol).y)
                  for tol in TOLERANCES]
    fused = [Setting(s.label, lambda f, y0, t, step=step: _fused(duffing_rk4, f, t, step))
             for s, step in zip(steps, _distinct_steps(spacing), strict=True)]
    adams = [Setting(s.label, lambda f, y0, t, step=step: _fused(duffing_adams, f, t, step))
             for s, step in zip(steps, _distinct_steps(spacing), strict=True)]
    return [Method("gmhf rk4", "gmhf", steps, RK4_SUMS), Method("gmhf adaptive", "gmhf", tolerances, DOPRI5_SUMS),
            Method("gmhf duffing rk4 (fused)", "gmhf", fused, RK4_SUMS),
            Method(f"gmhf duffing adams{ADAMS_ORDER} (fused)", "gmhf", adams, ADAMS_SUMS)]


def _distinct_steps(spacing: float) -> list[float]:
    """The rungs of STEPS that give distinct effective steps (as the rk4 ladder keeps them)."""
    kept, seen = [], set()
    for step in STEPS:
        substeps = substeps_for(spacing, step)
        if substeps not in seen:
            seen.add(substeps)
            kept.append(step)
    return kept


def _fused(solver: Callable[..., Solution], f: Any, t: Tensor, step: float) -> Tensor:
    """One of the Duffing domain's own solvers (fewer torch ops than the generic ones); it needs θ, not f."""
    solution = solver(f.theta, t, step=step)
    if isinstance(f, Counted):  # during the search, count its evaluations like the others'
        f.calls += solution.evaluations
    return solution.y


def torchdiffeq_methods(spacing: float) -> list[Method]:
    """torchdiffeq rk4 (step_size with linear or cubic output interpolation, or a grid on the outputs), dopri5,
    and, beyond the issue's goal, its Adams–Bashforth(–Moulton) on gmhf's grids and dopri8.

    The rk4 rungs are ordered by their evaluation count, so the first that passes is the cheapest.
    """
    from torchdiffeq import odeint  # type: ignore[import-not-found]

    span = HORIZON[1] - HORIZON[0]
    rungs: list[tuple[int, Setting]] = []
    for step in STEPS:
        for interp in ("linear", "cubic"):
            evaluations = 4 * math.ceil(span / step - 1e-9) + (POINTS - 1 if interp == "cubic" else 0)
            rungs.append((evaluations, Setting(
                f"step_size {step:g}, {interp} interp",
                lambda f, y0, t, step=step, interp=interp: odeint(
                    f, y0, t, method="rk4", options={"step_size": step, "interp": interp}).transpose(0, 1))))
    for substeps in range(1, 7):  # what gmhf rk4 does: each output interval split into equal steps, no interpolation
        rungs.append((4 * (POINTS - 1) * substeps, Setting(f"grid = outputs/{substeps} (h={spacing / substeps:.4f})",
                                                           _on_grid(odeint, "rk4", substeps))))
    rungs.sort(key=lambda rung: rung[0])
    adams = [Setting(f"{kind}, max_order {order}, grid = outputs/{substeps}",
                     _on_grid(odeint, kind, substeps, {"max_order": order}))
             for substeps in (1, 2, 3) for kind in ("explicit_adams", "implicit_adams") for order in (8, 12)]

    def adaptive_rungs(method: str) -> list[Setting]:
        return [Setting(f"rtol=atol={tol:g}", lambda f, y0, t, tol=tol: odeint(
            f, y0, t, method=method, rtol=tol, atol=tol).transpose(0, 1)) for tol in TOLERANCES]

    return [Method("torchdiffeq rk4", "torchdiffeq", [setting for _, setting in rungs], RK4_SUMS),
            Method("torchdiffeq dopri5", "torchdiffeq", adaptive_rungs("dopri5"), DOPRI5_SUMS),
            Method("torchdiffeq adams", "torchdiffeq", adams, ADAMS_SUMS, goal_peer=False),
            Method("torchdiffeq dopri8", "torchdiffeq", adaptive_rungs("dopri8"), DOPRI5_SUMS, goal_peer=False)]


def _on_grid(odeint: Callable[..., Tensor], method: str, substeps: int, options: dict[str, Any] | None = None) -> Runner:
    """torchdiffeq `method` stepping exactly as gmhf's fixed-step solvers do: output intervals split in equal steps."""

    def run(f: Any, y0: Tensor, t: Tensor) -> Tensor:
        fractions = torch.arange(substeps, dtype=t.dtype) / substeps
        grid = torch.cat([(t[:-1, None] + (t[1:] - t[:-1])[:, None] * fractions).reshape(-1), t[-1:]])
        return odeint(f, y0, t, method=method,
                      options={**(options or {}), "grid_constructor": lambda func, y, times: grid}).transpose(0, 1)

    return run

