"""The inner loop shared by the gradient-based learners: a model run with one set of weights per task.

Adapted weights are ordinary tensors with a leading task dimension (the meta-parameters expanded to
`[B, ...]`, then updated). Because tasks never mix, the gradient of the *sum* of per-task losses
with respect to these batched weights is every task's own gradient at once, so one
`torch.autograd.grad` call per inner step serves the whole batch, with `create_graph` for second
order. The forward pass runs the model under `torch.func.vmap(functional_call)`; a plain
`nn.Sequential` of linear layers and elementwise activations instead runs as batched matrix
products, the same arithmetic with far fewer dispatches.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from gmhf.errors import UsageError

__all__ = ["Forward", "batched_forward", "expand", "inner_sgd", "single_task_copy", "task_losses"]

#: (weights by name, some with a leading task dimension; inputs `[B, N, ·]`) -> outputs `[B, N, ·]`
Forward = Callable[[dict[str, Tensor], Tensor], Tensor]

_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Softplus, nn.Identity)


def batched_forward(model: nn.Module) -> Forward:
    """A forward pass over a batch of tasks, each with its own (or the shared) weights."""
    for module in model.modules():
        per_batch = isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training
        random = isinstance(module, nn.modules.dropout._DropoutNd) and module.training and module.p > 0
        if per_batch or random:
            raise UsageError(f"the model has a {type(module).__name__} in training mode; the inner loop runs each "
                             f"task's copy of the model under torch.func.vmap, where batch statistics and random "
                             f"masks are not per task. Call .eval() on that module or leave it out.")
    shapes = {k: v.ndim for k, v in model.named_parameters()}
    buffers = dict(model.named_buffers())
    if isinstance(model, nn.Sequential) and not buffers and all(
            isinstance(m, (nn.Linear, *_ELEMENTWISE)) for m in model):
        return _sequential_forward(model)

    def run(weights: dict[str, Tensor], x: Tensor) -> Tensor:
        in_dims = {k: 0 if v.ndim > shapes[k] else None for k, v in weights.items()}
        return vmap(lambda w, b, x: functional_call(model, (w, b), (x,)),
                    in_dims=(in_dims, None, 0))(weights, buffers, x)
    return run


def _sequential_forward(model: nn.Sequential) -> Forward:
    plan: list[tuple[str, nn.Module]] = [(name, layer) for name, layer in model.named_children()]

    def run(weights: dict[str, Tensor], x: Tensor) -> Tensor:
        for name, layer in plan:
            if isinstance(layer, nn.Linear):
                # a frozen parameter is not among the weights: the layer's own tensor serves
                w, b = weights.get(f"{name}.weight", layer.weight), weights.get(f"{name}.bias", layer.bias)
                if w.ndim == 3:
                    x = torch.bmm(x, w.transpose(1, 2)) if b is None else torch.baddbmm(
                        b.unsqueeze(1) if b.ndim == 2 else b, x, w.transpose(1, 2))
                else:
                    x = torch.matmul(x, w.t())
                    if b is not None:
                        x = x + (b.unsqueeze(1) if b.ndim == 2 else b)
            else:
                x = layer(x)
        return x
    return run


def expand(weights: dict[str, Tensor], tasks: int, names: Collection[str]) -> dict[str, Tensor]:
    """Give the weights in `names` a leading task dimension (a view: no copy until updated)."""
    return {k: v.expand(tasks, *v.shape) if k in names else v for k, v in weights.items()}


def task_losses(forward: Forward, loss: str, weights: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """`[B]`: each task's mean loss over its examples."""
    prediction = forward(weights, x)
    if loss == "mse":
        return ((prediction - y) ** 2).flatten(1).mean(1)
    per_example = nn.functional.cross_entropy(prediction.flatten(0, -2), y.flatten(), reduction="none")
    return per_example.reshape(y.shape[0], -1).mean(1)


def inner_sgd(forward: Forward, loss: str, weights: dict[str, Tensor], names: Collection[str], x: Tensor,
              y: Tensor, *, steps: int, lr: float, first_order: bool) -> dict[str, Tensor]:
    """`steps` SGD steps on each task's `(x, y)` for the weights in `names`; the others stay shared.

    With `first_order`, the inner gradients are treated as constants: the result still depends on
    the meta-parameters (through the starting point), but no second-order graph is built.
    """
    names = list(names)
    fast = expand(weights, x.shape[0], names)
    with torch.enable_grad():
        for _ in range(steps):
            adapted = [fast[k] for k in names]
            if not any(w.requires_grad for w in adapted):  # evaluation of frozen weights
                adapted = [w.detach().requires_grad_() for w in adapted]
                fast = {**fast, **dict(zip(names, adapted, strict=True))}
            total = task_losses(forward, loss, fast, x, y).sum()
            grads = torch.autograd.grad(total, adapted, create_graph=not first_order)
            fast = {**fast, **{k: w - lr * g for k, w, g in zip(names, adapted, grads, strict=True)}}
    return fast


def single_task_copy(model: nn.Module, fast: dict[str, Tensor]) -> nn.Module:
    """A copy of `model` holding the first task's adapted weights (shared ones as they are)."""
    adapted = copy.deepcopy(model)
    shapes = {k: v.ndim for k, v in model.named_parameters()}
    with torch.no_grad():
        for name, value in adapted.named_parameters():
            if name in fast:
                weights = fast[name]
                value.copy_(weights[0] if weights.ndim > shapes[name] else weights)
    return adapted.eval()
