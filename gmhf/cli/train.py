"""`gmhf train`: meta-train a learner on tasks generated from a spec, resumable after a crash.

One module per family of verbs (`gmhf.cli` lists them lazily); like every command it imports torch
only when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gmhf.cli.common import FiniteFloat, echo_json, set_torch_threads, show_progress
from gmhf.errors import EXIT_CODES_EPILOG as EPILOG
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from gmhf.core.trainer import TrainConfig

#: Options that shape a run; with --resume the saved config decides them, so they may not be given
#: (except `--steps`, which extends the run).
RUN_OPTIONS = ("learner", "steps", "meta_batch", "support", "query", "inner_steps", "inner_lr", "outer_lr",
               "hidden", "tasks_per_chunk", "truth", "seed", "checkpoint_every", "eval_every", "pool_size",
               "refresh_every", "generator", "twin_samples", "twin_steps")


#: The widest hidden layer `--hidden` accepts (a wider one is a typo, and would try to allocate gigabytes).
MAX_WIDTH = 16_384


def _hidden(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in value.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--hidden: expected comma-separated positive layer widths such as 40,40; got {value!r}.")
    if max(sizes) > MAX_WIDTH:
        raise UsageError(f"--hidden: a layer of {max(sizes):,} units is more than gmhf trains ({MAX_WIDTH:,} at most; "
                         f"a meta-learner's model is small).")
    return sizes


#: The options of a meta-training run, shared by `gmhf train` and `gmhf run`.
TRAINING_OPTIONS = (
    click.option("--learner", default="maml", show_default=True,
                  help="maml, fomaml, anil, reptile, protonet, or one a plugin registers."),
    click.option("--steps", type=click.IntRange(min=0), default=1000, show_default=True, help="Meta-iterations."),
    click.option("--meta-batch", type=click.IntRange(min=1), default=32, show_default=True, help="Tasks per step."),
    click.option("--support", type=click.IntRange(min=1), default=5, show_default=True, help="Examples to adapt on."),
    click.option("--query", type=click.IntRange(min=1), default=10, show_default=True, help="Examples to score on."),
    click.option("--inner-steps", type=click.IntRange(min=0), default=5, show_default=True,
                  help="SGD steps on the support set (MAML family, Reptile)."),
    click.option("--inner-lr", type=FiniteFloat(min=0, min_open=True), default=0.01, show_default=True),
    click.option("--outer-lr", type=FiniteFloat(min=0, min_open=True), default=1e-3, show_default=True,
                  help="Adam's learning rate for the meta-parameters."),
    click.option("--hidden", default="40,40", show_default=True, help="Hidden layer widths of the MLP."),
    click.option("--tasks-per-chunk", type=click.IntRange(min=1), help="Cap on tasks processed at once (memory)."),
    click.option("--truth", type=click.Path(exists=True, dir_okay=False),
                  help="Spec of the real target, for the deployment loss (default: the domain's benchmark truth)."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--checkpoint-every", type=click.IntRange(min=1), default=100, show_default=True),
    click.option("--eval-every", type=click.IntRange(min=0), default=0, show_default=True,
                  help="Steps between deployment-loss evaluations (0: only at the end)."),
    click.option("--pool-size", type=click.IntRange(min=1), default=1024, show_default=True,
                  help="Environments generated at once."),
    click.option("--refresh-every", type=click.IntRange(min=0), default=200, show_default=True,
                  help="Steps between regenerations of the pool (0: never)."),
    click.option("--generator", type=click.Choice(["sim", "cnode"]), default="sim", show_default=True,
                  help="Task data from the domain's simulator, or from a cNODE twin fitted to source simulations "
                       "(fitted once, cached in RUN/twin.pt)."),
    click.option("--twin-samples", type=click.IntRange(min=8), default=512, show_default=True,
                  help="Source simulations the cNODE twin is fitted on."),
    click.option("--twin-steps", type=click.IntRange(min=1), default=400, show_default=True,
                  help="Optimiser steps of the twin's fit."),
)


def training_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Apply `TRAINING_OPTIONS` to a command (in --help order)."""
    for option in reversed(TRAINING_OPTIONS):
        command = option(command)
    return command


