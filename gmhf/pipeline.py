"""`gmhf run`: the GMHF method end to end — steer with expert feedback, meta-train on π, deploy.

The run layer for the feedback loop: it loads the spec, the truth and the experts, builds the
steering agent and the generator, runs the rounds (`core.engine`), trains on π (`core.trainer`)
and, with `baselines`, trains the comparison methods on the same evaluation tasks from the same
initial weights so their deployment losses can be compared task by task.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gmhf.core.trainer import TrainConfig
from gmhf.errors import GmhfError, UsageError

if TYPE_CHECKING:
    from gmhf.core.belief import Belief
    from gmhf.core.engine import RoundReport
    from gmhf.core.experts import Expert
    from gmhf.core.guidance import Guidance
    from gmhf.core.rundir import RunDirectory
    from gmhf.core.steer import Steerer
    from gmhf.core.trainer import Trainer

__all__ = ["BASELINES", "RunConfig", "RunResult", "execute", "run", "saved_config"]

#: The comparison methods of `--baselines`, by the name results use, and what each trains on.
BASELINES = ("source-only", "spec-only", "oracle")
#: `answers="auto"` stops asking once an answer about a typical draw of π would carry less than
#: this many bits (the expected information, at the most reliable expert's weight; at most
#: 1 − H₂(p), e.g. 0.53 bits at p = 0.9) in AUTO_QUIET rounds in a row. Measured on the vague
#: Duffing example at p = 0.9 (seeds 0, 1): it falls below 0.06 for good after 200–280 answers,
#: once π holds about 90% in the truth's support; single early rounds dip below it.
AUTO_BITS = 0.06
AUTO_QUIET = 3


class RunConfig(BaseModel):
    """Everything that decides a `gmhf run` (saved in the run's `config.json`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    train: TrainConfig = Field(description="the meta-training on π (its `spec` is the expert's spec)")
    experts: tuple[str, ...] = Field(("simulated:0.9",), min_length=1, description="KIND[:ARGUMENT] each")
    panel: Literal["split", "shared"] = "split"  # several experts: each its own questions, or every one all of them
    agent: Literal["posterior", "reinforce"] = "posterior"
    steer: Literal["flagged", "all"] = "flagged"
    shape: Literal["box", "any"] = "box"  # the posterior agent's hypothesis about the plausible region
    rounds: int = Field(30, ge=0, description="feedback rounds (the most, with answers='auto')")
    answers_per_round: int = Field(5, ge=1)
    answers: Literal["all", "auto"] = "all"  # auto: stop asking once answers would teach little (AUTO_BITS)
    show_theta: bool = False
    baselines: bool = False


@dataclass
class RunResult:
    """How a run ended: the answers, where π stood, and the deployment losses (paired table with baselines)."""

    run: str
    answers: int
    stopped: bool
    rounds: list[dict[str, Any]]
    deployment: dict[str, float] | None = None
    truth: str = ""
    methods: dict[str, dict[str, float]] = field(default_factory=dict)
    paired: dict[str, dict[str, float]] = field(default_factory=dict)
    bound: dict[str, float] | None = None
    finished_asking: str = "rounds"  # why the questions ended: all rounds asked, or `auto` found them idle

    def document(self) -> dict[str, Any]:
        """The `--json` document."""
        last = self.rounds[-1] if self.rounds else {}
        return {"run": self.run, "answers": self.answers, "stopped": self.stopped,
                "finished_asking": self.finished_asking, "in_support": last.get("in_support"),
                "mmd": last.get("mmd"), "mmd_data": last.get("mmd_data"), "reliability": last.get("reliability"),
                "misspecified": last.get("misspecified", []), "truth": self.truth, "deployment": self.deployment,
                "methods": self.methods, "paired": self.paired, "bound": self.bound}


