"""`gmhf sweep`: every method at every reliability over several seeds, then the report.

Like every command it imports torch only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gmhf.cli.common import FiniteFloat, set_torch_threads, show_progress
from gmhf.errors import EXIT_CODES_EPILOG as EPILOG
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from gmhf.sweep import Planned, SweepConfig

#: Defaults of the full sweep (those of `make demo`); `--quick` replaces some (`gmhf.sweep.QUICK`).
DEFAULTS: dict[str, Any] = {"steps": 300, "meta_batch": 16, "rounds": 30, "answers_per_round": 5}


def _reliabilities(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--reliability: expected comma-separated probabilities such as 0.5,0.9,1; got "
                         f"{text!r}.") from None
    if not all(0.0 <= value <= 1.0 for value in values):
        raise UsageError(f"--reliability: every value must be in [0, 1]; got {text!r}.")
    return values


@click.command(epilog=EPILOG)
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--truth", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Spec of the target: what simulated experts know, the oracle trains on, and deployment is "
                   "scored on.")
@click.option("--reliability", "reliability_text", metavar="P,P,…",
              help="Reliabilities of the simulated expert.  [default: 0.5,0.6,0.7,0.8,0.9,1.0; --quick: "
                   "0.5,0.7,0.9,1.0]")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Seeds 0 … N−1.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help="Sweep directory (one run folder per method, reliability and seed). Default: runs/<spec>-sweep.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Runs at once (processes).")
@click.option("--quick", is_flag=True, help="Fewer steps and rounds, reliabilities 0.5,0.7,0.9,1.0.")
@click.option("--method", "methods", multiple=True, metavar="NAME",
              help="Run only these methods (repeat): source-only, spec-only, domain-randomisation, gmhf, "
                   "gmhf-reinforce, oracle.  [default: all available]")
@click.option("--steps", type=click.IntRange(min=0), help="Meta-steps per run.  [default: 300; --quick: 120]")
@click.option("--meta-batch", type=click.IntRange(min=1), help="Tasks per step.  [default: 16]")
@click.option("--rounds", type=click.IntRange(min=0), help="Feedback rounds.  [default: 30; --quick: 20]")
@click.option("--answers-per-round", type=click.IntRange(min=1), help="Questions per round.  [default: 5]")
@click.option("--generator", type=click.Choice(["sim", "cnode"]), default="sim", show_default=True,
              help="Task data from the simulator, or from a cNODE twin (fitted once per seed, shared).")
@click.option("--learner", default="maml", show_default=True, help="The meta-learner.")
@click.option("--outer-lr", type=FiniteFloat(min=0, min_open=True), default=1e-3, show_default=True)
def sweep(specs: tuple[str, ...], truth: str, reliability_text: str | None, seeds: int, run_dir: str | None,
          jobs: int, quick: bool, methods: tuple[str, ...], generator: str, learner: str, outer_lr: float,
          **numbers: int | None) -> None:
    """Compare every method over reliabilities and seeds on SPEC; write results.json and the report.

    One run per (method, reliability, seed), each in its own folder under RUN/runs/ with a done
    marker: source-only, spec-only, domain-randomisation (the flagged factors uniform over their
    physical bounds), gmhf (a simulated expert right with probability p), gmhf-reinforce (when
    installed) and the oracle (trained on the truth: an upper bound). Within a seed every method
    starts from the same weights and is scored on the same truth tasks. Running the same command
    again skips finished runs and resumes unfinished ones. At the end RUN/report.html (self-contained)
    and RUN/results.md are written, as `gmhf report RUN` would.

    \b
    Examples:
      gmhf sweep examples/specs/duffing_vague.guide --truth gmhf/domains/duffing/truth.guide --jobs 2
      gmhf sweep examples/specs/duffing_vague.guide --truth gmhf/domains/duffing/truth.guide --quick
    """
    # Long: one command read top to bottom (settings, progress, Ctrl-C, report); a third is its --help.
    set_torch_threads()
    from gmhf.sweep import sweep as run_sweep

    config = _config(specs, truth, _reliabilities(reliability_text), seeds, quick,
                     {"generator": generator, "learner": learner, "outer_lr": outer_lr}, numbers)
    from gmhf.runner import load_belief

    load_belief(config.train)  # specs that cannot be read or pooled are refused before any folder is made
    root = Path(run_dir or Path("runs") / f"{Path(specs[0]).stem}-sweep")
    on_start, on_done, stop = _progress(show_progress(as_json=False))
    try:
        run_sweep(config, root, jobs=jobs, methods=methods or None, on_start=on_start, on_done=on_done)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; finished runs are kept. Rerun the same command to finish the sweep in {root}.",
                   err=True)
        raise click.exceptions.Exit(130) from None
    finally:
        stop()
    _finish(root)


def _config(specs: tuple[str, ...], truth: str, reliabilities: tuple[float, ...] | None, seeds: int, quick: bool,
            training: dict[str, Any], numbers: dict[str, int | None]) -> SweepConfig:
    """The sweep's settings: the defaults, then `--quick`'s, then the options given."""
    from pydantic import ValidationError

    from gmhf.core.trainer import TrainConfig
    from gmhf.sweep import QUICK, SweepConfig

    chosen = {**DEFAULTS, **({k: v for k, v in QUICK.items() if k != "reliabilities"} if quick else {}),
              **{k: v for k, v in numbers.items() if v is not None}}
    if reliabilities is None and quick:
        reliabilities = QUICK["reliabilities"]
    try:
        train = TrainConfig(spec=str(Path(specs[0]).resolve()), pooled_with=tuple(str(Path(s).resolve())
                                                                                  for s in specs[1:]),
                            truth=str(Path(truth).resolve()), **training,
                            steps=chosen["steps"], meta_batch=chosen["meta_batch"])
        settings: dict[str, Any] = {"rounds": chosen["rounds"], "answers_per_round": chosen["answers_per_round"],
                                    "seeds": seeds}
        if reliabilities is not None:
            settings["reliabilities"] = reliabilities
        return SweepConfig(train=train, **settings)
    except ValidationError as error:
        raise UsageError(str(error)) from None


def _line(run: Planned, record: dict[str, Any]) -> str:
    where = "" if run.reliability is None else f" p={run.reliability:g}"
    mmd = record.get("mmd")
    return (f"done {run.method}{where} seed {run.seed}: deployment loss {record['deployment_loss']:.4g} "
            f"(k0 {record['deployment_loss_k0']:.4g})" + ("" if mmd is None else f", MMD² {mmd:.3g}")
            + (f", {record['answers']} answers" if record.get("answers") else "") + f", {record['seconds']:.0f} s")


def _progress(enabled: bool) -> tuple[Any, Any, Any]:
    """One bar for the sweep on a terminal, and a line per finished run (on stderr) either way."""
    if not enabled:
        def start(done: int, total: int) -> None:
            click.echo(f"sweep: {total} runs, {done} already done", err=True)

        def finished(run: Planned, record: dict[str, Any]) -> None:
            click.echo(_line(run, record), err=True)

        return start, finished, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
    task = bar.add_task("sweep", total=None)
    bar.start()

    def begin(done: int, total: int) -> None:
        bar.update(task, total=total, completed=done)

    def advance(run: Planned, record: dict[str, Any]) -> None:
        bar.console.print(_line(run, record))
        bar.advance(task)

    return begin, advance, bar.stop


def _finish(root: Path) -> None:
    from gmhf.report import report
    from gmhf.report.table import summary_table

    written = report(root)
    summary_table(written.rows, f"deployment loss, mean ± SE over seeds ({root})")
    for note in written.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"results: {root / 'results.json'}\nreport: {written.html}\nsummary: {written.markdown}")
