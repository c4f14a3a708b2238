"""bench/steer.py's runs: one steering agent driven through the real FeedbackLoop, π measured each round."""

from __future__ import annotations

import importlib
import inspect
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import gmhf
from gmhf.core.engine import FeedbackLoop, RoundReport
from gmhf.core.generator import SimulatorGenerator
from gmhf.core.metrics import mmd
from gmhf.core.seeding import named_stream
from gmhf.core.steer import PosteriorSteerer
from gmhf.core.store import FeedbackStore
from gmhf.experts.simulated import SimulatedExpert

#: The two specs of the issue, and the truth the simulated experts answer from.
SPECS = {"moderate": "examples/specs/duffing.guide", "vague": "examples/specs/duffing_vague.guide"}
TRUTH = "gmhf/domains/duffing/truth.guide"
#: The repository root the paths above are relative to.
ROOT = Path(__file__).resolve().parent.parent
#: θ draws of π behind each in-support fraction and MMD; truth draws behind every MMD (one fixed sample).
DRAWS = 2048
#: Questions per round and expert.
PER_ROUND = 5
#: q_H draws behind each round's screen, and the screened share at which a round is measured in full.
#: The screen's effective sample is about SCREEN_PROBE × (q_H's share kept by π): ≥ 200 on the vague
#: spec, so a round truly at 0.9 screens below 0.8 with a chance under 1e-4.
SCREEN_PROBE = 8192
SCREEN = 0.8
#: Where the throw-away feedback stores go: memory when there is a /dev/shm (SQLite syncs every answer).
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None
#: The share of π in the truth's support that counts as reached.
TARGET = 0.9


@dataclass(frozen=True)
class Case:
    """One run: an agent on a spec, a panel of experts (answering at `accuracy`, stating `claims`), one seed."""

    section: str  # "grid", "over-trust" or "panel"
    spec: str
    agent: str
    accuracy: tuple[float, ...]
    claims: tuple[float | None, ...]
    seed: int
    cap: int  # the most questions asked
    checkpoints: tuple[int, ...]  # questions after which the MMD is measured
    track: bool  # measure in-support every round until TARGET is reached
    panel: str = "split"  # several experts: each its own questions ("split") or every one all of them ("shared")

    @property
    def label(self) -> str:
        experts = "+".join(f"{a:g}" + (f"(says {c:g})" if c is not None else "")
                           for a, c in zip(self.accuracy, self.claims, strict=True))
        mode = f" {self.panel}" if len(self.accuracy) > 1 else ""
        return f"{self.section}{mode} {self.spec} {self.agent} p={experts} seed {self.seed}"


@dataclass
class Outcome:
    """What one run measured: questions to TARGET (None: not within `cap`), π at each checkpoint, the last round."""

    case: Case
    reached: int | None = None
    checkpoints: dict[int, dict[str, float]] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (questions, in-support) per measured round
    screens: list[tuple[int, float]] = field(default_factory=list)  # (questions, screened in-support)
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The outcome as plain data (checkpoint keys as strings)."""
        out = asdict(self)
        out["checkpoints"] = {str(k): v for k, v in self.checkpoints.items()}
        return out


def available_agents() -> dict[str, str | None]:
    """Agent name -> None when importable, else why not (the reinforce agent may not be written yet)."""
    why: dict[str, str | None] = {"posterior": None}
    try:
        module = importlib.import_module("gmhf.core.reinforce")
        why["reinforce"] = None if hasattr(module, "ReinforceSteerer") else "gmhf.core.reinforce has no ReinforceSteerer"
    except ImportError as error:
        why["reinforce"] = f"gmhf.core.reinforce not importable ({error})"
    return why


def claims_supported() -> bool:
    """Whether SimulatedExpert takes `claims=` (an expert that states a reliability it does not have)."""
    return "claims" in inspect.signature(SimulatedExpert.__init__).parameters


def reliability_reported() -> bool:
    """Whether the loop reports its online estimate of each expert's reliability (`RoundReport.reliability`)."""
    return "reliability" in getattr(RoundReport, "__dataclass_fields__", {})


def make_agent(name: str, guidance: gmhf.Guidance, seed: int) -> Any:
    """The steering agent `name` on `guidance`."""
    if name == "posterior":
        return PosteriorSteerer(guidance, seed=seed)
    module = importlib.import_module("gmhf.core.reinforce")
    return module.ReinforceSteerer(guidance, seed=seed)


def truth_sample(truth: gmhf.Guidance) -> torch.Tensor:
    """The one fixed truth sample every MMD in the bench is measured against."""
    return truth.sample(DRAWS, generator=named_stream("bench-steer-truth")).values