def run(spec: str | os.PathLike[str] | None = None, *, run_dir: str | os.PathLike[str] | None = None,
        resume: bool = False, truth: str | os.PathLike[str] | None = None,
        experts: tuple[str, ...] | list[str] = ("simulated:0.9",),
        panel: Literal["split", "shared"] = "split", agent: Literal["posterior", "reinforce"] = "posterior",
        steer: Literal["flagged", "all"] = "flagged", shape: Literal["box", "any"] = "box", rounds: int = 30,
        answers_per_round: int = 5, answers: Literal["all", "auto"] = "all", baselines: bool = False,
        show_theta: bool = False, on_round: Callable[[RoundReport], None] | None = None, **train: Any) -> RunResult:
    """Run the GMHF method: steer the spec's belief with expert answers, meta-train on π, deploy.

    Args:
        spec: the expert's spec (a path or spec text), or a list of specs of one domain, pooled by
            their trust; omit it with `resume=True`.
        run_dir: the run directory (default `runs/<spec>-gmhf`); with `resume=True`, the run to continue.
        truth: the target's spec, for simulated experts and the deployment loss (default: the domain's).
        experts, panel: who answers, e.g. `("simulated:0.9",)`; several answer their own questions each
            (`panel="split"`) or every one all of them (`"shared"`).
        agent, steer: the steering agent, and whether it moves the flagged factors or all non-invariant ones.
        shape: the region `posterior` assumes: `"box"` (as specs state targets) or `"any"` (more answers).
        rounds, answers_per_round, answers: the feedback budget (questions a round for each expert);
            `"auto"` stops asking early once answers would teach little (`AUTO_BITS`).
        baselines: also train source-only, spec-only and oracle on the same tasks, for a paired table.
        **train: `TrainConfig` fields (learner, steps, meta_batch, generator, seed, …).

    Returns:
        The `RunResult`: answers, the round rows (in-support fraction, MMD), deployment losses.

    Example:
        >>> result = gmhf.run("examples/specs/duffing_vague.guide", experts=["simulated:1.0"], rounds=10,
        ...                   steps=200, run_dir="runs/vague")
        >>> result.deployment
    """
    if resume:
        if spec is not None or train or run_dir is None:
            raise UsageError("`resume=True` continues the saved run: give only `run_dir`.")
        return execute(None, run_dir, on_round=on_round)
    if spec is None:
        raise UsageError("`spec` is needed to start a run (or pass `resume=True` with `run_dir`).")
    specs = [str(Path(s).resolve()) if isinstance(s, os.PathLike) else s  # a Path stays a file
             for s in (spec if isinstance(spec, list | tuple) else [spec])]
    if not specs:
        raise UsageError("`spec` is an empty list; give at least one spec.")
    try:
        config = RunConfig(train=TrainConfig(spec=specs[0], pooled_with=tuple(specs[1:]),
                                             truth=None if truth is None else str(truth), **train),
                           experts=tuple(experts), panel=panel, agent=agent, steer=steer, shape=shape, rounds=rounds,
                           answers_per_round=answers_per_round, answers=answers, baselines=baselines,
                           show_theta=show_theta)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise UsageError(str(error)) from None
    return execute(config, run_dir or run_directory_name(str(specs[0])), on_round=on_round)


def execute(config: RunConfig | None, run_dir: str | os.PathLike[str], *,
            on_round: Callable[[RoundReport], None] | None = None,
            on_step: Callable[[int, dict[str, Any]], None] | None = None, progress: bool = False) -> RunResult:
    """Run (or with `config=None`, resume) the GMHF method in `run_dir`, holding its lock throughout."""
    from gmhf.core.rundir import RunDirectory

    directory = RunDirectory(run_dir)
    if config is None and not directory.config.exists():
        raise GmhfError(f"{directory.path} holds no run to resume (no config.json).")
    with directory.lock():
        if config is None:
            config, resuming = saved_config(directory), True
        else:
            directory.check_new()
            resuming = False
        return _Run(config, directory, resuming, progress).execute(on_round, on_step)


def saved_config(directory: RunDirectory) -> RunConfig:
    """The `RunConfig` a run directory was started with (a clear error for a damaged or foreign one)."""
    from pydantic import ValidationError

    saved = directory.read_config().get("gmhf_run")
    if isinstance(saved, dict):  # started before these existed: what there was then
        saved = {"shape": "any", "panel": "shared", **saved}
    try:
        return RunConfig.model_validate(saved)
    except ValidationError as error:
        raise GmhfError(f"{directory.config} is damaged or not a `gmhf run` directory: {error}") from None


