"""A batch of environments: one row per environment, one named column per factor."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import torch
from torch import Tensor

__all__ = ["Records", "Theta"]


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

    def records(self) -> Records:
        """The same dicts as `to_records`, built a block at a time as they are read (for millions of rows)."""
        return Records(self)

    def __repr__(self) -> str:
        dtype = {torch.float64: "f64", torch.float32: "f32"}.get(self.values.dtype, str(self.values.dtype))
        return f"Theta({dtype}[{len(self)}, {len(self.names)}], names={self.names!r})"


class Records(Sequence[dict[str, Any]]):
    """A `Theta`'s rows as plain dicts, built `BLOCK` rows at a time: `gmhf sample --json` streams them."""

    BLOCK = 4096

    def __init__(self, theta: Theta) -> None:
        self.theta = theta

    def __len__(self) -> int:
        return len(self.theta)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        rows = range(len(self))[index]
        if isinstance(rows, int):
            return self._block(rows, rows + 1)[0]
        return [self._block(i, i + 1)[0] for i in rows]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for start in range(0, len(self), self.BLOCK):
            yield from self._block(start, start + self.BLOCK)

    def _block(self, start: int, stop: int) -> list[dict[str, Any]]:
        theta = self.theta
        return Theta(theta.values[start:stop], theta.names, theta.levels, theta.integers).to_records()
