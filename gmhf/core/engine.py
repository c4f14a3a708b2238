"""The GMHF feedback loop: rounds of propose → generate → ask → store → update.

Each round the steering agent proposes environments, the experts judge them (through the domain's
picture of their generated data), every question is written to the feedback store before it is
asked and every answer committed before it is used, and the agent updates π. A round depends only
on the answers before it and on a random stream seeded by (run seed, round), so a resumed run
replays the stored rounds exactly: a stored answer is read back, never asked for again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from gmhf.core.experts import Answer, Question, check_answers, sample_id
from gmhf.core.metrics import agreement, mmd, per_factor_wasserstein
from gmhf.core.misspecification import BoundCheck
from gmhf.core.reliability import DEFAULT_RELIABILITY, Ledger
from gmhf.core.seeding import named_stream
from gmhf.core.steer import Informative, Plausible, ReliabilityAware
from gmhf.core.theta import Theta
from gmhf.errors import GmhfError, UsageError

if TYPE_CHECKING:
    from gmhf.core.belief import Belief
    from gmhf.core.domain import Domain
    from gmhf.core.experts import Expert
    from gmhf.core.generator import Generator
    from gmhf.core.guidance import Guidance
    from gmhf.core.steer import Steerer
    from gmhf.core.store import FeedbackStore

__all__ = ["DEFAULT_RELIABILITY", "FeedbackLoop", "RoundReport", "expert_key"]

#: θ draws from π and the truth behind each round's in-support fraction and MMDs.
EVALUATION_SAMPLES = 512
#: Draws of π behind each round's expected information.
INFORMATION_SAMPLES = 256


@dataclass(frozen=True)
class RoundReport:
    """What one round did and where π stands after it (a row of `metrics.jsonl`)."""

    round: int
    answers: int  # cumulative, all experts
    stopped: bool  # an expert stopped answering (the rest of the round is unasked)
    in_support: float | None = None  # share of π's draws inside the truth's support
    mmd: float | None = None  # MMD² between π and the truth in θ (standardised columns)
    mmd_data: float | None = None  # MMD² between data generated from π and from the truth
    wasserstein: dict[str, float] | None = None  # W1 to the truth per steered factor
    agreement: float | None = None  # share of sure answers so far that the truth agrees with
    agent: dict[str, Any] = field(default_factory=dict)
    reliability: dict[str, float] = field(default_factory=dict)  # each expert's reliability, estimated
    weights: dict[str, float] = field(default_factory=dict)  # the reliability its answers are weighted with
    information: float | None = None  # expected bits of an answer about a draw of π (`--answers auto`)
    misspecified: list[dict[str, Any]] = field(default_factory=list)  # bounds the answers push against

    def row(self) -> dict[str, Any]:
        """The metrics line: what the run computed, the same whether its answers were asked now or read back."""
        return {"round": self.round, "answers": self.answers, "in_support": self.in_support, "mmd": self.mmd,
                "mmd_data": self.mmd_data, "wasserstein": self.wasserstein, "agreement": self.agreement,
                "reliability": self.reliability, "weights": self.weights, "information": self.information,
                "misspecified": self.misspecified, "agent": self.agent}


def expert_key(index: int, expert: Expert) -> str:
    """How an expert is named in the store: its position and name (two `simulated:0.9` stay apart)."""
    return f"{index}:{expert.name}"


class FeedbackLoop:
    """Runs feedback rounds for one steering agent, a panel of experts and a store.

    Args:
        steerer: proposes questions, learns from answers, and is π.
        experts: who answers.
        store: the append-only feedback store.
        domain, generator: turn a question's θ into data and a picture (made only if an expert
            looks at it).
        truth: the benchmark truth, for the in-support fraction and MMDs (None: not reported).
        seed: the run's seed.
        answers_per_round: questions per round and expert.
        panel: with several experts, `"split"` gives each expert its own questions, chosen jointly
            for the reliabilities the experts' answers are weighed with (an agent that cannot, draws
            them all at once); `"shared"` asks every expert every question.
        belief, specs: q_H and the compiled specs behind it, for the misspecification check (which
            names their statements); without `belief` no check is made.

    Every expert's reliability is estimated from the answers after each round
    (`gmhf.core.reliability`); the agent weighs each answer with its expert's stated reliability
    while the answers leave it believable, and with the estimate otherwise.
    """

    def __init__(self, steerer: Steerer, experts: Sequence[Expert], store: FeedbackStore, *, domain: Domain,
                 generator: Generator, truth: Belief | None, seed: int, answers_per_round: int,
                 belief: Belief | None = None, specs: Sequence[Guidance] = (),
                 panel: Literal["split", "shared"] = "split") -> None:
        if panel not in ("split", "shared"):
            raise UsageError(f"`panel` must be 'split' or 'shared', got {panel!r}.")
        self.steerer, self.experts, self.store = steerer, list(experts), store
        self.split = panel == "split" and len(self.experts) > 1
        self.domain, self.generator, self.truth = domain, generator, truth
        self.seed, self.answers_per_round = seed, answers_per_round
        self.bounds = BoundCheck(belief, specs) if belief is not None else None
        self.answers = 0
        self._answered: list[Tensor] = []  # every steering θ answered and its answer, for the experts' agreement
        self._given: list[str] = []
        self._passed: list[int] = []  # the expert behind each answer the agent has, in its order
        self._template = steerer.sample(0, generator=torch.Generator())
        # the coordinates answers are compared in: the steered factors, scaled by their spread under q_H
        self._columns = [self._template.names.index(name) for name in steerer.factors]
        spread = steerer.sample(4096, generator=named_stream("gmhf-scale", seed)).values[:, self._columns]
        self._centre, self._scale = spread.mean(0), spread.std(0).clamp(min=1e-12)
        self.ledger = Ledger([e.reliability for e in self.experts])
        self.reliabilities = self.ledger.reliabilities
        truth_stream = named_stream("gmhf-round", seed, -1)
        self._truth_theta = (truth.sample(EVALUATION_SAMPLES, generator=truth_stream).values
                             if truth is not None else None)

    def run_round(self, round_: int, *, ask: bool = True, measure: bool = True) -> RoundReport:
        """Propose, ask what the store does not hold, store, update, and measure π.

        With `ask=False` only stored answers are used (a replay after training began); a missing
        one is an error then, since the run would not be the run that was checkpointed.
        """
        values = self._propose(round_)
        questions = self._questions(round_, values)
        given: list[tuple[int, int, str]] = []  # (expert, question, answer) of this round
        stopped = False
        for index, expert in enumerate(self.experts):
            key = expert_key(index, expert)
            mine = range(index * self.answers_per_round, (index + 1) * self.answers_per_round) if self.split \
                else range(len(questions))
            own = [questions[i] for i in mine]
            self.store.asked(round_, key, own)
            stored: dict[str, Answer | None] = {q.sample_id: self.store.answer_for(key, q.sample_id) for q in own}
            missing = [q for q in own if stored[q.sample_id] is None]
            if missing and not ask:
                raise GmhfError(f"the feedback store lacks {len(missing)} answers of round {round_} that the "
                                f"checkpointed run had; the store does not belong to this run.")
            if missing and not stopped:
                answered = check_answers(expert, missing, expert.ask(missing))
                for question, answer in zip(missing, answered, strict=False):
                    self.store.answered(key, question.sample_id, answer)  # committed before it is used
                    stored[question.sample_id] = answer
                stopped = len(answered) < len(missing)
            given.extend((index, i, kept) for i in mine if (kept := stored[questions[i].sample_id]) is not None)
        self.answers += len(given)
        self._learn(values, given)
        report = RoundReport(round_, self.answers, stopped, agent=self.steerer.state(),
                             reliability={expert_key(i, e): r.estimate for i, (e, r) in
                                          enumerate(zip(self.experts, self.reliabilities, strict=True))},
                             weights={expert_key(i, e): r.used for i, (e, r) in
                                      enumerate(zip(self.experts, self.reliabilities, strict=True))},
                             information=self._information(round_), misspecified=self._suspicions())
        return self._measured(report, round_) if measure else report

    def _propose(self, round_: int) -> Tensor:
        """The round's questions: `answers_per_round`, or as many for each expert in turn when the panel is split."""
        stream = named_stream("gmhf-round", self.seed, round_)
        if not self.split:
            return self.steerer.propose(self.answers_per_round, generator=stream)
        if not isinstance(self.steerer, ReliabilityAware):
            return self.steerer.propose(self.answers_per_round * len(self.experts), generator=stream)
        return self.steerer.propose_panel([r.used for r in self.reliabilities], self.answers_per_round,
                                          generator=stream)

    def _learn(self, values: Tensor, given: list[tuple[int, int, str]]) -> None:
        """Judge the round's sure answers against the earlier ones, re-estimate every expert, update the agent."""
        sure = [(e, i, a) for e, i, a in given if a in ("accept", "reject")]
        if not sure:
            return
        expert = torch.tensor([e for e, _, _ in sure])
        answered = values[torch.tensor([i for _, i, _ in sure])]
        label = torch.tensor([1.0 if a == "accept" else 0.0 for _, _, a in sure], dtype=torch.float64)
        before = [r.used for r in self.reliabilities]
        judged = self.steerer.plausibility(answered) if isinstance(self.steerer, Plausible) else None
        self.reliabilities = self.ledger.add(self._normalised(answered), label, expert, judged)
        used = [r.used for r in self.reliabilities]
        if used != before and self._passed:  # the earlier answers weigh differently now
            self.steerer.reweigh([used[e] for e in self._passed])
        self.steerer.update(answered, [a for _, _, a in sure], [used[e] for e in expert.tolist()])
        self._passed.extend(expert.tolist())
        self._answered.append(answered)
        self._given.extend(a for _, _, a in sure)

    def _suspicions(self) -> list[dict[str, Any]]:
        if self.bounds is None or not self._answered:
            return []
        answered = torch.cat(self._answered)
        accepted = answered[torch.tensor([a == "accept" for a in self._given])]
        return [found.row() for found in self.bounds(self.steerer, accepted)]

    def _normalised(self, values: Tensor) -> Tensor:
        return (values[:, self._columns] - self._centre) / self._scale

    def _information(self, round_: int) -> float | None:
        """Expected bits an answer about a typical draw of π would carry.

        Averaged over draws of π rather than over the agent's own next questions: those go where
        the agent is least sure (the boundary), which stays uncertain long after π has settled,
        while what matters for training is whether answers could still move π where its mass is.
        None when the agent cannot say, and before any accept: until then the answers only say
        where the target is not, and π's draws look settled only because nothing was found yet.
        """
        if not isinstance(self.steerer, Informative) or "accept" not in self._given:
            return None
        drawn = self.steerer.sample(INFORMATION_SAMPLES, generator=named_stream("gmhf-information", self.seed, round_))
        weights = [r.used for r in self.reliabilities] or [DEFAULT_RELIABILITY]
        return float(self.steerer.information(drawn.values, max(weights)).mean())

    def _questions(self, round_: int, values: Tensor) -> list[Question]:
        template = self._template
        records = Theta(values, template.names, template.levels, template.integers).to_records()
        return [Question(sample_id(round_, i), round_, record, values[i], self._viewer(values[i]))
                for i, record in enumerate(records)]

    def _viewer(self, row: Tensor) -> Callable[[], bytes]:
        def view() -> bytes:
            theta = row[None]
            return self.domain.view(theta, self.generator.generate(theta, generator=torch.Generator()), 0)
        return view

    def _measured(self, report: RoundReport, round_: int) -> RoundReport:
        if self._truth_theta is None or self.truth is None:
            return report
        from dataclasses import replace

        stream = named_stream("gmhf-round", self.seed, 10_000 + round_)
        drawn = self.steerer.sample(EVALUATION_SAMPLES, generator=stream).values
        inside = float(self.truth.accepts(drawn).to(torch.float64).mean())
        pooled = torch.cat([drawn, self._truth_theta])
        centre, spread = pooled.mean(0), pooled.std(0).clamp(min=1e-12)
        theta_mmd = mmd((drawn - centre) / spread, (self._truth_theta - centre) / spread).value
        data_mmd = self._data_mmd(drawn[:128], self._truth_theta[:128], stream)
        steered = list(self.steerer.factors)
        columns = [self._template.names.index(name) for name in steered]
        distances = per_factor_wasserstein(drawn[:, columns], self._truth_theta[:, columns], steered)
        plausible = self.truth.accepts(torch.cat(self._answered)).tolist() if self._answered else []
        return replace(report, in_support=inside, mmd=theta_mmd, mmd_data=data_mmd, wasserstein=distances,
                       agreement=agreement(self._given, plausible))

    def _data_mmd(self, drawn: Tensor, truth: Tensor, stream: torch.Generator) -> float | None:
        """MMD² between the data generated from π and from the truth (per-environment entries, flattened)."""
        shared = set(self.domain.shared) | {"ok"}
        generated = self.generator.generate(drawn, generator=stream)
        target = self.generator.generate(truth, generator=stream)
        keys = [k for k, v in generated.items() if k not in shared and v.shape[:1] == drawn.shape[:1]]
        if not keys:
            return None
        flatten = lambda data: torch.cat([data[k].reshape(len(data[k]), -1).to(torch.float64)  # noqa: E731
                                          for k in keys], 1)
        return mmd(flatten(generated), flatten(target)).value
