"""`gmhf run`: the GMHF method end to end — expert feedback steers the spec, then meta-training on π.

Like every command it imports torch only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from gmhf.cli.common import echo_json, set_torch_threads, show_progress
from gmhf.cli.train import RUN_OPTIONS, report_evaluations, train_config, training_options, training_progress
from gmhf.errors import EXIT_CODES_EPILOG as EPILOG
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from gmhf.core.engine import RoundReport
    from gmhf.pipeline import RunResult

#: Options of the feedback loop; with --resume the saved config decides them.
LOOP_OPTIONS = ("expert", "panel", "agent", "steer", "shape", "rounds", "answers_per_round", "answers", "baselines",
                "show_theta")


@click.command(epilog=EPILOG)
@click.argument("specs", metavar="SPEC...", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help="Run directory (config, metrics.jsonl, feedback.sqlite, checkpoints). Default: runs/<spec>-gmhf.")
@click.option("--resume", is_flag=True, help="Continue the run in --run; stored answers are never asked again.")
@click.option("--expert", multiple=True, default=("simulated:0.9",), show_default=True,
              help="Who answers: simulated:P[,unsure=Q][,claims=C] (knows the truth; right with probability P; "
                   "states C), terminal (you, at this prompt), or one a plugin registers. Repeat for several "
                   "experts (see --panel), each weighed by its reliability as estimated from the answers.")
@click.option("--panel", type=click.Choice(["split", "shared"]), default="split", show_default=True,
              help="With several experts: split (each answers its own --answers-per-round questions, chosen "
                   "together for their reliabilities: more learnt per answer) or shared (every expert answers "
                   "every question).")
@click.option("--agent", type=click.Choice(["posterior", "reinforce"]), default="posterior", show_default=True,
              help="The steering agent: posterior (π ∝ q_H · P(plausible | answers)) or reinforce (the paper's "
                   "policy gradient); docs/method.md compares them.")
@click.option("--shape", type=click.Choice(["box", "any"]), default="box", show_default=True,
              help="What the posterior agent takes the plausible region to be: box (an interval per steered "
                   "factor, as a spec states a target: few answers) or any (any shape, e.g. factors linked "
                   "by a require: more answers).")
@click.option("--steer", type=click.Choice(["flagged", "all"]), default="flagged", show_default=True,
              help="Move only the factors the spec shifts or gives a prior, or every factor not invariant.")
@click.option("--rounds", type=click.IntRange(min=0), default=30, show_default=True, help="Feedback rounds.")
@click.option("--answers-per-round", type=click.IntRange(min=1), default=5, show_default=True,
              help="Questions per round, for each expert (small rounds need fewer answers in all).")
@click.option("--answers", type=click.Choice(["all", "auto"]), default="all", show_default=True,
              help="all: ask every round; auto: stop asking once an answer would teach less than 0.06 bits "
                   "(at most --rounds rounds).")
@click.option("--baselines", is_flag=True,
              help="Also train source-only, spec-only and oracle on the same tasks; print a paired table.")
@click.option("--show-theta", is_flag=True, help="Show a person θ next to each picture (hidden by default).")
@training_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.pass_context
def run(ctx: click.Context, specs: tuple[str, ...], run_dir: str | None, resume: bool, as_json: bool,
        expert: tuple[str, ...], panel: Literal["split", "shared"], agent: Literal["posterior", "reinforce"],
        steer: Literal["flagged", "all"], shape: Literal["box", "any"], rounds: int, answers_per_round: int,
        answers: Literal["all", "auto"], baselines: bool, show_theta: bool, **options: Any) -> None:
    """Steer SPEC with expert feedback, meta-train on the result, and report its deployment loss.

    Each round the agent proposes environments, the experts judge them (a picture of each), every
    question and answer is stored in RUN/feedback.sqlite before it is used, and the agent refines
    π(θ), the distribution training draws from. Then a learner is meta-trained on tasks from π
    (as `gmhf train` does) and deployed on the truth's tasks. RUN/metrics.jsonl has one row per
    round (answers, in_support, mmd, each expert's estimated reliability, bounds the answers push
    against), then the training rows. Several SPECs of one domain start from their beliefs pooled,
    weighted by each spec's `trust`.

    \b
    Examples:
      gmhf run examples/specs/duffing_vague.guide --expert simulated:0.9 --baselines
      gmhf run examples/specs/duffing_vague.guide --expert terminal --run runs/me
      gmhf run a.guide b.guide --expert simulated:0.9 --expert simulated:0.7 --answers auto
      gmhf run --resume --run runs/me            # after Ctrl-C, q, or a crash
    """
    # Long: one command read top to bottom (options, loop, Ctrl-C, report); a quarter is its --help.
    set_torch_threads()
    from gmhf.core.rundir import RunDirectory
    from gmhf.pipeline import RunConfig, execute, run_directory_name, saved_config

    if resume:
        given = [f"--{name.replace('_', '-')}" for name in (*RUN_OPTIONS, *LOOP_OPTIONS)
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
        if specs or given:
            raise UsageError(f"--resume continues the saved config; drop {', '.join(given or ['SPEC'])}.")
        if run_dir is None:
            raise UsageError("--resume needs --run DIR, the run to continue.")
        config = None
    elif not specs:
        raise UsageError("give the SPEC to steer (or --resume --run DIR).")
    else:
        if options["truth"] is not None:
            options["truth"] = str(Path(options["truth"]).resolve())
        train = train_config(str(Path(specs[0]).resolve()), options)
        train = train.model_copy(update={"pooled_with": tuple(str(Path(s).resolve()) for s in specs[1:])})
        config = RunConfig(train=train, experts=expert, panel=panel, agent=agent, steer=steer, shape=shape,
                           rounds=rounds, answers_per_round=answers_per_round, answers=answers,
                           baselines=baselines, show_theta=show_theta)
        run_dir = run_dir or run_directory_name(specs[0])
    # decided by the settings that will run (the saved ones on --resume): no bar over a person's prompts
    settings = config if config is not None else saved_config(RunDirectory(run_dir))
    progress = show_progress(as_json=as_json) and not any(e.startswith("terminal") for e in settings.experts)
    on_round, stop_rounds = _round_progress(settings.rounds, progress)
    on_step, stop_steps = training_progress(0, settings.train.steps) if progress else (report_evaluations, None)
    try:
        result = execute(config, run_dir, on_round=on_round, on_step=on_step, progress=progress)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; every answer given is stored. Continue with: gmhf run --resume --run {run_dir}",
                   err=True)
        raise click.exceptions.Exit(130) from None
    finally:
        for stop in (stop_rounds, stop_steps):
            if stop is not None:
                stop()
    if as_json:
        echo_json(result.document())
    else:
        _summary(result)
    if result.stopped:
        raise click.exceptions.Exit(130)


def _round_progress(total: int, enabled: bool) -> tuple[Any, Any]:
    """A bar over the rounds on a terminal; otherwise one line per round on stderr."""
    if not enabled:
        def line(report: RoundReport) -> None:
            inside = "" if report.in_support is None else f", {report.in_support:.0%} of π in the truth's support"
            click.echo(f"round {report.round + 1}: {report.answers} answers{inside}", err=True)
        return line, None
    from rich.progress import BarColumn, Progress, TextColumn

    bar = Progress(TextColumn("feedback"), BarColumn(), TextColumn("round {task.completed}/{task.total}"),
                   TextColumn("{task.fields[status]}"), transient=True)
    task = bar.add_task("rounds", total=total, status="")
    bar.start()

    def update(report: RoundReport) -> None:
        inside = "" if report.in_support is None else f"in support {report.in_support:.0%}"
        bar.update(task, completed=report.round + 1, status=f"{report.answers} answers {inside}")

    return update, bar.stop


def _summary(result: RunResult) -> None:
    """The answers, where π ended, each expert's estimated reliability, the bounds the answers push
    against, and the deployment table (paired differences with --baselines)."""
    from gmhf.core.misspecification import Suspicion

    if result.stopped:
        click.echo(f"stopped after {result.answers} answers (all stored). Continue with: "
                   f"gmhf run --resume --run {result.run}", err=True)
        return
    document = result.document()
    inside = document["in_support"]
    where = "" if inside is None else f"; {inside:.0%} of π inside the truth's support"
    early = "; stopped asking early (answers would teach little)" if result.finished_asking == "auto" else ""
    click.echo(f"{result.answers} answers{where}{early}\nrun directory: {result.run}")
    for key, estimate in (document["reliability"] or {}).items():
        click.echo(f"expert {key}: reliability estimated from the answers {estimate:.2f}")
    for found in document["misspecified"]:
        click.echo(Suspicion(**{**found, "statements": tuple(found["statements"])}).message(), err=True)
    from gmhf.render import deployment_table

    deployment_table(result.methods, result.paired, f"deployment loss on {result.truth}")
