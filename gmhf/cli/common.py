"""What every command family shares: torch threads, JSON on stdout, whether to draw a progress bar.

Imports no torch at module level, so light commands (`check`, `fmt`) may use it too.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from gmhf.console import progress_wanted


def set_torch_threads() -> None:
    """Use one torch thread unless `GMHF_THREADS` says otherwise.

    Small batches run fastest on one thread, and parallel runs (sweeps, CI) should not fight over
    cores. Imports torch, so call it only inside a command that needs torch anyway.
    """
    import torch

    torch.set_num_threads(int(os.environ.get("GMHF_THREADS", "1")))


def echo_json(document: Any) -> None:
    """Print `document` as the one JSON document a `--json` command writes on stdout."""
    click.echo(json.dumps(document, indent=2))


def show_progress(*, as_json: bool) -> bool:
    """Whether a command draws a progress bar: never with `--json`, else only on a terminal outside CI."""
    return not as_json and progress_wanted()