class _Run:
    """One execution: everything is built up front, so every refusal comes before the directory exists."""

    def __init__(self, config: RunConfig, directory: RunDirectory, resuming: bool, progress: bool) -> None:
        from gmhf.runner import (
            build_generator,
            build_learner,
            evaluation_tasks,
            load_belief,
            load_truth,
            run_seeds,
            spec_digests,
            spec_present,
        )

        self.config, self.directory, self.resuming = config, directory, resuming
        train = config.train
        if resuming:
            for spec in (train.spec, *train.pooled_with):
                spec_present(spec, directory.path)
        self.guidance = load_belief(train)
        self.specs: list[Guidance] = list(getattr(self.guidance, "beliefs", [self.guidance]))
        truth, self.truth_name = load_truth(train.truth, self.guidance)
        self.truth: Belief | None = None if truth is self.guidance else truth
        self.seeds = run_seeds(train.seed)
        self.experts = [self._expert(text, index) for index, text in enumerate(config.experts)]
        self.evaluation = evaluation_tasks(train, truth, self.seeds["eval"])
        self.learner = build_learner(train, self.evaluation, self.seeds["model"], domain=self.guidance.domain)
        self.steerer = _steerer(config, self.guidance)
        digests = spec_digests(self.guidance, self.truth)
        if resuming:
            if digests != directory.read_config().get("specs"):
                raise GmhfError(f"the spec or truth of the run in {directory.path} changed since the run started; "
                                f"resuming would not continue the same run. Restore it or start a new run.")
        else:
            directory.create({"gmhf_run": config.model_dump(mode="json"), "specs": digests})
        self.generator = build_generator(train, self.guidance.domain, directory, self.seeds["twin"], progress)

    def _expert(self, text: str, index: int) -> Expert:
        from gmhf.core.experts import ExpertContext, parse_expert
        from gmhf.core.registry import resolve
        from gmhf.dsl.errors import did_you_mean
        from gmhf.plugins.manager import plugin_host

        kind, argument = parse_expert(text)
        experts = plugin_host().registry.experts
        if kind not in experts:
            hint = did_you_mean(kind, experts)
            raise UsageError(f"unknown expert {kind!r}{f'; {hint}' if hint else ''} "
                             f"(registered: {', '.join(sorted(experts))}).")
        context = ExpertContext(truth=self.truth, seed=self.config.train.seed, index=index,
                                pictures=self.directory.plots / "questions", show_theta=self.config.show_theta)
        expert: Expert = resolve(experts[kind]).create(argument, context)
        return expert

    def execute(self, on_round: Callable[[RoundReport], None] | None,
                on_step: Callable[[int, dict[str, Any]], None] | None) -> RunResult:
        from gmhf.core.engine import FeedbackLoop
        from gmhf.core.store import FeedbackStore

        training_began = self.resuming and bool(self.directory.steps())
        if not training_began:
            self.directory.truncate_logs({name: 0 for name in self.directory.replayed_logs()})
        rounds: list[dict[str, Any]] = []
        with FeedbackStore(self.directory.feedback) as store:
            loop = FeedbackLoop(self.steerer, self.experts, store, domain=self.guidance.domain,
                                generator=self.generator, truth=self.truth, seed=self.config.train.seed,
                                answers_per_round=self.config.answers_per_round, belief=self.guidance,
                                specs=self.specs, panel=self.config.panel)
            finished_asking, quiet = "rounds", 0
            for round_ in range(self.config.rounds):
                report = loop.run_round(round_, ask=not training_began, measure=not training_began)
                if not training_began:
                    self.directory.log(report.row())
                    rounds.append(report.row())
                if on_round is not None:
                    on_round(report)
                if report.stopped:
                    return RunResult(str(self.directory.path), store.count(), True, rounds)
                quiet = quiet + 1 if _quiet(report) else 0
                if self.config.answers == "auto" and quiet >= AUTO_QUIET:
                    finished_asking = "auto"
                    break
            answers = loop.answers
        if training_began:
            rounds = [row for row in _read_rows(self.directory) if "round" in row]
        trainer = self._trainer(on_step)
        trainer.run()
        result = RunResult(str(self.directory.path), answers, False, rounds, trainer.finished, self.truth_name,
                           finished_asking=finished_asking)
        result.bound = self._bound(trainer)
        methods = {"gmhf": trainer}
        if self.config.baselines:
            methods.update(self._baselines(on_step))
        _tabulate(result, methods)
        _save(result, self.directory)
        return result

    def _trainer(self, on_step: Callable[[int, dict[str, Any]], None] | None) -> Trainer:
        from gmhf.runner import build_trainer

        start = self.directory.log_sizes()
        trainer = build_trainer(self.config.train, self.steerer, self.guidance.domain, self.guidance.expects,
                                self.generator, self.learner, self.evaluation, self.directory, self.seeds["pool"],
                                on_step)
        if self.resuming:
            trainer.restore(start_logs=start)
        return trainer

    def _bound(self, trainer: Trainer) -> dict[str, float] | None:
        """The terms of the deployment bound (docs/method.md), next to the deployment loss they bound.

        Only where its assumptions hold: a truth is known and both sides are generated by the same
        simulator (with a twin, π's tasks come from another mapping of θ to data).
        """
        import torch

        from gmhf.core.metrics import deployment_bound, total_variation
        from gmhf.core.tasks import TaskPool

        if self.truth is None or self.config.train.generator != "sim":
            return None
        train, truth = self.config.train, self.truth
        held_out = TaskPool(self.steerer, self.generator, self.guidance.domain, expects=self.guidance.expects,
                            size=train.eval_tasks, support=train.support, query=train.query,
                            seed=self.seeds["eval"] + 1).sample(train.eval_tasks)  # tasks of π never trained on
        learner = trainer.learner
        on_pi = learner.evaluate(held_out, steps=learner.inner_steps)[held_out.valid]
        measured = trainer.deployment_losses()
        measured = measured[torch.isfinite(measured)]
        cap = float(torch.cat([on_pi, measured]).max())
        draws = truth.sample(4096, generator=torch.Generator().manual_seed(self.seeds["eval"])).values
        tv = total_variation(self.steerer.log_prob(draws), truth.log_prob(draws))
        bound = deployment_bound(on_pi, tv, cap=cap)
        return {**bound.as_dict(), "tv": tv.value, "measured": float(measured.clamp(max=cap).mean())}

    def _baselines(self, on_step: Callable[[int, dict[str, Any]], None] | None) -> dict[str, Trainer]:
        """source-only, spec-only and oracle: plain training runs with the same seed, truth and settings."""
        from gmhf.runner import resume_training, start_training

        train = self.config.train
        truth_text = train.truth or self.guidance.domain.truth_spec() or train.spec
        specs = {"source-only": f"domain {self.guidance.domain.name}", "spec-only": train.spec, "oracle": truth_text}
        done: dict[str, Trainer] = {}
        for name in BASELINES:
            folder = self.directory.path / "baselines" / name
            pooled = train.pooled_with if name == "spec-only" else ()  # spec-only trains on the pooled belief
            config = train.model_copy(update={"spec": specs[name], "pooled_with": pooled})
            built = (resume_training(folder, on_step=on_step) if (folder / "config.json").exists()
                     else start_training(config, folder, on_step=on_step))
            built.trainer.run()
            done[name] = built.trainer
        return done


