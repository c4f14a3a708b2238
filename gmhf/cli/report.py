"""`gmhf report`: a sweep or run directory -> a self-contained report.html, results.md and plots/."""

from __future__ import annotations

import click

from gmhf.errors import EXIT_CODES_EPILOG as EPILOG


@click.command(epilog=EPILOG)
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def report(directory: str) -> None:
    """Write DIRECTORY/report.html, results.md and plots/ for a sweep or run directory.

    For a sweep (`gmhf sweep --run DIRECTORY`): deployment loss at k = 0 and k = K per method and
    reliability (mean ± SE over seeds), paired differences against spec-only and the oracle, and the
    figures (loss vs reliability, MMD vs round, answers needed, the bound's terms, π per factor).
    For a single `gmhf run` or `gmhf train` directory: its rounds, π vs q_H vs the truth per flagged
    factor, and its deployment table. report.html embeds its images and opens offline.

    \b
    Examples:
      gmhf report runs/duffing_vague-sweep
      gmhf report runs/demo
    """
    from pathlib import Path

    from gmhf.cli.common import set_torch_threads
    from gmhf.report.data import kind_of

    kind_of(Path(directory))  # a folder that is neither a sweep nor a run is refused before torch loads
    set_torch_threads()
    from gmhf.report import report as write_report
    from gmhf.report.table import summary_table

    written = write_report(directory)
    if written.kind == "sweep":
        summary_table(written.rows, f"deployment loss, mean ± SE over seeds ({directory})")
    for note in written.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"report: {written.html}\nsummary: {written.markdown}\nplots: {len(written.plots)} in "
               f"{written.html.parent / 'plots'}")