@click.command(epilog=EPILOG)
@click.argument("spec", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help="Run directory (config, metrics.jsonl, checkpoints). Default: runs/<spec>-<learner>.")
@click.option("--resume", is_flag=True, help="Continue the run in --run from its last checkpoint.")
@training_options
@click.option("--domain", help="Domain for a spec without a `domain` line.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.pass_context
def train(ctx: click.Context, spec: str | None, run_dir: str | None, resume: bool, as_json: bool,
          **options: Any) -> None:
    """Meta-train a learner on environments drawn from SPEC; report its deployment loss.

    Each step draws a meta-batch of tasks (support + query examples of one generated environment),
    and the learner's meta-gradient moves the model. Metrics go to RUN/metrics.jsonl, timings
    (generating vs learning) to RUN/timings.jsonl, checkpoints to RUN/checkpoints/. The deployment
    loss is the query loss on tasks from the truth spec before (k0) and after (kK) adapting.

    \b
    Examples:
      gmhf train examples/specs/sinusoid.guide --steps 500 --run runs/sine
      gmhf train --resume --run runs/sine        # after a crash or Ctrl-C
      gmhf train --resume --run runs/sine --steps 1000   # train a run on to 1000 steps
    """
    # Long: one command read top to bottom (options, run, Ctrl-C, report); a fifth is its --help.
    set_torch_threads()
    from gmhf.runner import training

    extend: int | None = None
    if resume:
        given = [f"--{name.replace('_', '-')}" for name in (*RUN_OPTIONS, "domain")  # `gmhf run` has no --domain
                 if name != "steps" and ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
        if spec is not None or given:
            raise UsageError(f"--resume continues the saved config; drop {', '.join(given or ['SPEC'])}.")
        if run_dir is None:
            raise UsageError("--resume needs --run DIR, the run to continue.")
        config = None
        if ctx.get_parameter_source("steps") is not click.core.ParameterSource.DEFAULT:
            extend = options["steps"]  # --resume --steps N: train the run on to N steps
    elif spec is None:
        raise UsageError("give the SPEC to train on (or --resume --run DIR).")
    else:
        if options["truth"] is not None:
            options["truth"] = str(Path(options["truth"]).resolve())
        config = train_config(str(Path(spec).resolve()), options)
        run_dir = run_dir or str(Path("runs") / f"{Path(spec).stem}-{config.learner}")
    progress = show_progress(as_json=as_json)
    with training(config, run_dir, progress=progress, steps=extend) as run:
        trainer = run.trainer
        finish = None
        if progress:
            trainer.on_step, finish = training_progress(trainer.step, trainer.config.steps)
        else:
            trainer.on_step = report_evaluations
        try:
            result = trainer.run()
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted at step {trainer.step}; a checkpoint was written. Continue with: "
                       f"gmhf train --resume --run {run_dir}", err=True)
            raise click.exceptions.Exit(130) from None
        finally:
            if finish is not None:
                finish()
    document = {"run": str(run_dir), "step": result.step, "skipped": result.skipped,
                "truth": run.truth_name, "deployment": result.deployment}
    if as_json:
        echo_json(document)
        return
    losses = ", ".join(f"{k} = {v:.4g}" for k, v in result.deployment.items())
    click.echo(f"{result.step} steps ({result.skipped} skipped); deployment loss on {run.truth_name}: "
               f"{losses}\nrun directory: {run_dir}")


def train_config(spec: str, options: dict[str, Any]) -> TrainConfig:
    """The `TrainConfig` of the training options (shared by `train` and `run`); bad values are usage errors."""
    from pydantic import ValidationError

    from gmhf.core.trainer import TrainConfig
    from gmhf.runner import inner_loop_options

    learner_options = inner_loop_options(options["learner"], inner_steps=options.pop("inner_steps"),
                                         inner_lr=options.pop("inner_lr"))
    try:
        return TrainConfig(spec=spec, hidden=_hidden(options.pop("hidden")), learner_options=learner_options,
                           **options)
    except ValidationError as error:
        raise UsageError(str(error)) from None


def _evaluation_text(line: dict[str, Any]) -> str:
    losses = ", ".join(f"{k} = {v:.4g}" for k, v in line["deployment"].items())
    return f"step {line['step']}: deployment loss {losses}"


def report_evaluations(step: int, line: dict[str, Any]) -> None:
    """Without a progress bar, the periodic deployment losses still show, on stderr."""
    if "deployment" in line:
        click.echo(_evaluation_text(line), err=True)


def training_progress(done: int, total: int) -> tuple[Any, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[loss]}"), TimeRemainingColumn(), transient=True)
    task = progress.add_task("train", total=total, completed=done, loss="")
    progress.start()

    def on_step(step: int, line: dict[str, Any]) -> None:
        if "deployment" in line:
            progress.console.print(_evaluation_text(line))
        loss = line.get("loss")
        progress.update(task, completed=step, loss=f"loss {loss:.4g}" if isinstance(loss, float) else "")

    return on_step, progress.stop
