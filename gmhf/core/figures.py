"""Figures rendered to bytes, for a person to judge one environment (terminal and web experts show them).

One place picks the backend and checks the format, so every domain's `view` renders alike. matplotlib
is imported inside the functions, with the non-interactive Agg backend: nothing here needs a display,
and importing this module costs nothing.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import Tensor

    from gmhf.core.factors import FactorSpace

__all__ = ["FORMATS", "caption", "check_format", "new_figure", "render"]

#: The picture formats a `view` may be asked for: PNG (small, for terminals and browsers) or SVG (scalable).
FORMATS = ("png", "svg")


def check_format(fmt: str) -> str:
    """`fmt` itself if it is one of `FORMATS`; a `UsageError` naming the choices otherwise."""
    if fmt not in FORMATS:
        from gmhf.errors import UsageError

        raise UsageError(f"`fmt` must be one of {', '.join(map(repr, FORMATS))}, got {fmt!r}.")
    return fmt


def new_figure(size: tuple[float, float] = (7.0, 2.8)) -> Figure:
    """An empty figure (inches, 100 dpi, constrained layout) that needs no display."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100, layout="constrained")


def render(figure: Figure, fmt: str = "png") -> bytes:
    """The figure's bytes in `fmt` ("png" or "svg")."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=check_format(fmt))
    return buffer.getvalue()


def caption(space: FactorSpace, row: Tensor) -> str:
    """One environment's θ `[k]` as `name=value, …` (a categorical factor by its level), for a title."""
    parts = []
    for factor, value in zip(space, row.tolist(), strict=True):
        shown = factor.levels[int(value)] if factor.kind == "categorical" else f"{value:.3g}"
        parts.append(f"{factor.name}={shown}")
    return ", ".join(parts)
