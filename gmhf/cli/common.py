"""What every command family shares: torch threads, JSON on stdout, whether to draw a progress bar.

Imports no torch at module level, so light commands (`check`, `fmt`) may use it too.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable
from typing import Any

import click

from gmhf.console import progress_wanted
from gmhf.errors import UsageError
from gmhf.files import strict


class FiniteFloat(click.ParamType):
    """A float option that refuses NaN and infinities (click's `FloatRange` lets NaN through).

    Args:
        min: the smallest value allowed, if any.
        min_open: whether `min` itself is refused (a learning rate must be > 0, not >= 0).
    """

    name = "float"

    def __init__(self, min: float | None = None, *, min_open: bool = False) -> None:
        self.min, self.min_open = min, min_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        """`value` as a finite float at or above `min`, else a click usage error naming the option."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number.", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        if self.min is not None and (number < self.min or (self.min_open and number == self.min)):
            self.fail(f"{value!r} must be {'>' if self.min_open else '>='} {self.min:g}.", param, ctx)
        return number

    def __repr__(self) -> str:
        return f"FiniteFloat(min={self.min!r}, min_open={self.min_open!r})"


def set_torch_threads() -> None:
    """Use one torch thread unless `GMHF_THREADS` says otherwise.

    Small batches run fastest on one thread, and parallel runs (sweeps, CI) should not fight over
    cores. Imports torch, so call it only inside a command that needs torch anyway.
    """
    import torch

    text = os.environ.get("GMHF_THREADS", "1")
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if not 1 <= threads <= (os.cpu_count() or 1) * 4:
        raise UsageError(f"GMHF_THREADS must be a whole number from 1 to {(os.cpu_count() or 1) * 4} "
                         f"(this machine has {os.cpu_count()} cores), got {text!r}.")
    torch.set_num_threads(threads)


def echo_json(document: Any) -> None:
    """Print `document` as the one strict JSON document a `--json` command writes on stdout.

    JSON has no NaN or infinity: a non-finite number (an unbounded support, a diverged loss) is
    written as null, so any JSON parser reads the output.
    """
    click.echo(json.dumps(strict(document), indent=2, allow_nan=False))


def echo_json_stream(document: dict[str, Any], key: str, items: Iterable[Any]) -> None:
    """`echo_json({**document, key: list(items)})`, byte for byte, written item by item.

    A million samples never sit in memory as one string: the document is written up to the list,
    then each item, then the closing brackets, still one strict JSON document.
    """
    head = json.dumps(strict({**{k: v for k, v in document.items() if k != key}, key: []}), indent=2, allow_nan=False)
    out = sys.stdout  # what click.echo writes to (CliRunner swaps it too)
    out.write(head[: -len("[]\n}")] + "[")
    first, batch = True, []
    for item in items:
        text = json.dumps(strict(item), indent=2, allow_nan=False).replace("\n", "\n    ")
        batch.append(("\n    " if first else ",\n    ") + text)
        first = False
        if len(batch) >= 4096:
            out.write("".join(batch))
            batch.clear()
    out.write("".join(batch) + ("]" if first else "\n  ]") + "\n}\n")
    out.flush()


def show_progress(*, as_json: bool) -> bool:
    """Whether a command draws a progress bar: never with `--json`, else only on a terminal outside CI."""
    return not as_json and progress_wanted()