def _steerer(config: RunConfig, belief: Belief) -> Steerer:
    """The agent `config.agent` names, on the belief it steers."""
    from gmhf.core.seeding import named_seed

    seed = named_seed("gmhf-steer", config.train.seed)
    if config.agent == "reinforce":
        from gmhf.core.reinforce import ReinforceSteerer

        agent: Steerer = ReinforceSteerer(belief, steer=config.steer, seed=seed)
    else:
        from gmhf.core.steer import PosteriorSteerer

        agent = PosteriorSteerer(belief, steer=config.steer, shape=config.shape, seed=seed)
    from gmhf.core.steer import Informative

    if config.answers == "auto" and not isinstance(agent, Informative):
        raise UsageError(f"--answers auto needs an agent that can say what an answer would teach; "
                         f"{config.agent!r} cannot (use --agent posterior, or --answers all).")
    return agent


def _quiet(report: RoundReport) -> bool:
    """Whether answers about π's draws would teach little after this round (see AUTO_BITS)."""
    return report.information is not None and report.information < AUTO_BITS


def _tabulate(result: RunResult, trainers: dict[str, Trainer]) -> None:
    """Deployment loss per method, and each method's paired difference from gmhf over the same tasks."""
    import torch

    losses = {name: trainer.deployment_losses() for name, trainer in trainers.items()}
    for name, trainer in trainers.items():
        result.methods[name] = dict(trainer.finished or {})  # every trainer here has run to its end
    reference = losses["gmhf"]
    for name, values in losses.items():
        if name == "gmhf":
            continue
        both = torch.isfinite(values) & torch.isfinite(reference)
        difference = (values - reference)[both]
        count = int(both.sum())
        if count < 2:
            continue  # nothing to pair
        result.paired[name] = {"minus_gmhf": float(difference.mean()),
                               "stderr": float(difference.std() / count ** 0.5), "tasks": count}


def _save(result: RunResult, directory: RunDirectory) -> None:
    """`result.json`: the run's `--json` document, non-finite numbers as null (the report reads it)."""
    import json

    from gmhf.files import strict, write_atomic

    write_atomic(directory.result, json.dumps(strict(result.document()), indent=2, allow_nan=False) + "\n")


def _read_rows(directory: RunDirectory) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in directory.metrics.read_text(encoding="utf-8").splitlines() if line]


def run_directory_name(spec: str) -> str:
    """The default run directory of a spec: `runs/<spec stem>-gmhf`."""
    return str(Path("runs") / f"{Path(spec).stem}-gmhf")
