"""The `scenes` domain: few-shot recognition of shapes in small pictures, under lighting and weather.

The perception case of gmhf: a model trained on pictures taken in clear and foggy weather must
work in rain and snow, while the lighting stays as it was (`invariant lighting; shift weather in
[rain, snow]`). An environment θ is one set of conditions (lighting, weather, object scale,
background clutter, sensor noise); its data are a few pictures of each of `ways` shapes drawn at
random from `SHAPES`, labelled 0 … ways − 1 in a random order, so that every environment is a
fresh N-way classification task. Pictures are 32 × 32 RGB, rendered procedurally in batches
(`render`); nothing is downloaded.

The package holds the domain (here), its renderer (`render`), its default network (`model`, a
small CNN), its picture for experts (`view`) and its benchmark truth (`truth.guide`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from gmhf.core.domain import Domain
from gmhf.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    import torch
    from torch import nn

    from gmhf.core.factors import FactorSpace

__all__ = ["Scenes"]

#: The benchmark truth shipped with the domain (rain and snow, lighting as in the source).
TRUTH_SPEC = "truth.guide"
#: Shapes per environment (the N of N-way) and pictures of each, by default.
WAYS = 5
PER_CLASS = 4


class Scenes(Domain):
    """Small rendered pictures of shapes; factors lighting, weather, scale, clutter, noise."""

    name = "scenes"
    description = ("32x32 RGB pictures of one shape each (the class) over a textured background, "
                   "under lighting and weather (clear, fog, rain, snow); few-shot shape classification")

    @functools.cached_property
    def space(self) -> FactorSpace:  # type: ignore[override]
        """Built on first use, so loading the plugin stays light."""
        from gmhf.core.factors import Factor, FactorSpace, Observable

        return FactorSpace(
            factors=(
                Factor.real("lighting", 0.1, 1.5, source=("uniform", 0.3, 1.0),
                            description="scene brightness: multiplies everything the camera sees (1 = daylight)"),
                Factor.categorical("weather", ("clear", "fog", "rain", "snow"), weights=(1.0, 1.0, 0.0, 0.0),
                                   description="clear; fog (grey haze); rain (slanted streaks); snow (white "
                                               "flakes); the source has only clear and fog"),
                Factor.real("scale", 0.2, 0.8, source=("uniform", 0.4, 0.6),
                            description="object radius as a share of the picture's half-width (±15 % per picture)"),
                Factor.real("clutter", 0.0, 1.0, source=("uniform", 0.0, 0.5),
                            description="strength of the background's blotchy texture"),
                Factor.real("noise", 0.0, 0.2, source=("uniform", 0.0, 0.05),
                            description="standard deviation of the sensor's per-pixel brightness noise"),
            ),
            observables=(
                Observable(name="brightness", shape="scalar",
                           description="mean pixel value of the environment's pictures, in [0, 1]"),
                Observable(name="contrast", shape="scalar",
                           description="mean over pictures of the standard deviation of pixel brightness"),
                Observable(name="detail", shape="scalar",
                           description="mean |difference| between horizontally neighbouring pixels "
                                       "(high with rain streaks, snow flakes and noise)"),
            ),
        )

    def simulate(self, theta: torch.Tensor, *, generator: torch.Generator | None = None, ways: int = WAYS,
                 per_class: int = PER_CLASS, **options: Any) -> dict[str, torch.Tensor]:
        """Pictures for θ `[n, 5]`: `ways` shapes per environment, `per_class` pictures of each.

        Returns `{"images": [n, P, 3, 32, 32] (float32 in [0, 1]), "labels": [n, P] (0 … ways − 1),
        "shapes": [n, P] (index into SHAPES), "ok": [n]}` with P = ways · per_class; picture j of an
        environment has label j mod ways.
        """
        import torch

        from gmhf.domains.scenes.render import SHAPES, SIZE, render
        from gmhf.errors import UsageError

        if theta.ndim != 2 or theta.shape[1] != len(self.space):
            raise ValueError(f"`theta` must have shape [n, {len(self.space)}], got {list(theta.shape)}.")
        if not 1 <= ways <= len(SHAPES):
            raise UsageError(f"`ways` must be between 1 and {len(SHAPES)} (the shapes there are), got {ways!r}.")
        if per_class < 1:
            raise UsageError(f"`per_class` must be at least 1, got {per_class!r}.")
        n, pictures = theta.shape[0], ways * per_class
        chosen = torch.rand(n, len(SHAPES), generator=generator).argsort(1)[:, :ways]  # a random order, too
        labels = (torch.arange(pictures) % ways).expand(n, pictures)
        shapes = chosen.gather(1, labels)
        lighting, weather, scale, clutter, noise = (c.repeat_interleave(pictures) for c in theta.unbind(1))
        images = render(shapes.reshape(-1), weather.round().long(), lighting, scale, clutter, noise,
                        generator=generator)
        return {"images": images.reshape(n, pictures, 3, SIZE, SIZE), "labels": labels.clone(), "shapes": shapes,
                "ok": torch.ones(n, dtype=torch.bool)}

    def observe(self, theta: torch.Tensor, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """brightness, contrast and detail, each `[n]` (float64)."""
        import torch

        images = data["images"].to(torch.float64)
        gray = images.mean(2)  # [n, P, S, S]
        return {"brightness": images.mean((1, 2, 3, 4)),
                "contrast": gray.flatten(2).std(2).mean(1),
                "detail": (gray[..., 1:] - gray[..., :-1]).abs().mean((1, 2, 3))}

    def examples(self, theta: torch.Tensor, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape classification: pictures `[n, P, 3, 32, 32]` and their labels `[n, P]`."""
        return data["images"], data["labels"]

    def model(self, inputs: tuple[int, ...], outputs: int, *, hidden: tuple[int, ...],
              generator: torch.Generator) -> nn.Module:
        """A small CNN: a 3×3 convolution, group norm and ReLU per width in `hidden`, max-pools, a linear layer."""
        from gmhf.domains.scenes.model import cnn

        return cnn(inputs, outputs, hidden, generator=generator)

    def view(self, theta: torch.Tensor, data: dict[str, torch.Tensor], index: int = 0, *,
             fmt: str = "png") -> bytes:
        """Environment `index`'s pictures, one per shape, enlarged, with θ in the title."""
        from gmhf.core.figures import caption
        from gmhf.domains.scenes.view import pictures_view

        return pictures_view(data["images"][index], data["shapes"][index], title=caption(self.space, theta[index]),
                             fmt=fmt)

    def truth_spec(self) -> str:
        """The text of the shipped benchmark truth spec (`truth.guide`)."""
        return resources.files(__name__).joinpath(TRUTH_SPEC).read_text(encoding="utf-8")


@hookimpl
def gmhf_domains(register: Callable[..., None]) -> None:
    """The scenes domain."""
    register(Scenes())
