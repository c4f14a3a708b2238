"""Torch implementations of the built-in expression functions (batched, elementwise or reducing).

Values in an expression are `[n]` (one per environment: factors) or `[n, t]` (observables). A
reducing function given one argument reduces everything after the batch dimension; given several,
it compares them elementwise.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["maximum", "minimum"]


def _reduce(x: Tensor, op: str) -> Tensor:
    if x.ndim <= 1:
        return x
    flat = x.reshape(x.shape[0], -1)
    return flat.amax(-1) if op == "max" else flat.amin(-1)


def maximum(*args: Tensor) -> Tensor:
    """`max(array)` reduces; `max(a, b, …)` is elementwise."""
    if len(args) == 1:
        return _reduce(args[0], "max")
    out = args[0]
    for arg in args[1:]:
        out = torch.maximum(*torch.broadcast_tensors(out, arg))
    return out


def minimum(*args: Tensor) -> Tensor:
    """`min(array)` reduces; `min(a, b, …)` is elementwise."""
    if len(args) == 1:
        return _reduce(args[0], "min")
    out = args[0]
    for arg in args[1:]:
        out = torch.minimum(*torch.broadcast_tensors(out, arg))
    return out
