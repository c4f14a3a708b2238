"""`gmhf report`: a sweep or run directory -> `report.html`, `results.md` and `plots/*.png`.

The report reads what the runs wrote and trains nothing; it never imports the feedback engine.
`report.html` is one self-contained file (figures embedded, style inline, no link out), so it opens
offline; `results.md` holds the same tables with links to the PNGs in `plots/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gmhf.errors import UsageError
from gmhf.files import write_atomic

if TYPE_CHECKING:
    from gmhf.report.data import FactorSamples, SweepData
    from gmhf.report.html import Section
    from gmhf.report.stats import Row

__all__ = ["Report", "report"]


@dataclass
class Report:
    """What `report` wrote, and the sweep's summary rows (empty for a run) for a terminal table."""

    kind: str
    html: Path
    markdown: Path
    plots: list[Path]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def report(path: str | os.PathLike[str]) -> Report:
    """Write `report.html`, `results.md` and `plots/` for the sweep or run directory at `path`.

    Args:
        path: a `gmhf sweep --run` directory (it has `results.json`) or a `gmhf run`/`gmhf train` one.

    Returns:
        The `Report`: the files written and, for a sweep, its summary rows.

    Raises:
        UsageError: `path` is neither a sweep nor a run directory.

    Example:
        >>> report("runs/duffing-sweep").html
        PosixPath('runs/duffing-sweep/report.html')
    """
    from gmhf.report.data import kind_of, load_run, load_sweep
    from gmhf.report.html import to_html, to_markdown

    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory; give a sweep or run directory.")
    kind = kind_of(root)
    if kind == "sweep":
        from gmhf.report.stats import rows

        data = load_sweep(root)
        sections = _sweep(data)
        title, table_rows = f"gmhf sweep: {root.name}", rows(data.records)
    else:
        from gmhf.report.data import factor_samples
        from gmhf.report.sections import run_sections

        sections = run_sections(load_run(root), factor_samples(root))
        title, table_rows = f"gmhf run: {root.name}", []
    written = _write_plots(root, sections)
    write_atomic(root / "report.html", to_html(title, sections))
    write_atomic(root / "results.md", to_markdown(title, sections))
    notes = [note for section in sections for note in section.notes]
    return Report(kind, root / "report.html", root / "results.md", written, table_rows, notes)


def _sweep(data: SweepData) -> list[Section]:
    from gmhf.report.sections import sweep_sections

    plan = root_plan(data.root)
    samples, reference = _final_pi(data)
    return sweep_sections(data, None if plan is None else len(plan), samples, reference)


def root_plan(root: Path) -> list[str] | None:
    """The run names a sweep planned (`plan.json`), or None for a sweep that wrote none."""
    path = root / "plan.json"
    if not path.exists():
        return None
    runs: list[str] = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
    return runs


def _final_pi(data: SweepData) -> tuple[dict[str, FactorSamples], FactorSamples | None]:
    """π at the lowest and highest reliability of gmhf, seed 0 (where finished), for the factors figure."""
    from gmhf.report.data import factor_samples

    seed0 = [r for r in data.records if r["method"] == "gmhf" and r["seed"] == 0]
    if not seed0:
        return {}, None
    chosen = sorted({min(r["reliability"] for r in seed0), max(r["reliability"] for r in seed0)})
    samples: dict[str, FactorSamples] = {}
    for record in seed0:
        if record["reliability"] in chosen:
            found = factor_samples(data.root / "runs" / record["run"])
            if found is not None:
                samples[f"π, gmhf p={record['reliability']:g}"] = found
    return samples, next(iter(samples.values()), None)


def _write_plots(root: Path, sections: list[Section]) -> list[Path]:
    folder = root / "plots"
    written = []
    for section in sections:
        for figure in section.figures:
            folder.mkdir(exist_ok=True)
            write_atomic(folder / figure.name, figure.png)
            written.append(folder / figure.name)
    return written
