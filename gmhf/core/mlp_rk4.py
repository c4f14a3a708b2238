"""Classical RK4 through an MLP field, with the backward pass written out: a cNODE step in few ops.

Through autograd, each RK4 stage of a small MLP costs a dozen recorded ops forward and more
backward, and eager torch on a CPU pays per op, not per flop. Here the whole rollout is one autograd
node. Forward, a stage is `addmm`, `sigmoid_` per hidden layer and one `addmm` out, writing into
preallocated buffers; backward walks the steps in reverse (the exact gradient of the discrete RK4
map, as autograd would give) and computes every weight gradient in ONE matmul over all stages at
the end, instead of one per stage.

The field is `f(y) = W_L σ(… σ(y A + P[j]) …) + b_L` where `P[j]` `[n, hidden]` is whatever the
first layer adds besides the state at stage time j (conditioning, bias, time features): the caller
computes it once per rollout for every stage time (`Schedule.times`), with ordinary autograd, and
gets its gradient back. A tanh network enters through tanh(z) = 2σ(2z) − 1 with the factors folded
into the weights (`from_tanh`): the same function, and torch's float32 sigmoid costs a third of its
tanh. `ConditionalNODE.rollout` folds its normalisations into A and W_L as well.

Steps follow `gmhf.core.ode.rk4` exactly: each output interval split into equal substeps no longer
than `step`. A trajectory that turns non-finite or exceeds `blowup` at an output time is flagged
(`ok` False), NaN from there on, and passes no gradient; rows never mix, so its batch mates are
untouched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from gmhf.core.ode import substeps_for

__all__ = ["Schedule", "from_tanh", "mlp_rk4", "schedule"]

Layer = tuple[Tensor, Tensor]  # (weight transposed [in, out], bias [out])


@dataclass(frozen=True)
class Schedule:
    """The RK4 steps over an output grid.

    Attributes:
        times: the distinct stage times, relative (as `rk4` computes them: s, s + h/2, s + h).
        steps: per step, (h, index in `times` of stage 1, of stages 2 and 3, of stage 4).
        outputs: per output time, the number of steps taken before it.
    """

    times: tuple[float, ...]
    steps: tuple[tuple[float, int, int, int], ...]
    outputs: tuple[int, ...]


def schedule(grid: Sequence[float], step: float) -> Schedule:
    """The steps `gmhf.core.ode.rk4` takes over `grid` with longest step `step`."""
    index: dict[float, int] = {}

    def at(time: float) -> int:
        return index.setdefault(time, len(index))

    steps, outputs = [], [0]
    for i in range(len(grid) - 1):
        substeps = substeps_for(grid[i + 1] - grid[i], step)
        h = (grid[i + 1] - grid[i]) / substeps
        for j in range(substeps):
            s = grid[i] + j * h
            steps.append((h, at(s), at(s + h / 2), at(s + h)))
        outputs.append(len(steps))
    return Schedule(tuple(index), tuple(steps), tuple(outputs))


def mlp_rk4(y0: Tensor, pre: Tensor, w_state: Tensor, layers: Sequence[Layer], plan: Schedule, *,
            blowup: float = math.inf) -> tuple[Tensor, Tensor]:
    """Integrate dy/dt = MLP(y, stage time) from `y0` `[n, d]`: values `[n, t, d]` on the grid and `ok` `[n]`.

    Args:
        y0: initial states.
        pre: `[len(plan.times), n, hidden]`, the first layer's input besides the state, per stage time.
        w_state: `[d, hidden]`, the first layer's weight on the state (transposed).
        layers: the later layers as (weight transposed, bias); σ between layers, none after the last.
        plan: the steps (`schedule`).
        blowup: a state beyond this in absolute value at an output time counts as diverged.

    Differentiable in every tensor argument; no autograd graph is recorded inside, and without
    gradients no per-stage activations are kept (memory stays flat in the horizon).
    """
    flat = [tensor for layer in layers for tensor in layer]
    if torch.is_grad_enabled() and any(x.requires_grad for x in (y0, pre, w_state, *flat)):
        y, ok = _RK4Function.apply(plan, blowup, y0, pre, w_state, *flat)
        return y, ok
    with torch.no_grad():
        y, ok, _ = _forward(y0, pre, w_state, list(layers), plan, blowup, keep=False)
    return y, ok


def from_tanh(pre: Tensor, w_state: Tensor, layers: Sequence[Layer]) -> tuple[Tensor, Tensor, list[Layer]]:
    """The same network with σ for tanh: tanh(z) = 2σ(2z) − 1, the 2s and the −1 folded into the weights.

    Differentiable (plain torch ops), so gradients reach the tanh network's own weights.
    """
    out = []
    for w, b in layers[:-1]:  # 2·((2s − 1) W + b) = s (4W) + 2(b − ΣW)
        out.append((4 * w, 2 * (b - w.sum(0))))
    w, b = layers[-1]
    out.append((2 * w, b - w.sum(0)))
    return 2 * pre, 2 * w_state, out


@dataclass
class _Saved:
    """What the forward keeps for the backward: every stage's input and hidden activations."""

    stages: Tensor  # [S, n, d] stage inputs, 4 per step
    hidden: list[Tensor]  # per hidden layer [S, n, width], after the sigmoid


