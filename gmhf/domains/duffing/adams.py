"""Adams–Bashforth–Moulton (PECE) written out for the Duffing equation: two field evaluations a step.

Eager torch on a CPU pays a few µs per op and a few ns per element, so a solver's cost is its ops
per output interval. RK4 needs four evaluations a step plus the stage sums (about 30 ops), and on
the shifted target box one step per output interval is not accurate enough. A linear multistep
method reuses the past: predict from the last `order` derivatives (Adams–Bashforth), evaluate,
correct (Adams–Moulton), evaluate again — 11 ops a step, and at order 8 one step per output
interval keeps the error near 1e-5 on the source and target boxes (measured in bench/ode.py).

The layout makes the history sums BLAS calls: each step's row of the state buffer holds (x, v)
for the whole batch and a ring holds the accelerations, so a window of `order` past v (or a) is a
strided matrix, and one `addmm` gives x's (or v's) predictor together with the history part of its
corrector. One `add` then corrects x and v together. At one step per output interval the state rows
are the outputs themselves (no copies; `y` is a view of them). The forcing γcos(ωt) and the blow-up
check are done a block of steps at a time, on rows still in cache. At B = 8,192 memory is what
costs: a pass over the whole output afterwards took a tenth of the solve, and buffers above glibc's
32 MiB mmap ceiling are returned to the kernel and page-faulted afresh on every call (a third of
the solve on the benchmark machine), so nothing but the output is that large.

Stability shrinks with order: with |hλ| up to about 0.45 (the target box's stiffest oscillators at
h ≈ 0.1) order 10 already diverged, order 8 did not. Rows are independent (a non-finite trajectory
cannot touch its batch mates), so failures are found from the extremes of each block's outputs.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import torch
from torch import Tensor

from gmhf.core.ode import Solution, first_failure, is_uniform, nan_from, substeps_for
from gmhf.domains.duffing.rk4 import duffing_rk4

__all__ = ["ORDER", "adams_weights", "duffing_adams"]

#: Default order: the highest that stayed stable on the benchmark boxes at one step per output interval.
ORDER = 8
#: Steps per block: the forcing and the blow-up check are computed a block at a time, on rows in cache.
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
    if not is_uniform(t, rtol=1e-9):
        raise ValueError("`t` must be a uniform grid of at least two times for the fused Duffing solver.")
    theta = theta.to(torch.float64)
    n = len(theta)
    width = float(t[1] - t[0])
    substeps = substeps_for(width, step)
    h = width / substeps
    steps = (len(t) - 1) * substeps
    # Row j of `outputs`: x then v at t[j]. With one step per output interval the steps' states are
    # written there directly; otherwise into a ring of recent rows, and copied out at output times.
    # Allocated before anything else: glibc can then hand back a block it already holds, where
    # after the start-up's temporaries it often has to map fresh pages (a fault per 4 KiB page).
    outputs = theta.new_empty(len(t), 2 * n)
    states = outputs if substeps == 1 else theta.new_empty(min(steps + 1, order + BLOCK), 2 * n)
    slopes = theta.new_empty(min(steps + 1, order + BLOCK), n)  # a ring of accelerations
    warm = min(order, steps + 1)  # rows filled by RK4 before the multistep method takes over
    first = float(t[0]) + h * torch.arange(warm, dtype=torch.float64, device=theta.device)
    start = duffing_rk4(theta, first, step=h / 2, blowup=math.inf).y if warm > 1 else theta[:, None, 5:7]
    x, v = start[:, :, 0].T, start[:, :, 1].T
    states[:warm, :n], states[:warm, n:] = x, v
    delta, alpha, beta, gamma, omega = (theta[:, i] for i in range(5))
    slopes[:warm] = gamma * torch.cos(omega * first[:, None]) - delta * v - (alpha + beta * x * x) * x
    written = (warm - 1) // substeps + 1
    if substeps > 1:
        outputs[:written] = states[:warm:substeps]
    high, low = outputs[:written].amax(0), outputs[:written].amin(0)  # NaN propagates
    if warm < steps + 1:
        _march(theta, states, slopes, outputs, (high, low), h=h, start=float(t[0]), order=order, substeps=substeps)
    y = outputs.view(len(t), 2, n).permute(2, 0, 1)  # [n, t, 2], a view: a transposing copy costs as much as a solve
    ok = (high.le(blowup) & low.ge(-blowup)).view(2, n).all(0)  # NaN compares False
    if not bool(ok.all()):
        nan_from(y, first_failure(y, ok, blowup=blowup))
    evaluations = 8 * (warm - 1) + warm + 2 * (steps + 1 - warm)
    return Solution(t=t, y=y, ok=ok, failed=int((~ok).sum()), evaluations=evaluations)


def _march(theta: Tensor, states: Tensor, slopes: Tensor, outputs: Tensor, extremes: tuple[Tensor, Tensor], *,
           h: float, start: float, order: int, substeps: int) -> None:
    """PECE from step `order − 1` on, BLOCK steps at a time, updating the outputs' running `extremes`.

    A step: two addmm (x's predictor and corrector history from past v, v's from past a), the
    predicted acceleration, one add (x and v corrected together), the corrected acceleration. Per
    block: the forcing of its steps by angle addition, and the extremes of its outputs, on rows
    still in cache. A ring moves its newest `order` rows to the front before it fills.
    """
    # Long: a hot loop whose rings and scratch buffers every step shares, kept in one frame.
    n = theta.shape[0]
    steps = (len(outputs) - 1) * substeps
    delta, alpha, beta, gamma, omega = (theta[:, i].contiguous() for i in range(5))
    bashforth, moulton = adams_weights(order)
    # [2, order]: the predictor; the corrector without its newest term
    weights = theta.new_tensor([[b * h for b in bashforth], [0.0, *(m * h for m in moulton[:-1])]])
    newest = moulton[-1] * h
    sums = theta.new_empty(2, 3 * n)  # row 0: predicted x, v, a; row 1: corrector sums for x, v
    to_x, to_v, predicted, corrected = sums[:, :n], sums[:, n:2 * n], sums[0, n:], sums[1, :2 * n]
    x_p, v_p, a_p = sums[0].view(3, n).unbind(0)
    scratch, high, low = theta.new_empty(n), *extremes
    block_high, block_low = torch.empty_like(high), torch.empty_like(low)

    def acceleration(x: Tensor, v: Tensor, f: Tensor, out: Tensor) -> None:
        torch.mul(x, x, out=scratch)
        torch.addcmul(alpha, beta, scratch, out=scratch)
        torch.addcmul(f, delta, v, value=-1, out=out).addcmul_(scratch, x, value=-1)

    fine = omega * (h * torch.arange(1, BLOCK + 1, dtype=torch.float64, device=theta.device))[:, None]  # [BLOCK, n]
    fine_cos, fine_sin = torch.cos(fine), torch.sin(fine)
    force = theta.new_empty(BLOCK, n)
    rows, ring = states.unbind(0), slopes.unbind(0)
    xs, vs = states[:, :n].unbind(0), states[:, n:].unbind(0)
    v_windows = states[:, n:].unfold(0, order, 1).transpose(1, 2).unbind(0)  # window w: rows w … w + order − 1
    a_windows = slopes.unfold(0, order, 1).transpose(1, 2).unbind(0)
    r = s = order - 1  # rows of the newest step in `states` and in `slopes`
    checked = (order - 1) // substeps + 1  # outputs already in the extremes
    for begin in range(order - 1, steps, BLOCK):
        end = min(begin + BLOCK, steps)
        if s + end - begin >= len(slopes):  # a ring would overflow: newest `order` rows to the front
            slopes[:order] = slopes[s - order + 1:s + 1].clone()
            s = order - 1
            if states is not outputs:
                states[:order] = states[r - order + 1:r + 1].clone()
                r = order - 1
        coarse = omega * (start + begin * h)
        torch.mul(fine_cos, gamma * torch.cos(coarse), out=force).addcmul_(fine_sin, gamma * torch.sin(coarse),
                                                                           value=-1)  # steps begin+1 … begin+BLOCK
        for step in range(begin, end):
            f = force[step - begin]
            torch.addmm(xs[r], weights, v_windows[r - order + 1], out=to_x)
            torch.addmm(vs[r], weights, a_windows[s - order + 1], out=to_v)
            acceleration(x_p, v_p, f, a_p)
            torch.add(corrected, predicted, alpha=newest, out=rows[r + 1])
            acceleration(xs[r + 1], vs[r + 1], f, ring[s + 1])
            r, s = r + 1, s + 1
            if states is not outputs and (step + 1) % substeps == 0:
                outputs[(step + 1) // substeps] = rows[r]
        done = end // substeps + 1
        if done > checked:
            torch.maximum(high, torch.amax(outputs[checked:done], 0, out=block_high), out=high)
            torch.minimum(low, torch.amin(outputs[checked:done], 0, out=block_low), out=low)
            checked = done
