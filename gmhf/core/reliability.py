"""Each expert's reliability, estimated from the answers instead of taken from the label.

An expert states a reliability p (the probability that an answer is right) or none; people are
often surer of themselves than their answers bear out. The loop reads p from the answers with a
one-coin model (one p per expert, for accepts and rejects alike, as in Dawid–Skene's one-coin
variant), fitted by pseudo-likelihood: each answer is judged against what the answers before it
say about the same environment and its neighbours, z̃ᵢ = P(plausible | earlier answers), so

    P(answer i is accept | p) = p·z̃ᵢ + (1 − p)·(1 − z̃ᵢ),

and the estimate is the p on a grid over [½, 0.99] that makes the answers most likely.

Why this shape:

* an expert who answers at random agrees with z̃ only by chance, however confident z̃ is, so the
  estimate falls to ½ quickly and precisely; the expert's own earlier answers are read with its
  stated value, the most confident reading, which is what makes the test sharp;
* only earlier answers judge an answer (prequentially): the agent decides where to ask from the
  answers so far, and an answer judged by the questions it caused agrees with them more often than
  chance (measured: random answers then looked 0.6–0.65 reliable after 150);
* an answer where the earlier ones are undecided (z̃ = ½) says nothing about p, so questions on the
  boundary of the plausible region, where the agent asks most, do not pull the estimate to ½; the
  neighbourhood model is still over-confident near that boundary, so a good expert's estimate
  comes out somewhat low (0.80–0.87 for answers at 0.9 after 150);
* hence the stated p is kept while the answers leave it believable (posterior, uniform prior:
  P(p ≥ stated − 0.1) ≥ 5%): a good expert is not slowed by an estimate still settling, and an
  over-confident one is caught. The estimate is used otherwise, and always for an expert who
  states nothing. Several experts answering the same question judge one another directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from gmhf.core.plausibility import PlausibilityModel

__all__ = ["DEFAULT_RELIABILITY", "DOUBT", "MARGIN", "Ledger", "Reliability", "estimate_reliabilities", "judge"]

#: The grid the posterior of p lives on: below ½ an expert would be better read backwards, which
#: the loop refuses to do (an answer at ½ carries no evidence; worse is taken as ½).
GRID = torch.linspace(0.5, 0.99, 99, dtype=torch.float64)
#: A stated p is kept while the posterior gives p ≥ stated − MARGIN at least this probability.
DOUBT = 0.05
MARGIN = 0.1
#: Assumed for an expert who states nothing (a terminal expert by default), until its answers say otherwise.
DEFAULT_RELIABILITY = 0.75
#: Answers judged by a decided neighbourhood (|z̃ − ½| > 0.1) an expert needs before its stated
#: reliability can be doubted: a few early disagreements, judged by a handful of answers, are not
#: evidence enough.
MIN_JUDGED = 20


@dataclass(frozen=True)
class Reliability:
    """What the loop believes about one expert after the answers so far.

    Attributes:
        stated: the reliability the expert states (None: none).
        estimate: the p that makes the answers most likely (the stated one, or 0.75, while no
            answer has been judged).
        used: what the answers are weighted with: `stated` while believable, else `estimate`.
        believable: whether the answers leave the stated value believable.
        answers: the sure answers it rests on.
    """

    stated: float | None
    estimate: float
    used: float
    believable: bool
    answers: int = 0


class Ledger:
    """A panel's answers round by round, and what they say about each expert.

    Each round's answers are judged by the rounds before it. When the reliability used for some
    expert changes (an over-confident one is caught), every round is judged again with the new
    weights, so an early round judged by the over-confident expert's answers does not count
    against the others for ever.

    Args:
        stated: each expert's stated reliability (None: unstated).
    """

    def __init__(self, stated: Sequence[float | None]) -> None:
        self.stated = list(stated)
        self.rounds: list[tuple[Tensor, Tensor, Tensor]] = []
        self.reliabilities = [Reliability(p, _claimed(p), _claimed(p), True) for p in self.stated]
        self._judged: list[Tensor] = []
        self._judged_with = [r.used for r in self.reliabilities]
        self._fixed = False  # judged by the agent's model (`add(judged=)`), never judged again here

    def add(self, inputs: Tensor, labels: Tensor, experts: Tensor, judged: Tensor | None = None) -> list[Reliability]:
        """Take one round's sure answers (normalised inputs `[m, d]`, labels, expert indices) and re-estimate.

        `judged`, when given, is z̃ for each answer from the agent's own model of the answers before
        the round: the agent asks where its model is undecided, so judging by another model (the
        neighbourhood one here) would read answers the agent's model finds undecided as
        disagreements. Those judgements are kept as given when the weights change.
        """
        if judged is not None:
            self.rounds.append((inputs, labels, experts))
            self._judged.append(judged.to(torch.float64))
            self._fixed = True
            self.reliabilities = estimate_reliabilities(self.stated, torch.cat(self._judged),
                                                        torch.cat([r[1] for r in self.rounds]),
                                                        torch.cat([r[2] for r in self.rounds]))
            return self.reliabilities
        if self._fixed:
            raise ValueError("a Ledger given the agent's judgements must be given them every round")
        self.rounds.append((inputs, labels, experts))
        self._judged.append(judge(self.stated, self._judged_with, self._before(len(self.rounds) - 1),
                                  inputs, labels, experts))
        for _ in range(3):  # new weights, judged again, rarely more than once
            self.reliabilities = estimate_reliabilities(self.stated, torch.cat(self._judged),
                                                        torch.cat([r[1] for r in self.rounds]),
                                                        torch.cat([r[2] for r in self.rounds]))
            used = [r.used for r in self.reliabilities]
            if used == self._judged_with:
                break
            self._judged_with = used
            self._judged = [judge(self.stated, used, self._before(i), *round_) for i, round_ in enumerate(self.rounds)]
        return self.reliabilities

    def _before(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        if index == 0:
            d = self.rounds[0][0].shape[1]
            return (torch.empty(0, d, dtype=torch.float64), torch.empty(0, dtype=torch.float64),
                    torch.empty(0, dtype=torch.long))
        earlier = self.rounds[:index]
        return (torch.cat([r[0] for r in earlier]), torch.cat([r[1] for r in earlier]),
                torch.cat([r[2] for r in earlier]))


def judge(stated: Sequence[float | None], used: Sequence[float], earlier: tuple[Tensor, Tensor, Tensor],
          inputs: Tensor, labels: Tensor, experts: Tensor) -> Tensor:
    """z̃ `[n]` for a round's new answers: P(plausible) from every answer before the round and the
    other experts' answers in it.

    Judging an answer only by what came before it (prequentially) keeps the estimate honest under
    an adaptive agent: where it asks next depends on the answers so far, so an answer judged by
    later ones would be judged partly by questions it caused. An expert's own earlier answers are
    weighted by its claim, the others' by what the loop uses for them.

    Args:
        stated, used: each expert's stated reliability (None: unstated) and the one in use.
        earlier: `(inputs [m, d], labels [m], experts [m])` of the steering answers before the round.
        inputs, labels, experts: the round's new steering answers.
    """
    before_x, before_y, before_e = earlier
    judged = torch.full((len(labels),), 0.5, dtype=torch.float64)
    for e in experts.unique().tolist():
        weights = torch.tensor(used, dtype=torch.float64)
        weights[e] = _claimed(stated[e])
        others = experts != e
        x = torch.cat([before_x, inputs[others]])
        if not len(x):
            continue
        model = PlausibilityModel(inputs.shape[1])
        model.fit(x, torch.cat([before_y, labels[others]]), weights[torch.cat([before_e, experts[others]])])
        mine = experts == e
        judged[mine] = model.probability(inputs[mine])
    return judged


def estimate_reliabilities(stated: Sequence[float | None], judged: Tensor, labels: Tensor,
                           experts: Tensor) -> list[Reliability]:
    """Each expert's `Reliability` from every sure answer so far.

    Args:
        stated: each expert's stated reliability (None: unstated), by expert index.
        judged: `[m]` z̃ of each answer (from `judge`).
        labels: `[m]` 1 accept / 0 reject.
        experts: `[m]` the index of the expert who gave each answer.
    """
    result = []
    for e, p in enumerate(stated):
        mine = experts == e
        z, y = judged[mine], labels[mine]
        accept = GRID * z[:, None] + (1 - GRID) * (1 - z[:, None])  # [answers, grid]
        log_like = torch.where(y[:, None] > 0, accept, 1 - accept).clamp(min=1e-300).log().sum(0)
        posterior = torch.softmax(log_like, 0)
        prior = _claimed(p)
        estimate = float(GRID[log_like.argmax()]) if bool(((z - 0.5).abs() > 1e-9).any()) else prior
        if int(((z - 0.5).abs() > 0.1).sum()) < MIN_JUDGED:  # too few answers judged to doubt anyone
            result.append(Reliability(p, estimate, prior, p is not None, int(mine.sum())))
            continue
        believable = p is not None and float(posterior[GRID >= p - MARGIN - 1e-12].sum()) >= DOUBT
        result.append(Reliability(p, estimate, prior if believable else estimate, believable, int(mine.sum())))
    return result


def _claimed(stated: float | None) -> float:
    """What an expert claims: its stated reliability, else the default."""
    return DEFAULT_RELIABILITY if stated is None else float(stated)
