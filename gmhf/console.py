"""What gmhf may draw on the user's console: the one place that decides whether a stream is a terminal
and whether progress bars show.

At the bottom of the layers: imports only the standard library, so the CLI and the core (the cNODE
trainer's progress) ask the same question the same way.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO


def progress_wanted(stream: TextIO | None = None) -> bool:
    """Whether to draw a progress bar on `stream` (default: `sys.stderr` at the time of the call).

    Only a person at a terminal wants one: not a pipe or a file (the bar's control codes would
    clutter the log), and not CI, which sets `CI` and often fakes a TTY.
    """
    return is_terminal(sys.stderr if stream is None else stream) and not os.environ.get("CI")


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal: False for a pipe, a file, a closed stream or a stand-in without isatty."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a stand-in without isatty, or a closed stream
        return False
