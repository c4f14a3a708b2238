"""bench/dsl.py's measure 5: the wall time of whole `gmhf` processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import ROOT  # bench/common.py (run as a script)
from dsl_measures import Goal, Measure, duration, timings


def gmhf_script() -> str:
    """The `gmhf` script next to this interpreter (the venv's), else the one on PATH."""
    script = Path(sys.executable).with_name("gmhf")
    return str(script) if script.exists() else "gmhf"


def cli_measures() -> list[Measure]:
    """Wall time of whole `gmhf` processes: start-up is what a user waits for on every call."""
    measures = []
    for args in (["--help"], ["check", "examples/specs/sinusoid.guide"]):
        command = [gmhf_script(), *args]

        def run(command: list[str] = command) -> None:
            subprocess.run(command, cwd=ROOT, capture_output=True, check=True)

        measures.append(duration(f"gmhf {' '.join(args)}", "s", Goal("<=", 0.3), timings(run)))
    return measures

