"""The Duffing picture of one environment: x(t) beside its phase portrait, for a person to judge."""

from __future__ import annotations

from torch import Tensor

from gmhf.core.figures import new_figure, render

__all__ = ["trajectory_view"]


def trajectory_view(t: Tensor, x: Tensor, v: Tensor, *, title: str = "", fmt: str = "png",
                    size: tuple[float, float] = (7.0, 2.8)) -> bytes:
    """x(t) beside the phase portrait (x, v) of one trajectory, as PNG or SVG bytes.

    Args:
        t, x, v: the output times and the trajectory, each `[t]`.
        title: a caption, e.g. the environment's factors.
        fmt: "png" (small, for terminals and browsers) or "svg" (scalable).
    """
    figure = new_figure(size)
    left, right = figure.subplots(1, 2)
    left.plot(t.tolist(), x.tolist(), color="tab:blue", linewidth=1.2)
    left.set_xlabel("t")
    left.set_ylabel("x")
    left.set_title("displacement")
    right.plot(x.tolist(), v.tolist(), color="tab:orange", linewidth=1.0)
    right.set_xlabel("x")
    right.set_ylabel("v")
    right.set_title("phase portrait")
    if title:
        figure.suptitle(title, fontsize=9)
    return render(figure, fmt)
