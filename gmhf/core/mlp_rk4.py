"""Classical RK4 through an MLP field, with the backward pass written out: a cNODE step in few ops.

Through autograd, each RK4 stage of a small MLP costs a dozen recorded ops forward and more
backward, and eager torch on a CPU pays per op, not per flop. Here the whole rollout is one autograd
node. Forward, a stage is `addmm`, `sigmoid_` per hidden layer and one `addmm` out, writing into
preallocated buffers; backward walks the steps in reverse (the exact gradient of the discrete RK4
map, as autograd would give) and adds each layer's weight gradient once per step, for the step's
four stages together, instead of once per stage.

The field is `f(y) = W_L σ(… σ([y, φ_j] A + c) …) + b_L`: the first layer sees the state y, a few
features φ_j `[n, f]` of the stage time j (time itself, or cos/sin of a forcing phase: the caller
computes them once per rollout for every stage time, `Schedule.times`), and adds `c` `[n, hidden]`,
whatever is the same at every stage (bias, conditioning). Each stage's first-layer input [y, φ_j]
is one row block of the saved stage buffer, so the first layer is one small matmul a stage, and
nothing of size stages × hidden is built for it. A tanh network enters through
tanh(z) = 2σ(2z) − 1 with the factors folded into the weights (`from_tanh`): the same function,
and torch's float32 sigmoid costs a third of its tanh. `ConditionalNODE.rollout` folds its
normalisations into A and W_L as well.

Small matmuls are slow in the wrong memory layout: a [256, 64] × [64, 2] product takes twice as
long with a row-major right factor, and a weight gradient Xᵀ G five times as long with its wide
side first. So the backward makes the thin weight column-major once and forms each weight
gradient thin side first (Gᵀ X, transposed at the end, for a layer wider in than out).

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

from gmhf.core.ode import first_failure, nan_from, substeps_for

__all__ = ["Schedule", "Workspace", "from_tanh", "mlp_rk4", "schedule"]

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


class Workspace:
    """Buffers that a training loop lends to each of its rollouts, so that every step writes where the last did.

    The activations a rollout keeps for its backward are a few MiB; allocated afresh, glibc hands
    them back to the kernel when they are freed, and the next step page-faults them in again (on
    the benchmark machine ~2.5 µs per 4 KiB page: a fifth of a B = 256 step). A rollout given a
    workspace overwrites the previous rollout's buffers instead. Autograd's version counters guard
    this: backpropagating through a rollout whose buffers a later rollout has overwritten raises
    an error instead of giving wrong gradients. One buffer per role is kept, of the latest shape.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def empty(self, role: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """A buffer of `shape`, `like`'s dtype and device, contents undefined."""
        buffer = self._buffers.get(role)
        if buffer is None or buffer.shape != shape or buffer.dtype != like.dtype or buffer.device != like.device:
            buffer = self._buffers[role] = like.new_empty(shape)
        return buffer


def mlp_rk4(y0: Tensor, base: Tensor, features: Tensor, w_in: Tensor, layers: Sequence[Layer], plan: Schedule, *,
            blowup: float = math.inf, workspace: Workspace | None = None) -> tuple[Tensor, Tensor]:
    """Integrate dy/dt = MLP(y, stage time) from `y0` `[n, d]`: values `[n, t, d]` on the grid and `ok` `[n]`.

    Args:
        y0: initial states.
        base: `[n, hidden]`, added to the first layer at every stage.
        features: `[len(plan.times), n, f]` (f may be 0), the first layer's inputs besides the state, per stage time.
        w_in: `[d + f, hidden]`, the first layer's weight on (state, features), transposed.
        layers: the later layers as (weight transposed, bias); σ between layers, none after the last.
        plan: the steps (`schedule`).
        blowup: a state beyond this in absolute value at an output time counts as diverged.
        workspace: where to keep the activations for the backward (`Workspace`); default fresh memory.

    Differentiable in every tensor argument; no autograd graph is recorded inside, and without
    gradients no per-stage activations are kept (memory stays flat in the horizon).
    """
    flat = [tensor for layer in layers for tensor in layer]
    if torch.is_grad_enabled() and any(x.requires_grad for x in (y0, base, features, w_in, *flat)):
        y, ok = _RK4Function.apply(plan, blowup, workspace, y0, base, features, w_in, *flat)
        return y, ok
    with torch.no_grad():
        y, ok, _ = _forward(y0, base, features, w_in, list(layers), plan, blowup, keep=False, workspace=None)
    return y, ok


def from_tanh(base: Tensor, w_in: Tensor, layers: Sequence[Layer]) -> tuple[Tensor, Tensor, list[Layer]]:
    """The same network with σ for tanh: tanh(z) = 2σ(2z) − 1, the 2s and the −1 folded into the weights.

    Differentiable (plain torch ops), so gradients reach the tanh network's own weights.
    """
    out = []
    for w, b in layers[:-1]:  # 2·((2s − 1) W + b) = s (4W) + 2(b − ΣW)
        out.append((4 * w, 2 * (b - w.sum(0))))
    w, b = layers[-1]
    out.append((2 * w, b - w.sum(0)))
    return 2 * base, 2 * w_in, out


def _stage_times(plan: Schedule, device: torch.device) -> Tensor:
    """`[steps, 4]`: the index in `plan.times` of each stage of each step."""
    return torch.tensor([[first, middle, middle, last] for _, first, middle, last in plan.steps], dtype=torch.long,
                        device=device)


@dataclass
class _Saved:
    """What the forward keeps for the backward: every stage's first-layer input and hidden activations."""

    stages: Tensor  # [S, n, d + f] stage inputs (state, then features), 4 per step
    hidden: list[Tensor]  # per hidden layer [S, n, width], after the sigmoid


def _forward(y0: Tensor, base: Tensor, features: Tensor, w_in: Tensor, layers: list[Layer], plan: Schedule,
             blowup: float, *, keep: bool, workspace: Workspace | None) -> tuple[Tensor, Tensor, _Saved | None]:
    # Long: the stage closure writes into the rollout's buffers; split up, they would travel between calls.
    n, d = y0.shape
    count = 4 * len(plan.steps) if keep else 4
    widths = [w.shape[1] for w in (w_in, *(w for w, _ in layers[:-1]))]
    if workspace is not None:
        stages = workspace.empty("stages", (count + 1, n, d + features.shape[2]), y0)
        hidden = [workspace.empty(f"hidden {i}", (count, n, width), y0) for i, width in enumerate(widths)]
    else:
        stages = y0.new_empty(count + 1, n, d + features.shape[2])
        hidden = [y0.new_empty(count if keep else 1, n, width) for width in widths]
    if keep and plan.steps:  # every stage's features at once; the states are written as the steps go
        stages[:-1, :, d:] = features[_stage_times(plan, features.device).view(-1)]
    stage_rows, state_rows, feature_rows = stages.unbind(0), stages[..., :d].unbind(0), features.unbind(0)
    hidden_rows = [h.unbind(0) for h in hidden]
    w_out, b_out = layers[-1]

    def field(s: int, j: int) -> Tensor:
        row = s if keep else 0
        if not keep and features.shape[2]:
            stage_rows[s][:, d:] = feature_rows[j]
        z = torch.addmm(base, stage_rows[s], w_in, out=hidden_rows[0][row]).sigmoid_()
        for rows, (w, b) in zip(hidden_rows[1:], layers[:-1], strict=True):
            z = torch.addmm(b, z, w, out=rows[row]).sigmoid_()
        return torch.addmm(b_out, z, w_out)

    state_rows[0].copy_(y0)
    outputs = [y0.clone()] if not keep else []
    steps_to_output = set(plan.outputs)
    for m, (h, first, middle, last) in enumerate(plan.steps):
        at = 4 * m if keep else 0
        y, y2, y3, y4 = state_rows[at:at + 4]
        k1 = field(at, first)
        torch.add(y, k1, alpha=h / 2, out=y2)
        k2 = field(at + 1, middle)
        torch.add(y, k2, alpha=h / 2, out=y3)
        k3 = field(at + 2, middle)
        torch.add(y, k3, alpha=h, out=y4)
        k4 = field(at + 3, last)
        k1.add_(k4).add_(k2.add_(k3), alpha=2)
        torch.add(y, k1, alpha=h / 6, out=state_rows[at + 4] if keep else y)
        if not keep and m + 1 in steps_to_output:
            outputs.append(y.clone())
    if keep:
        y = stages[4 * torch.tensor(plan.outputs, device=stages.device), :, :d].transpose(0, 1)  # [n, t, d]
    else:
        y = torch.stack(outputs, 1)
    ok = (y.abs() <= blowup).flatten(1).all(-1)  # NaN compares False
    if not bool(ok.all()):  # y is a fresh tensor (stacked or gathered), so filling in place is safe
        nan_from(y, first_failure(y, ok, blowup=blowup))
    return y, ok, _Saved(stages[:-1], hidden) if keep else None


class _RK4Function(torch.autograd.Function):
    """The rollout as one autograd node; its backward is the reverse sweep of the discrete RK4 map."""

    @staticmethod
    def forward(ctx: Any, plan: Schedule, blowup: float, workspace: Workspace | None, y0: Tensor, base: Tensor,
                features: Tensor, w_in: Tensor, *flat: Tensor) -> tuple[Tensor, Tensor]:
        layers = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        y, ok, saved = _forward(y0, base, features, w_in, layers, plan, blowup, keep=True, workspace=workspace)
        assert saved is not None
        ctx.plan, ctx.depth = plan, len(saved.hidden)
        ctx.features = (features.shape, features.dtype)
        # all through save_for_backward, intermediates too, so that saved-tensor hooks see (and may pack) them
        ctx.save_for_backward(ok, w_in, saved.stages, *saved.hidden, *flat)
        ctx.mark_non_differentiable(ok)
        return y, ok

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: Tensor, _grad_ok: Any) -> tuple[Tensor | None, ...]:
        ok, w_in, stages, *rest = ctx.saved_tensors
        hidden, flat = rest[:ctx.depth], rest[ctx.depth:]
        layers = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        features = ctx.features if ctx.needs_input_grad[5] else None
        grads = _backward(ctx.plan, _Saved(stages, hidden), ok, w_in, layers, grad_y, features)
        return (None, None, None, *grads)


