"""The sweep's summary as a Rich table on the terminal (imported only by the commands that print it)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from gmhf.report.stats import Row

__all__ = ["summary_table"]


def summary_table(rows: Sequence[Row], title: str) -> None:
    """Deployment loss (k = 0, k = K), MMD, answers and the paired differences, one row per method and p."""
    from gmhf.report.sections import sweep_table

    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console = Console(soft_wrap=False, width=160)
    if not rows:
        console.print("no finished runs yet")
        return
    source = sweep_table(list(rows))
    table = Table(title=title, title_justify="left")
    for index, header in enumerate(source.headers):
        table.add_column(header, justify="left" if index == 0 else "right")
    for cells in source.rows:
        table.add_row(*cells)
    console.print(table)