def _forward(y0: Tensor, pre: Tensor, w_state: Tensor, layers: list[Layer], plan: Schedule, blowup: float, *,
             keep: bool) -> tuple[Tensor, Tensor, _Saved | None]:
    n, d = y0.shape
    count = 4 * len(plan.steps) if keep else 4
    stages = y0.new_empty(count + 1, n, d)
    hidden = [y0.new_empty(count if keep else 1, n, w.shape[1]) for w in (w_state, *(w for w, _ in layers[:-1]))]
    stage_rows, pre_rows = stages.unbind(0), pre.unbind(0)
    hidden_rows = [h.unbind(0) for h in hidden]
    w_out, b_out = layers[-1]

    def field(s: int, y: Tensor, j: int) -> Tensor:
        row = s if keep else 0
        z = torch.addmm(pre_rows[j], y, w_state, out=hidden_rows[0][row]).sigmoid_()
        for rows, (w, b) in zip(hidden_rows[1:], layers[:-1], strict=True):
            z = torch.addmm(b, z, w, out=rows[row]).sigmoid_()
        return torch.addmm(b_out, z, w_out)

    stage_rows[0].copy_(y0)
    outputs = [stage_rows[0].clone()] if not keep else []
    steps_to_output = set(plan.outputs)
    for m, (h, first, middle, last) in enumerate(plan.steps):
        base = 4 * m if keep else 0
        y, y2, y3, y4 = stage_rows[base:base + 4]
        k1 = field(base, y, first)
        k2 = field(base + 1, torch.add(y, k1, alpha=h / 2, out=y2), middle)
        k3 = field(base + 2, torch.add(y, k2, alpha=h / 2, out=y3), middle)
        k4 = field(base + 3, torch.add(y, k3, alpha=h, out=y4), last)
        k1.add_(k4).add_(k2.add_(k3), alpha=2)
        torch.add(y, k1, alpha=h / 6, out=stage_rows[base + 4] if keep else y)
        if not keep and m + 1 in steps_to_output:
            outputs.append(y.clone())
    if keep:
        y = stages[4 * torch.tensor(plan.outputs)].transpose(0, 1)  # [n, t, d]
    else:
        y = torch.stack(outputs, 1)
    ok = (y.abs() <= blowup).flatten(1).all(-1)  # NaN compares False
    if not bool(ok.all()):
        bad = ~(y.abs() <= blowup).all(-1)  # [n, t]
        failed_at = torch.where(ok, y.shape[1], bad.to(torch.uint8).argmax(-1))  # argmax: the first bad time
        y = y.masked_fill((torch.arange(y.shape[1])[None, :] >= failed_at[:, None])[..., None], math.nan)
    return y, ok, _Saved(stages[:-1], hidden) if keep else None


class _RK4Function(torch.autograd.Function):
    """The rollout as one autograd node; its backward is the reverse sweep of the discrete RK4 map."""

    @staticmethod
    def forward(ctx: Any, plan: Schedule, blowup: float, y0: Tensor, pre: Tensor, w_state: Tensor,
                *flat: Tensor) -> tuple[Tensor, Tensor]:
        layers = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        y, ok, saved = _forward(y0, pre, w_state, layers, plan, blowup, keep=True)
        assert saved is not None
        ctx.plan, ctx.shapes, ctx.depth = plan, (pre.shape, pre.dtype), len(saved.hidden)
        # all through save_for_backward, intermediates too, so that saved-tensor hooks see (and may pack) them
        ctx.save_for_backward(ok, w_state, saved.stages, *saved.hidden, *flat)
        ctx.mark_non_differentiable(ok)
        return y, ok

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: Tensor, _grad_ok: Any) -> tuple[Tensor | None, ...]:
        ok, w_state, stages, *rest = ctx.saved_tensors
        hidden, flat = rest[:ctx.depth], rest[ctx.depth:]
        layers = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        grads = _backward(ctx.plan, _Saved(stages, hidden), ok, w_state, layers, grad_y, ctx.shapes)
        return (None, None, *grads)


