"""Batched ODE solvers: many trajectories at once, each with its own parameters and its own fate.

A vector field is `f(t, y) -> dy/dt` with `y` of shape `[n, d]`; `t` is a float (fixed-step
solvers, where every trajectory is at the same time) or a tensor `[n]` (the adaptive solver, where
each trajectory keeps its own clock). Parameters live in the closure, one row per trajectory.

Both solvers return values on a requested output grid. A trajectory that turns non-finite or
exceeds `blowup` in absolute value is frozen, marked in `Solution.ok` and counted in
`Solution.failed`; its outputs from then on are NaN, and its batch mates are untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Solution", "VectorField", "adaptive", "first_failure", "is_uniform", "nan_from", "rk4", "solve",
           "substeps_for"]

VectorField = Callable[["float | Tensor", Tensor], Tensor]

# Dormand–Prince 5(4): nodes, stage weights, 5th-order weights, error weights (5th − 4th order).
DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
DP_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
# Weights giving y at the step's midpoint to 4th order (Shampine's dense output for DP5).
DP_MID = (6025192743 / 30085553152 / 2, 0.0, 51252292925 / 65400821598 / 2, -2691868925 / 45128329728 / 2,
          187940372067 / 1594534317056 / 2, -1776094331 / 19743644256 / 2, 11237099 / 235043384 / 2)


@dataclass(frozen=True)
class Solution:
    """Trajectories on the output grid.

    Attributes:
        t: output times `[t]`.
        y: values `[n, t, d]`; NaN from the moment a trajectory failed.
        ok: `[n]` True for trajectories that stayed finite and bounded to the end.
        failed: how many did not.
        evaluations: vector-field evaluations made (a cost measure independent of the machine).
    """

    t: Tensor
    y: Tensor
    ok: Tensor
    failed: int
    evaluations: int

    def __repr__(self) -> str:
        n, t, d = self.y.shape
        return f"Solution(y=f64[{n}, {t}, {d}], failed={self.failed}, evaluations={self.evaluations})"


def _check(y0: Tensor, t: Tensor) -> None:
    if y0.ndim != 2:
        raise ValueError(f"`y0` must have shape [n, d], got {list(y0.shape)}.")
    if t.ndim != 1 or t.numel() < 1 or bool((t[1:] <= t[:-1]).any()):
        raise ValueError("`t` must be a 1-d tensor of increasing output times.")


def _bad(y: Tensor, blowup: float) -> Tensor:
    return ~torch.isfinite(y).all(-1) | (y.abs() > blowup).any(-1)


def substeps_for(width: float, step: float) -> int:
    """Equal steps no longer than `step` (up to rounding) that split an interval of `width`.

    The tolerance is relative so that a float32 grid (0.1 stored as 0.10000000149) does not turn
    one step into two.
    """
    return max(1, math.ceil(width / step * (1 - 1e-6)))


def is_uniform(t: Tensor, *, rtol: float) -> bool:
    """True when `t` is a 1-d grid of at least two times whose gaps agree to within `rtol` of the first."""
    if t.ndim != 1 or len(t) < 2:
        return False
    gaps = t[1:] - t[:-1]
    return bool(torch.allclose(gaps, gaps[0].expand_as(gaps), rtol=rtol, atol=0.0))


def first_failure(y: Tensor, ok: Tensor, *, blowup: float) -> Tensor:
    """`[n]`: the first output index where each row of `y` `[n, t, d]` is non-finite or beyond `blowup`; `t` if `ok`."""
    bad = ~(y.abs() <= blowup).all(-1)  # [n, t]; NaN compares False
    return torch.where(ok, y.shape[1], bad.to(torch.uint8).argmax(-1))  # argmax: the first bad output


def nan_from(y: Tensor, failed_at: Tensor) -> Tensor:
    """Set `y` `[n, t, d]` to NaN from each row's `failed_at` `[n]` output on, in place; returns `y`."""
    late = torch.arange(y.shape[1], device=y.device)[None, :] >= failed_at[:, None]
    return y.masked_fill_(late[..., None], math.nan)


def rk4(f: VectorField, y0: Tensor, t: Tensor, *, step: float = 0.01, blowup: float = 1e6) -> Solution:
    """Classical 4th-order Runge–Kutta at a fixed step, for every trajectory at once.

    Each output interval is split into equal substeps no longer than `step`, so outputs land
    exactly on `t` without interpolation. In float64 at the default step it serves as ground truth.

    Args:
        f: the vector field `f(t, y)`; here `t` is a Python float.
        y0: initial states `[n, d]`.
        t: output times `[t]` (the first is the start time).
        step: the longest step.
        blowup: a state beyond this in absolute value counts as diverged.
    """
    _check(y0, t)
    times = t.tolist()
    out = y0.new_full((y0.shape[0], len(times), y0.shape[1]), math.nan)
    out[:, 0] = y0
    y, ok, evaluations = y0, torch.ones(y0.shape[0], dtype=torch.bool, device=y0.device), 0
    for i in range(len(times) - 1):
        substeps = substeps_for(times[i + 1] - times[i], step)
        h = (times[i + 1] - times[i]) / substeps
        for j in range(substeps):
            s = times[i] + j * h
            k1 = f(s, y)
            k2 = f(s + h / 2, y + (h / 2) * k1)
            k3 = f(s + h / 2, y + (h / 2) * k2)
            k4 = f(s + h, y + h * k3)
            y = y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        evaluations += 4 * substeps
        bad = _bad(y, blowup) & ok
        if bool(bad.any()):  # freeze the failed ones at zero so they cannot poison the rest
            ok = ok & ~bad
            y = torch.where(ok[:, None], y, torch.zeros_like(y))
        out[:, i + 1] = torch.where(ok[:, None], y, math.nan)
    return Solution(t=t, y=out, ok=ok, failed=int((~ok).sum()), evaluations=evaluations)


