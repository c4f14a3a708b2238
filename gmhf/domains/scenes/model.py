"""The scenes domain's default network: a small CNN, batched over tasks by the learners' `torch.func` path.

No batch normalisation: MAML runs each task's copy of the model under `vmap`, where batch statistics
would mix tasks; convolutions, ReLU and max-pooling are per example.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gmhf.errors import UsageError

__all__ = ["cnn"]


def cnn(inputs: Sequence[int], outputs: int, hidden: Sequence[int] = (32, 32), *,
        generator: torch.Generator | None = None) -> nn.Sequential:
    """Conv(3×3, padding 1) → ReLU → MaxPool(2) per width in `hidden`, then Flatten → Linear(`outputs`).

    Args:
        inputs: one example's shape `[c, h, w]`.
        outputs: width of the last layer (classes, or an embedding for ProtoNet).
        hidden: channels of each convolution; each block halves the picture.
        generator: draws the initial weights (torch's fan-in bounds ±1/√fan_in); None uses torch's global stream.
    """
    if len(inputs) != 3:
        raise UsageError(f"the CNN takes pictures `[channels, height, width]`, got examples of shape {list(inputs)}.")
    channels, height, width = inputs
    if not hidden or min(hidden) < 1 or min(height, width) >> len(hidden) < 1:
        raise UsageError(f"--hidden gives the CNN's channels, one block per width, each halving the picture: "
                         f"{len(hidden)} blocks do not fit {height}×{width} pictures (or a width is < 1).")
    layers: list[nn.Module] = []
    for width_out in hidden:
        layers += [nn.Conv2d(channels, width_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels, height, width = width_out, height // 2, width // 2
    layers += [nn.Flatten(), nn.Linear(channels * height * width, outputs)]
    model = nn.Sequential(*layers)
    if generator is not None:
        with torch.no_grad():
            for layer in model:
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    bound = (layer.weight[0].numel()) ** -0.5
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    assert layer.bias is not None
                    layer.bias.uniform_(-bound, bound, generator=generator)
    return model