def _backward(plan: Schedule, saved: _Saved, ok: Tensor, w_in: Tensor, layers: list[Layer], grad_y: Tensor,
              features: tuple[torch.Size, torch.dtype] | None) -> list[Tensor | None]:
    """Gradients of (y0, base, features, w_in, *layers) from the gradient of the outputs `[n, t, d]`.

    Step by step in reverse; a step's four stages share scratch buffers that stay in cache, and
    their weight gradients are added with one matmul per layer (not one per stage). The features'
    gradient is formed only when asked for (`features`: their shape and dtype).
    """
    # Long: a step's four stages share scratch buffers; split up, a dozen would travel per step.
    stages, hidden = saved.stages, saved.hidden
    if not bool(ok.all()):  # failed rows pass no gradient (and their NaN must not reach the weight sums)
        grad_y = grad_y.masked_fill(~ok[:, None, None], 0.0)
        stages = stages.masked_fill(~ok[None, :, None], 0.0)  # copies: a retained graph may be run again
        hidden = [x.masked_fill(~ok[None, :, None], 0.0) for x in hidden]
    grad_y = grad_y.nan_to_num(0.0) if not bool(torch.isfinite(grad_y).all()) else grad_y
    steps, n, d = len(plan.steps), stages.shape[1], grad_y.shape[2]
    slope = [stages.new_empty(4, n, h.shape[2]) for h in hidden]  # σ' = σ − σ² of the step's stages
    grad_z = [torch.empty_like(x) for x in slope]  # gradient at each layer's pre-activation
    grad_k = stages.new_empty(4, n, d)  # gradient at each stage's field value
    rows_slope, rows_z, rows_k = [x.unbind(0) for x in slope], [g.unbind(0) for g in grad_z], grad_k.unbind(0)
    flat_g = [g.view(4 * n, -1) for g in [*grad_z, grad_k]]  # each layer's output gradient, a step's stages
    by_step = [h.view(steps, 4, n, -1).unbind(0) for h in hidden]
    inputs = [x.view(steps, 4 * n, -1).unbind(0) for x in (stages, *hidden)]  # each layer's input
    weights = [w_in, *(w for w, _ in layers)]
    weights_back = [w.t() for w in weights]  # to pull gradients back through a layer
    to_state = w_in[:d].contiguous().t()  # [hidden, d], column-major: [n, hidden] × thin is fast that way
    # a weight gradient Xᵀ G is formed with its thin side first (G ᵀX for a layer wider in than out): fast
    thin_in = [w.shape[0] <= w.shape[1] for w in weights]
    grads_w = [w.new_zeros(w.shape if thin else w.shape[::-1]) for w, thin in zip(weights, thin_in, strict=True)]
    grad_biases = [torch.zeros_like(b) for _, b in layers]
    grad_base = stages.new_zeros(n, w_in.shape[1])
    grad_features = stages.new_zeros(features[0]) if features is not None else None
    to_features = w_in[d:].contiguous().t() if features is not None else None
    ones = stages.new_ones(4 * n)
    time_of_stage = _stage_times(plan, stages.device).unbind(0)
    outputs_after: dict[int, list[int]] = {}
    for index, count in enumerate(plan.outputs):
        outputs_after.setdefault(count, []).append(index)
    grad_rows = grad_y.transpose(0, 1).unbind(0)  # [n, d] per output time
    rk4_weights = {h: stages.new_tensor([h / 6, h / 3, h / 3, h / 6])[:, None, None]
                   for h, *_ in plan.steps}
    summed = stages.new_empty(n, grad_base.shape[1])

    def pull(i: int, g: Tensor) -> Tensor:
        """The gradient at the first layer's pre-activation of the step's stage i, from that at its field value."""
        for layer in range(len(hidden) - 1, -1, -1):
            g = torch.mul(torch.mm(g, weights_back[layer + 1]), rows_slope[layer][i], out=rows_z[layer][i])
        return g

    lam = sum((grad_rows[i] for i in outputs_after.get(steps, [])), torch.zeros_like(grad_rows[0]))
    for m in range(steps - 1, -1, -1):
        h = plan.steps[m][0]
        for x, out in zip(by_step, slope, strict=True):
            torch.addcmul(x[m], x[m], x[m], value=-1, out=out)
        torch.mul(lam, rk4_weights[h], out=grad_k)  # dL/dk_i = b_i h λ, before the later stages' share
        g1, g2, g3, _ = rows_k
        g3.addmm_(pull(3, rows_k[3]), to_state, alpha=h)  # k4 depends on k3 through y + h k3
        g2.addmm_(pull(2, g3), to_state, alpha=h / 2)
        g1.addmm_(pull(1, g2), to_state, alpha=h / 2)
        pull(0, g1)
        torch.sum(grad_z[0], 0, out=summed)  # y and the base feed every stage: their four gradients at once
        lam = torch.addmm(lam, summed, to_state)
        grad_base.add_(summed)
        for i in outputs_after.get(m, []):
            lam.add_(grad_rows[i])
        for grad_w, thin, x, g in zip(grads_w, thin_in, inputs, flat_g, strict=True):
            grad_w.addmm_(x[m].t(), g) if thin else grad_w.addmm_(g.t(), x[m])
        for grad_b, g in zip(grad_biases, flat_g[1:], strict=True):
            grad_b.addmv_(g.t(), ones)
        if grad_features is not None and to_features is not None:
            grad_features.index_add_(0, time_of_stage[m], torch.mm(flat_g[0], to_features).view(4, n, -1))
    weight_grads = [g if thin else g.t() for g, thin in zip(grads_w, thin_in, strict=True)]
    grads: list[Tensor | None] = [lam, grad_base, grad_features, weight_grads[0]]
    for grad_w, grad_b in zip(weight_grads[1:], grad_biases, strict=True):
        grads += [grad_w, grad_b]
    return grads
