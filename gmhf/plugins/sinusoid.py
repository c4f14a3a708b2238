"""The `sinusoid` domain: y = amplitude · sin(frequency · x + phase) + noise · ε, x ∈ [−5, 5].

The classic few-shot regression benchmark, and the paper's "non-dynamical probabilistic model" case:
each environment θ is one sine wave; its data are noisy samples of it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gmhf.core.domain import Domain
from gmhf.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    import torch

    from gmhf.core.factors import FactorSpace

X_RANGE = (-5.0, 5.0)


class Sinusoid(Domain):
    """Noisy sine waves; factors amplitude, phase, frequency, noise."""

    name = "sinusoid"
    description = "y = amplitude * sin(frequency * x + phase) + noise * eps, x in [-5, 5], eps ~ N(0, 1)"

    @functools.cached_property
    def space(self) -> FactorSpace:  # type: ignore[override]
        """Built on first use: `gmhf --help` loads this plugin and should not pay for pydantic."""
        from gmhf.core.factors import Factor, FactorSpace, Observable

        return FactorSpace(
            factors=(
                Factor.real("amplitude", 0.0, 10.0, source=("uniform", 0.1, 5.0),
                            description="peak height of the wave"),
                Factor.real("phase", 0.0, 2 * math.pi, source=("uniform", 0.0, math.pi), unit="rad",
                            description="horizontal offset"),
                Factor.real("frequency", 0.0, 5.0, low_open=True, source=("uniform", 0.8, 1.2),
                            unit="rad per unit x", description="angular frequency"),
                Factor.real("noise", 0.0, 1.0, source=("uniform", 0.0, 0.1),
                            description="standard deviation of the additive Gaussian noise"),
            ),
            observables=(
                Observable(name="y", shape="array", description="the outputs of one environment"),
                Observable(name="x", shape="array", description="the inputs, in [-5, 5]"),
            ),
        )

    def simulate(self, theta: torch.Tensor, *, generator: torch.Generator | None = None,
                 x: torch.Tensor | None = None, points: int = 50, **options: Any) -> dict[str, torch.Tensor]:
        """Outputs for θ `[n, 4]` at inputs `x` (`[t]` shared or `[n, t]`; default: `points` uniform draws)."""
        import torch

        if theta.ndim != 2 or theta.shape[1] != len(self.space):
            raise ValueError(f"`theta` must have shape [n, {len(self.space)}], got {list(theta.shape)}.")
        n = theta.shape[0]
        if x is None:
            low, high = X_RANGE
            x = low + (high - low) * torch.rand(n, points, generator=generator, dtype=theta.dtype)
        x = x.to(theta.dtype).expand(n, -1) if x.ndim == 1 else x.to(theta.dtype)
        amplitude, phase, frequency, noise = theta.unbind(-1)
        clean = amplitude[:, None] * torch.sin(frequency[:, None] * x + phase[:, None])
        eps = torch.randn(x.shape, generator=generator, dtype=theta.dtype)
        return {"x": x, "y": clean + noise[:, None] * eps}

    def observe(self, theta: torch.Tensor, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`x` and `y`, each `[n, t]`."""
        return {"x": data["x"], "y": data["y"]}

    def examples(self, theta: torch.Tensor, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """K-shot regression of y on x: inputs and targets `[n, points, 1]`."""
        return data["x"][..., None], data["y"][..., None]


@hookimpl
def gmhf_domains(register: Callable[..., None]) -> None:
    """The sinusoid domain."""
    register(Sinusoid())
