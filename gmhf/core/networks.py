"""The one multilayer-perceptron builder: the meta-learners' ReLU nets and the cNODE's tanh vector field."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from gmhf.errors import UsageError

__all__ = ["mlp"]


def mlp(inputs: int, outputs: int, hidden: Sequence[int] = (40, 40), *,
        activation: Callable[[], nn.Module] = nn.ReLU, generator: torch.Generator | None = None,
        init: Literal["torch", "field"] = "torch") -> nn.Sequential:
    """A multilayer perceptron `inputs -> *hidden -> outputs` with `activation` between its layers.

    Without `generator`, the layers keep torch's default initialisation (from the global stream).
    With one, every draw comes from it and the global stream is left alone; `init` then picks:
    `"torch"`, torch's fan-in bounds ±1/√fan_in for weights and biases; `"field"`, for a vector
    field that should start near 0: weights ±√(3/fan_in) (the last layer's a tenth of that), zero biases.
    """
    if init not in ("torch", "field"):
        raise UsageError(f"`init` must be 'torch' or 'field', got {init!r}.")
    sizes = [inputs, *hidden, outputs]
    shapes = list(zip(sizes[:-1], sizes[1:], strict=True))
    if generator is None:
        if init != "torch":
            raise UsageError(f"`init={init!r}` draws from an explicit stream: pass `generator`.")
        linears = [nn.Linear(a, b) for a, b in shapes]
    else:
        linears = [nn.utils.skip_init(nn.Linear, a, b) for a, b in shapes]  # leaves the global RNG alone
        with torch.no_grad():
            for i, linear in enumerate(linears):
                _initialise(linear, generator, init, last=i == len(linears) - 1)
    layers: list[nn.Module] = []
    for linear in linears:
        layers += [linear, activation()]
    return nn.Sequential(*layers[:-1])


def _initialise(linear: nn.Linear, generator: torch.Generator, init: str, *, last: bool) -> None:
    if init == "torch":
        bound = linear.in_features ** -0.5  # torch's default fan-in bounds, from our stream
        linear.weight.uniform_(-bound, bound, generator=generator)
        linear.bias.uniform_(-bound, bound, generator=generator)
    else:
        bound = (0.1 if last else 1.0) * math.sqrt(3.0 / linear.in_features)
        linear.weight.uniform_(-bound, bound, generator=generator)
        linear.bias.zero_()
