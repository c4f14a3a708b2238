"""Adams–Bashforth–Moulton (PECE) written out for the Duffing equation: two field evaluations a step.

Eager torch on a CPU pays a few µs per op and a few ns per element, so a solver's cost is its ops
per output interval. RK4 needs four evaluations a step plus the stage sums (about 30 ops), and on
the shifted target box one step per output interval is not accurate enough. A linear multistep
method reuses the past: predict from the last `order` derivatives (Adams–Bashforth), evaluate,
correct (Adams–Moulton), evaluate again — about 11 ops a step, and at order 8 one step per output
interval keeps the error near 1e-5 on the source and target boxes (measured in bench/ode.py).

The layout makes the history sums single BLAS calls: each step's row of one buffer holds
(x, v, a) for the whole batch, so the derivative (v, a) of the state (x, v) is a contiguous slice,
and a window of `order` past rows is a strided matrix. One `addmm` gives both the predictor and the
history part of the corrector; forcing γcos(ωt) is taken once for the whole grid.

Stability shrinks with order: with |hλ| up to about 0.45 (the target box's stiffest oscillators at
h ≈ 0.1) order 10 already diverged, order 8 did not. Rows are independent (a non-finite trajectory
cannot touch its batch mates), so failures are found once, at the end, on the output grid.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction

import torch
from torch import Tensor

from gmhf.core.ode import Solution, substeps_for
from gmhf.plugins.duffing_rk4 import duffing_rk4

__all__ = ["ORDER", "adams_weights", "duffing_adams"]

#: Default order: the highest that stayed stable on the benchmark boxes at one step per output interval.
ORDER = 8
#: Steps between two moves of the history to the front of its buffer.
RING = 16
#: Forcing times per cosine evaluated: the rest come by angle addition.
BLOCK = 16


def _integrate_basis(nodes: list[Fraction], j: int) -> Fraction:
    """∫₀¹ of the Lagrange basis polynomial of node j (nodes in units of the step)."""
    coefficients = [Fraction(1)]  # lowest degree first
    denominator = Fraction(1)
    for m, node in enumerate(nodes):
        if m != j:
            coefficients = [Fraction(0), *coefficients]
            for i in range(len(coefficients) - 1):
                coefficients[i] -= node * coefficients[i + 1]
            denominator *= nodes[j] - node
    return sum((c / (i + 1) for i, c in enumerate(coefficients)), Fraction(0)) / denominator


@functools.cache
def adams_weights(order: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Bashforth and Moulton weights of one order, oldest derivative first (exact fractions, then floats).

    Bashforth uses the derivatives at steps n−order+1 … n; Moulton those at n−order+2 … n+1.
    """
    if order < 2:
        raise ValueError(f"`order` must be at least 2, got {order!r}.")
    bashforth = [_integrate_basis([Fraction(-i) for i in range(order)], j) for j in range(order)]
    moulton = [_integrate_basis([Fraction(1 - i) for i in range(order)], j) for j in range(order)]
    return tuple(float(w) for w in reversed(bashforth)), tuple(float(w) for w in reversed(moulton))


