"""The scenes picture of one environment: its pictures, one per shape, enlarged for a person to judge."""

from __future__ import annotations

from torch import Tensor

from gmhf.core.figures import new_figure, render

__all__ = ["pictures_view"]

#: Pictures shown at most (the first of each shape, in label order).
SHOWN = 6


def pictures_view(images: Tensor, shapes: Tensor, *, title: str = "", fmt: str = "png") -> bytes:
    """The first picture of each shape of one environment (`images` `[P, 3, S, S]`, `shapes` `[P]`), enlarged.

    Pixels are drawn as blocks (no smoothing), so rain streaks and snow flakes look as the model sees them.
    """
    from gmhf.domains.scenes.render import SHAPES

    first: dict[int, int] = {}
    for j, shape in enumerate(shapes.tolist()):
        first.setdefault(int(shape), j)
    picked = list(first.values())[:SHOWN]
    figure = new_figure((1.6 * len(picked) + 0.4, 2.2))
    axes = figure.subplots(1, len(picked), squeeze=False)[0]
    for ax, j in zip(axes, picked, strict=True):
        ax.imshow(images[j].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        ax.set_title(SHAPES[int(shapes[j])], fontsize=8)
        ax.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=9)
    return render(figure, fmt)


def weather_grid(*, seed: int = 0, lighting: float = 0.8, fmt: str = "png") -> bytes:
    """One row per weather, one column per shape, the same objects in each row: what docs/domains/scenes.md shows."""
    import torch

    from gmhf.domains.scenes.render import SHAPES, WEATHERS
    from gmhf.domains.scenes.render import render as draw

    count = len(SHAPES)
    figure = new_figure((1.1 * count + 0.6, 1.15 * len(WEATHERS) + 0.3))
    axes = figure.subplots(len(WEATHERS), count, squeeze=False)
    for row, weather in enumerate(WEATHERS):
        values = [torch.full((count,), v) for v in (lighting, 0.5, 0.25, 0.02)]
        images = draw(torch.arange(count), torch.full((count,), row), *values,
                        generator=torch.Generator().manual_seed(seed))  # the same stream: the same objects
        for column in range(count):
            ax = axes[row][column]
            ax.imshow(images[column].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(SHAPES[column], fontsize=8)
            if column == 0:
                ax.set_ylabel(weather, fontsize=8)
    return render(figure, fmt)
