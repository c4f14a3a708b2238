"""bench/cnode.py's checks before timing: each path's loss and gradients against its peer, evaluations, ATen ops."""

from __future__ import annotations

import copy
from typing import Any

import torch
from cnode_paths import Path_  # bench/cnode_paths.py (run as a script)
from cnode_problem import GRAD_TOLERANCE, LOSS_TOLERANCE, Batch
from common import Counted
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from gmhf.core.generator import ConditionalNODE
from gmhf.core.ode import Solution


def loss_and_grads(model: ConditionalNODE, b: Batch, path: Path_) -> tuple[float, list[Tensor], int, int]:
    """Loss, gradients, and the field evaluations of the forward pass and of the backward pass."""
    counters: list[Counted] = []
    field_, rollout_field = model.field, ConditionalNODE.field

    def counted_field(theta: Tensor, start: Tensor) -> Counted:
        counters.append(Counted(rollout_field(model, theta, start)))
        return counters[-1]

    fused = [0]  # evaluations of the fused rollout, which does not call `field`

    def counted_rollout(theta: Tensor, y0: Tensor, grid: Tensor, start: Tensor, **options: Any) -> Solution:
        solution = ConditionalNODE.rollout(model, theta, y0, grid, start, **options)
        fused[0] += solution.evaluations
        return solution

    model.field = counted_field  # type: ignore[method-assign]
    model.rollout = counted_rollout  # type: ignore[method-assign]
    try:
        model.zero_grad(set_to_none=True)
        loss = path.loss(model, b)
        forward = sum(c.calls for c in counters) + fused[0]
        loss.backward()
        backward = sum(c.calls for c in counters) - forward
    finally:
        model.field = field_  # type: ignore[method-assign]
        del model.field
        del model.rollout
    return float(loss.detach()), [p.grad.detach().clone() for p in model.parameters()], forward, backward


def verify(model: ConditionalNODE, batch: Batch, path_list: list[Path_]) -> dict[str, dict[str, Any]]:
    """Loss and gradient differences, in float64 (model and batch copied) and in float32, against each path's peer."""
    model64, batch64 = copy.deepcopy(model).double(), batch.to(torch.float64)
    results: dict[str, dict[str, Any]] = {}
    reference64: dict[str, tuple[float, list[Tensor]]] = {}
    reference32: dict[str, tuple[float, list[Tensor]]] = {}
    base = path_list[0].name
    for path in path_list:
        loss64, grads64, forward, backward = loss_and_grads(model64, batch64, path)
        loss32, grads32, _, _ = loss_and_grads(model, batch, path)
        reference64[path.name], reference32[path.name] = (loss64, grads64), (loss32, grads32)
        peer = path.same_as or base
        row: dict[str, Any] = {"evaluations_forward": forward, "evaluations_backward": backward, "peer": peer,
                               "loss_float64": loss64, "loss_float32": loss32}
        if peer in reference64:
            for label, (loss, grads), (ref_loss, ref_grads) in (
                    ("float64", (loss64, grads64), reference64[peer]),
                    ("float32", (loss32, grads32), reference32[peer])):
                scale = max(float(g.abs().max()) for g in ref_grads)
                row[f"loss_diff_{label}"] = abs(loss - ref_loss)
                row[f"grad_diff_{label}"] = max(float((g - r).abs().max()) for g, r in zip(grads, ref_grads, strict=True))
                row[f"grad_scale_{label}"] = scale
            row["checked"] = path.same_as is not None
            row["passed"] = (row["loss_diff_float64"] <= LOSS_TOLERANCE and row["grad_diff_float64"] <= GRAD_TOLERANCE
                             if path.same_as else None)
        results[path.name] = row
    return results


class OpCounter(TorchDispatchMode):
    """Counts ATen ops (after autograd), forward and backward alike."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


def op_counts(model: ConditionalNODE, b: Batch, path: Path_) -> tuple[int, int]:
    """ATen ops of the forward pass and of the backward pass of one training step."""
    model.zero_grad(set_to_none=True)
    with OpCounter() as forward:
        loss = path.loss(model, b)
    with OpCounter() as backward:
        loss.backward()
    return forward.count, backward.count
