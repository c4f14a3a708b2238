"""A batch of environments: one row per environment, one named column per factor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["Theta"]


class Theta:
    """Named float64 values `[n, k]`; categorical factors hold level codes, with their level names.

    `theta["amplitude"]` is a column `[n]`; `theta.values` the whole matrix, in the domain's factor
    order; `theta.to_records()` plain dicts with level names, as `gmhf sample --json` prints.
    """

    def __init__(self, values: Tensor, names: tuple[str, ...], levels: Mapping[str, tuple[str, ...]] | None = None,
                 integers: tuple[str, ...] = ()) -> None:
        if values.ndim != 2 or values.shape[1] != len(names):
            raise ValueError(f"`values` must have shape [n, {len(names)}], got {list(values.shape)}.")
        self.values = values
        self.names = tuple(names)
        self.levels = dict(levels or {})
        self.integers = tuple(integers)

    def __getitem__(self, name: str) -> Tensor:
        column = self.values[:, self.names.index(name)]
        return column.long() if name in self.levels else column

    def __len__(self) -> int:
        return self.values.shape[0]

    def __iter__(self) -> Any:
        return iter(self.names)

    def to_records(self) -> list[dict[str, float | int | str]]:
        """One plain dict per environment; categorical values as level names."""
        columns: dict[str, list[Any]] = {}
        for name in self.names:
            column = self[name].tolist()
            if name in self.levels:
                column = [self.levels[name][code] for code in column]
            elif name in self.integers:
                column = [int(v) for v in column]
            columns[name] = column
        return [dict(zip(self.names, row, strict=True)) for row in zip(*columns.values(), strict=True)]

    def __repr__(self) -> str:
        dtype = {torch.float64: "f64", torch.float32: "f32"}.get(self.values.dtype, str(self.values.dtype))
        return f"Theta({dtype}[{len(self)}, {len(self.names)}], names={self.names!r})"
