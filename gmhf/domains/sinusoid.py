"""The `sinusoid` domain: y = amplitude · sin(frequency · x + phase) + noise · ε, x ∈ [−5, 5].

The classic few-shot regression benchmark, and the paper's "non-dynamical probabilistic model" case:
each environment θ is one sine wave; its data are noisy samples of it. The benchmark truth
(`sinusoid_truth.guide`) asks for taller waves than the source ever shows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from gmhf.core.domain import Domain
from gmhf.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    import torch

    from gmhf.core.factors import FactorSpace

X_RANGE = (-5.0, 5.0)
#: The benchmark truth shipped with the domain (taller waves), a file of `gmhf.domains`.
TRUTH_SPEC = "sinusoid_truth.guide"


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

    def view(self, theta: torch.Tensor, data: dict[str, torch.Tensor], index: int = 0, *,
             fmt: str = "png") -> bytes:
        """One environment of a generated batch as a picture: its points and the clean curve y(x), θ in the title."""
        import torch

        from gmhf.core.figures import caption, new_figure, render

        amplitude, phase, frequency, _ = theta[index].tolist()
        x, y = data["x"][index], data["y"][index]
        grid = torch.linspace(*X_RANGE, 200, dtype=torch.float64)
        figure = new_figure((5.0, 3.0))
        axes = figure.subplots()
        axes.plot(grid.tolist(), (amplitude * torch.sin(frequency * grid + phase)).tolist(), color="tab:blue",
                  linewidth=1.2, label="wave")
        axes.scatter(x.tolist(), y.tolist(), s=8, color="tab:orange", label="samples")
        axes.set_xlabel("x")
        axes.set_ylabel("y")
        axes.legend(fontsize=8, loc="upper right")
        figure.suptitle(caption(self.space, theta[index]), fontsize=9)
        return render(figure, fmt)

    def truth_spec(self) -> str:
        """The text of the shipped benchmark truth spec (`sinusoid_truth.guide`)."""
        return resources.files("gmhf.domains").joinpath(TRUTH_SPEC).read_text(encoding="utf-8")


@hookimpl
def gmhf_domains(register: Callable[..., None]) -> None:
    """The sinusoid domain."""
    register(Sinusoid())
