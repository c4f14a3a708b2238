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
