"""The scenes domain's default network: a small CNN, batched over tasks by the learners' `torch.func` path.

No batch normalisation: MAML runs each task's copy of the model under `vmap`, where batch statistics
would mix tasks. Each convolution is followed by a group norm with one group (a layer norm over the
picture's feature maps), whose statistics are per example: without it, ProtoNet meta-trained on
rain and snow sometimes settled where every picture has nearly the same embedding and stayed at
chance (one seed in four, still at 400 steps; docs/domains/scenes.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gmhf.errors import UsageError

__all__ = ["cnn"]


def cnn(inputs: Sequence[int], outputs: int, hidden: Sequence[int] = (16, 16, 16), *,
        generator: torch.Generator | None = None) -> nn.Sequential:
    """Conv(3×3, padding 1) → GroupNorm(1) → ReLU per width in `hidden`, 2×2 max-pools between, a global max-pool,
    then Linear(`outputs`).

    The global max-pool makes the features indifferent to where the object is, which a
    flattening layer would have to learn position by position.

    Args:
        inputs: one example's shape `[c, h, w]`.
        outputs: width of the last layer (classes, or an embedding for ProtoNet).
        hidden: channels of each convolution; every block but the last halves the picture.
        generator: draws the initial weights (He's uniform bounds, zero biases); None uses torch's global stream.
    """
    if len(inputs) != 3:
        raise UsageError(f"the CNN takes pictures `[channels, height, width]`, got examples of shape {list(inputs)}.")
    channels, height, width = inputs
    if not hidden or min(hidden) < 1 or min(height, width) >> (len(hidden) - 1) < 1:
        raise UsageError(f"--hidden gives the CNN's channels, one block per width, each but the last halving the "
                         f"picture: {len(hidden)} blocks do not fit {height}×{width} pictures (or a width is < 1).")
    layers: list[nn.Module] = []
    for i, width_out in enumerate(hidden):
        layers += [nn.Conv2d(channels, width_out, 3, padding=1), nn.GroupNorm(1, width_out), nn.ReLU()]
        layers.append(nn.MaxPool2d(2) if i < len(hidden) - 1 else nn.AdaptiveMaxPool2d(1))
        channels = width_out
    layers += [nn.Flatten(), nn.Linear(channels, outputs)]
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                # He's uniform bounds (variance 2/fan_in) keep the signal's scale through ReLU layers: with
                # torch's default ±1/√fan_in and no batch norm, ProtoNet's distances start near 0 and hardly learn
                bound = math.sqrt((6.0 if isinstance(layer, nn.Conv2d) else 3.0) / layer.weight[0].numel())
                layer.weight.uniform_(-bound, bound, generator=generator)
                assert layer.bias is not None
                layer.bias.zero_()
    return model