def duffing_adams(theta: Tensor, t: Tensor, *, step: float = 0.1, order: int = ORDER,
                  blowup: float = 1e6) -> Solution:
    """Integrate x'' + δx' + αx + βx³ = γcos(ωt) for θ `[n, 7]` (δ, α, β, γ, ω, x0, v0) on a uniform `t`.

    Adams–Bashforth–Moulton PECE of `order`, every output interval split into equal steps no
    longer than `step`; the first `order − 1` steps come from RK4 at half the step. Float64.
    """
    spacing = t[1:] - t[:-1]
    if t.ndim != 1 or len(t) < 2 or not torch.allclose(spacing, spacing[0].expand_as(spacing), rtol=1e-9, atol=0):
        raise ValueError("`t` must be a uniform grid of at least two times for the fused Duffing solver.")
    theta = theta.to(torch.float64)
    n = len(theta)
    substeps = substeps_for(float(spacing[0]), step)
    h = float(spacing[0]) / substeps
    steps = (len(t) - 1) * substeps
    delta, alpha, beta, gamma, omega = (theta[:, i].contiguous() for i in range(5))
    force = _forcing(gamma, omega, float(t[0]), h, steps + 1)  # [steps + 1, n]
    scratch = theta.new_empty(n)

    def acceleration(x: Tensor, v: Tensor, f: Tensor, out: Tensor) -> None:
        torch.mul(x, x, out=scratch)
        torch.addcmul(alpha, beta, scratch, out=scratch)
        torch.addcmul(f, delta, v, value=-1, out=out).addcmul_(scratch, x, value=-1)

    warm = min(order, steps + 1)  # rows filled by RK4 before the multistep method takes over
    first = float(t[0]) + h * torch.arange(warm, dtype=torch.float64)
    start = duffing_rk4(theta, first, step=h / 2, blowup=math.inf).y if warm > 1 else theta[:, None, 5:7]
    ring = theta.new_empty(warm + RING, 3 * n)  # row: x, v, a at one step; the last `order` rows are the history
    ring[:warm, :n], ring[:warm, n:2 * n] = start[:, :, 0].T, start[:, :, 1].T
    x, v = ring[:warm, :n], ring[:warm, n:2 * n]
    ring[:warm, 2 * n:] = force[:warm] - delta * v - (alpha + beta * x * x) * x
    outputs = theta.new_empty(len(t), 2 * n)  # row j: x then v at t[j]
    outputs[: (warm - 1) // substeps + 1] = ring[:warm:substeps, :2 * n]
    if warm < steps + 1:
        _march(ring, outputs, force, acceleration, h=h, order=order, substeps=substeps)
    y = outputs.view(len(t), 2, n).permute(2, 0, 1)  # [n, t, 2], a view: a transposing copy costs as much as a solve
    high, low = outputs.amax(0), outputs.amin(0)  # no temporary the size of the outputs; NaN propagates
    ok = (high.le(blowup) & low.ge(-blowup)).view(2, n).all(0)  # NaN compares False
    if not bool(ok.all()):
        bad = ~(y.abs() <= blowup).all(-1)  # [n, t]
        failed_at = torch.where(ok, len(t), bad.to(torch.uint8).argmax(-1))  # argmax: the first bad output
        y.masked_fill_((torch.arange(len(t))[None, :] >= failed_at[:, None])[..., None], math.nan)
    evaluations = 8 * (warm - 1) + warm + 2 * (steps + 1 - warm)
    return Solution(t=t, y=y, ok=ok, failed=int((~ok).sum()), evaluations=evaluations)


def _forcing(gamma: Tensor, omega: Tensor, start: float, h: float, count: int) -> Tensor:
    """γcos(ω(start + ih)) for i < count, `[count, n]`, from BLOCK + count/BLOCK cosines by angle addition."""
    blocks = -(-count // BLOCK)
    coarse = omega * (start + h * BLOCK * torch.arange(blocks, dtype=torch.float64))[:, None]  # [blocks, n]
    fine = omega * (h * torch.arange(BLOCK, dtype=torch.float64))[:, None]  # [BLOCK, n]
    force = torch.mul((gamma * torch.cos(coarse))[:, None], torch.cos(fine))
    force.addcmul_((gamma * torch.sin(coarse))[:, None], torch.sin(fine), value=-1)
    return force.view(blocks * BLOCK, -1)[:count]


def _march(ring: Tensor, outputs: Tensor, force: Tensor, acceleration: Callable[[Tensor, Tensor, Tensor, Tensor], None],
           *, h: float, order: int, substeps: int) -> None:
    """PECE from step `order − 1` on: one addmm (predictor and corrector history), two evaluations a step.

    The history lives in `ring`; when its end is reached the newest `order` rows move to the
    front (one copy every RING steps). Views of every ring row are made once, not once a step.
    """
    n = ring.shape[1] // 3
    bashforth, moulton = adams_weights(order)
    weights = torch.tensor([[b * h for b in bashforth], [0.0, *(m * h for m in moulton[:-1])]],
                           dtype=torch.float64)  # [2, order]: predictor; corrector without its newest term
    newest = moulton[-1] * h
    sums = ring.new_empty(2, 2 * n)
    x_p, v_p, x_c, v_c = sums[0, :n], sums[0, n:], sums[1, :n], sums[1, n:]
    a_p = ring.new_empty(n)
    rows = [(r[None, :2 * n], r[:n], r[n:2 * n], r[2 * n:]) for r in ring]
    windows = [ring[max(r - order + 1, 0):r + 1, n:] for r in range(len(ring))]  # rows < order − 1 go unused
    r = order - 1  # ring row of the newest step
    for step in range(order - 1, len(force) - 1):
        if r + 1 == len(ring):
            ring[:order] = ring[len(ring) - order:]
            r = order - 1
        state, window = rows[r][0], windows[r]
        torch.addmm(state, weights, window, out=sums)
        f = force[step + 1]
        acceleration(x_p, v_p, f, a_p)
        _, x_new, v_new, a_new = rows[r + 1]
        torch.add(x_c, v_p, alpha=newest, out=x_new)
        torch.add(v_c, a_p, alpha=newest, out=v_new)
        acceleration(x_new, v_new, f, a_new)
        r += 1
        if (step + 1) % substeps == 0:
            outputs[(step + 1) // substeps] = rows[r][0][0]