def measure(drawn: torch.Tensor, truth: gmhf.Guidance, reference: torch.Tensor) -> dict[str, float]:
    """In-support share and MMD² against `reference`, columns standardised by the pooled mean/std (as the engine)."""
    inside = float(truth.accepts(drawn).to(torch.float64).mean())
    pooled = torch.cat([drawn, reference])
    centre, spread = pooled.mean(0), pooled.std(0).clamp(min=1e-12)
    value = mmd((drawn - centre) / spread, (reference - centre) / spread).value
    return {"in_support": inside, "mmd": value}


def experts(case: Case, truth: gmhf.Guidance) -> list[SimulatedExpert]:
    """The panel: expert i answers right with probability accuracy[i]; `claims` only where it differs."""
    panel = []
    for i, (accuracy, claims) in enumerate(zip(case.accuracy, case.claims, strict=True)):
        options: dict[str, Any] = {"claims": claims} if claims is not None else {}
        panel.append(SimulatedExpert(truth, accuracy, seed=case.seed, index=i, **options))
    return panel


class Screen:
    """A cheap in-support estimate that decides whether a round is measured in full.

    Self-normalised importance weights π/q_H on a fixed sample of SCREEN_PROBE q_H draws: one
    density evaluation per probe row, where the full measurement draws DRAWS rows of π by rejection
    (tens of thousands of candidates on the vague spec). Only a round screened at SCREEN or more is
    measured in full, and only the full measurement decides whether TARGET is reached.
    """

    def __init__(self, guidance: gmhf.Guidance, truth: gmhf.Guidance, seed: int) -> None:
        self.probe = guidance.sample(SCREEN_PROBE, generator=named_stream("bench-steer-probe", seed)).values
        self.log_q = guidance.log_prob(self.probe)
        self.inside = truth.accepts(self.probe).to(torch.float64)

    def __call__(self, agent: Any) -> float:
        """The screened share of π in the truth's support (1.0 when the weights are unusable: measure in full)."""
        log_w = agent.log_prob(self.probe) - self.log_q
        if not bool(torch.isfinite(log_w).any()):
            return 1.0
        weights = torch.softmax(log_w, 0)
        return float((weights * self.inside).sum())


def run_case(case: Case) -> Outcome:
    """Drive the loop round by round until the cap, or until TARGET is reached and every checkpoint passed."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    outcome = Outcome(case)
    try:
        _run(case, outcome)
    except Exception as error:  # a failing agent is reported in its row, the bench goes on
        outcome.error = f"{type(error).__name__}: {error}"
    outcome.seconds = time.perf_counter() - started
    return outcome


def _run(case: Case, outcome: Outcome) -> None:
    guidance, truth = gmhf.load(ROOT / SPECS[case.spec]), gmhf.load(ROOT / TRUTH)
    reference = truth_sample(truth)
    agent = make_agent(case.agent, guidance, case.seed)
    last = max(case.checkpoints, default=0)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
        store = FeedbackStore(Path(folder) / "feedback.sqlite")
        loop = FeedbackLoop(agent, experts(case, truth), store, domain=guidance.domain,
                            generator=SimulatorGenerator(guidance.domain), truth=None, seed=case.seed,
                            answers_per_round=PER_ROUND, panel=case.panel)
        screen = Screen(guidance, truth, case.seed)
        round_, questions = 0, 0
        report = None
        while questions < case.cap and (outcome.reached is None and case.track or questions < last):
            report = loop.run_round(round_, measure=False)
            questions = (round_ + 1) * PER_ROUND
            checkpoint = questions in case.checkpoints
            if not checkpoint and case.track and outcome.reached is None:
                outcome.screens.append((questions, screen(agent)))
            if checkpoint or (case.track and outcome.reached is None and outcome.screens[-1][1] >= SCREEN):
                drawn = agent.sample(DRAWS, generator=named_stream("bench-steer", case.seed, round_)).values
                if checkpoint:
                    outcome.checkpoints[questions] = measure(drawn, truth, reference)
                    inside = outcome.checkpoints[questions]["in_support"]
                else:
                    inside = float(truth.accepts(drawn).to(torch.float64).mean())
                outcome.curve.append((questions, inside))
                if case.track and outcome.reached is None and inside >= TARGET:
                    outcome.reached = questions
            round_ += 1
        store.close()
    outcome.final = {"questions": questions, "answers": report.answers if report else 0,
                     "agent": report.agent if report else {},
                     "reliability": getattr(report, "reliability", None) if report else None,
                     "weights": getattr(report, "weights", None) if report else None}