def adaptive(f: VectorField, y0: Tensor, t: Tensor, *, rtol: float = 1e-7, atol: float = 1e-9,
             first_step: float | None = None, max_steps: int = 100_000, blowup: float = 1e6) -> Solution:
    """Dormand–Prince 5(4) with error control per trajectory, outputs by 4th-order dense output.

    Every trajectory keeps its own time and step size: a stiff or fast one takes small steps while
    its batch mates keep long ones (error control averaged over the batch lets the worst
    trajectories exceed the tolerance). All trajectories are stepped together; those finished or
    failed stand still.

    Args:
        f: the vector field `f(t, y)`; here `t` is a tensor `[n]` of per-trajectory times.
        y0: initial states `[n, d]`.
        t: output times `[t]`.
        rtol, atol: per-component tolerances of the local error estimate.
        first_step: initial step (default: 1% of the span).
        max_steps: steps after which unfinished trajectories count as failed.
        blowup: a state beyond this in absolute value counts as diverged.
    """
    # Long: one Dormand–Prince step (stages, error, acceptance, step size) reads best whole.
    _check(y0, t)
    n, d = y0.shape
    grid = t.to(y0)
    end = float(grid[-1])
    out = y0.new_full((n, len(grid), d), math.nan)
    out[:, 0] = y0
    now = y0.new_full((n,), float(grid[0]))
    h = y0.new_full((n,), first_step or 0.01 * (end - float(grid[0])))
    nxt = torch.ones(n, dtype=torch.long, device=y0.device)  # index of the next output time to fill
    y, ok = y0.clone(), torch.ones(n, dtype=torch.bool, device=y0.device)
    active = nxt < len(grid)
    k1 = f(now, y)
    evaluations = 1
    for _ in range(max_steps):
        if not bool(active.any()):
            break
        h = torch.minimum(h, end - now).clamp_min(1e-12)
        stages = [k1]
        for c, row in zip(DP_C[1:], DP_A[1:], strict=True):
            increment = sum(a * k for a, k in zip(row, stages, strict=False) if a)
            stages.append(f(now + c * h, y + h[:, None] * increment))
        evaluations += 6
        y_new = y + h[:, None] * sum(b * k for b, k in zip(DP_B, stages, strict=True) if b)
        error = h[:, None] * sum(e * k for e, k in zip(DP_E, stages, strict=True) if e)
        scale = atol + rtol * torch.maximum(y.abs(), y_new.abs())
        norm = (error / scale).pow(2).mean(-1).sqrt()
        bad = _bad(y_new, blowup) & active
        accept = active & (norm <= 1) & ~bad
        if bool(accept.any()):
            _fill(out, grid, nxt, accept, now, h, y, y_new, stages)
        now = torch.where(accept, now + h, now)
        y = torch.where(accept[:, None], y_new, y)
        k1 = torch.where(accept[:, None], stages[-1], k1)  # first same as last
        factor = (0.9 * norm.clamp_min(1e-10).pow(-0.2)).clamp(0.2, 10.0)
        h = torch.where(active & ~bad, h * factor, h)
        ok = ok & ~bad
        active = active & ~bad & (nxt < len(grid))
    ok = ok & ~active  # still running after max_steps: what was reached stays, the rest is NaN
    return Solution(t=t, y=out, ok=ok, failed=int((~ok).sum()), evaluations=evaluations)


def _fill(out: Tensor, grid: Tensor, nxt: Tensor, accept: Tensor, now: Tensor, h: Tensor, y0: Tensor,
          y1: Tensor, stages: list[Tensor]) -> None:
    """Write every output time crossed by an accepted step, by DP5's 4th-order dense output."""
    f0, f1 = stages[0], stages[-1]
    y_mid = y0 + h[:, None] * sum(m * k for m, k in zip(DP_MID, stages, strict=True) if m)
    dt = h[:, None]
    a = 2 * dt * (f1 - f0) - 8 * (y1 + y0) + 16 * y_mid
    b = dt * (5 * f0 - 3 * f1) + 18 * y0 + 14 * y1 - 32 * y_mid
    c = dt * (f1 - 4 * f0) - 11 * y0 - 5 * y1 + 16 * y_mid
    d = dt * f0
    last = len(grid) - 1
    while True:
        target = grid[nxt.clamp_max(last)]
        due = accept & (nxt <= last) & (target <= now + h * (1 + 1e-12))
        if not bool(due.any()):
            return
        x = ((target - now) / h).clamp(0, 1)[:, None]
        value = (((a * x + b) * x + c) * x + d) * x + y0
        rows = due.nonzero().squeeze(-1)
        out[rows, nxt[rows]] = value[rows]
        nxt += due.long()


def solve(f: VectorField, y0: Tensor, t: Tensor, *, method: str = "rk4", **options: float) -> Solution:
    """Integrate with a solver named `"rk4"` or `"adaptive"` (options go to that solver)."""
    solvers: dict[str, Callable[..., Solution]] = {"rk4": rk4, "adaptive": adaptive}
    if method not in solvers:
        raise ValueError(f"`method` must be one of {sorted(solvers)}, got {method!r}.")
    return solvers[method](f, y0, t, **options)