def _backward(plan: Schedule, saved: _Saved, ok: Tensor, w_state: Tensor, layers: list[Layer], grad_y: Tensor,
              pre_shape: tuple[torch.Size, torch.dtype]) -> list[Tensor]:
    """Gradients of (y0, pre, w_state, *layers) from the gradient of the outputs `[n, t, d]`.

    Step by step in reverse; a step's four stages share scratch buffers that stay in cache, and
    their weight gradients are added with one matmul per layer (not one per stage).
    """
    stages, hidden = saved.stages, saved.hidden
    if not bool(ok.all()):  # failed rows pass no gradient (and their NaN must not reach the weight sums)
        grad_y = grad_y.masked_fill(~ok[:, None, None], 0.0)
        stages = stages.masked_fill(~ok[None, :, None], 0.0)  # copies: a retained graph may be run again
        hidden = [x.masked_fill(~ok[None, :, None], 0.0) for x in hidden]
    grad_y = grad_y.nan_to_num(0.0) if not bool(torch.isfinite(grad_y).all()) else grad_y
    steps, (n, d) = len(plan.steps), stages.shape[1:]
    slope = [stages.new_empty(4, n, h.shape[2]) for h in hidden]  # σ' = σ − σ² of the step's stages
    grad_z = [torch.empty_like(x) for x in slope]  # gradient at each layer's pre-activation
    grad_k = stages.new_empty(4, n, d)  # gradient at each stage's field value
    rows_slope, rows_z, rows_k = [x.unbind(0) for x in slope], [g.unbind(0) for g in grad_z], grad_k.unbind(0)
    flat_z, flat_k = [g.view(4 * n, -1) for g in grad_z], grad_k.view(4 * n, d)
    flat_z_t = [g.t() for g in [*flat_z[1:], flat_k]]  # for the bias sums
    by_step = [h.view(steps, 4, n, -1).unbind(0) for h in hidden]
    inputs_t = [x.view(steps, 4 * n, -1).transpose(1, 2).unbind(0) for x in (stages, *hidden)]  # each layer's input
    weights_back = [w.t() for w in (w_state, *(w for w, _ in layers))]  # to pull gradients back through layers
    grads = [torch.zeros_like(w_state)] + [torch.zeros_like(x) for layer in layers for x in layer]
    grad_pre = torch.zeros(pre_shape[0], dtype=pre_shape[1])
    ones = stages.new_ones(4 * n)
    time_of_stage = torch.tensor([[first, middle, middle, last] for _, first, middle, last in plan.steps]).unbind(0)
    outputs_after: dict[int, list[int]] = {}
    for index, count in enumerate(plan.outputs):
        outputs_after.setdefault(count, []).append(index)
    grad_rows = grad_y.transpose(0, 1).unbind(0)  # [n, d] per output time
    weights = {h: torch.tensor([h / 6, h / 3, h / 3, h / 6], dtype=stages.dtype)[:, None, None]
               for h, *_ in plan.steps}
    to_state = weights_back[0]

    def pull(i: int, g: Tensor) -> Tensor:
        """The gradient at the first layer's pre-activation of the step's stage i, from that at its field value."""
        for layer in range(len(hidden) - 1, -1, -1):
            g = torch.mul(torch.mm(g, weights_back[layer + 1]), rows_slope[layer][i], out=rows_z[layer][i])
        return g

    lam = sum((grad_rows[i] for i in outputs_after.get(steps, [])), torch.zeros_like(stages[0]))
    for m in range(steps - 1, -1, -1):
        h = plan.steps[m][0]
        for x, out in zip(by_step, slope, strict=True):
            torch.addcmul(x[m], x[m], x[m], value=-1, out=out)
        torch.mul(lam, weights[h], out=grad_k)  # dL/dk_i = b_i h λ, before the later stages' share
        g1, g2, g3, _ = rows_k
        g3.addmm_(pull(3, rows_k[3]), to_state, alpha=h)  # k4 depends on k3 through y + h k3
        g2.addmm_(pull(2, g3), to_state, alpha=h / 2)
        g1.addmm_(pull(1, g2), to_state, alpha=h / 2)
        pull(0, g1)
        lam = torch.addmm(lam, grad_z[0].sum(0), to_state)  # y feeds every stage: the four state gradients at once
        for i in outputs_after.get(m, []):
            lam.add_(grad_rows[i])
        grads[0].addmm_(inputs_t[0][m], flat_z[0])
        for layer, g_t in enumerate(flat_z_t):
            grads[1 + 2 * layer].addmm_(inputs_t[layer + 1][m], flat_z[layer + 1] if layer + 1 < len(flat_z) else flat_k)
            grads[2 + 2 * layer].addmv_(g_t, ones)
        grad_pre.index_add_(0, time_of_stage[m], grad_z[0])
    return [lam, grad_pre, *grads]
