"""Pictures of one generated environment, for a person to judge (terminal and web experts use them).

matplotlib is imported inside the function, with the non-interactive Agg backend, so nothing here
needs a display and importing this module costs nothing.
"""

from __future__ import annotations

import io
from typing import Literal

from torch import Tensor

__all__ = ["trajectory_view"]


def trajectory_view(t: Tensor, x: Tensor, v: Tensor, *, title: str = "", fmt: Literal["png", "svg"] = "png",
                    size: tuple[float, float] = (7.0, 2.8)) -> bytes:
    """x(t) beside the phase portrait (x, v) of one trajectory, as PNG or SVG bytes.

    Args:
        t, x, v: the output times and the trajectory, each `[t]`.
        title: a caption, e.g. the environment's factors.
        fmt: "png" (small, for terminals and browsers) or "svg" (scalable).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
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
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()
