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

__all__ = ["DOUBT", "MARGIN", "Reliability", "estimate_reliabilities", "judge"]

#: The grid the posterior of p lives on: below ½ an expert would be better read backwards, which
#: the loop refuses to do (an answer at ½ carries no evidence; worse is taken as ½).
GRID = torch.linspace(0.5, 0.99, 99, dtype=torch.float64)
#: A stated p is kept while the posterior gives p ≥ stated − MARGIN at least this probability.
DOUBT = 0.05
MARGIN = 0.1
#: Assumed for an expert who states nothing, to judge the others' answers in the first pass.
UNSTATED = 0.75


@dataclass(frozen=True)
class Reliability:
    """What the loop believes about one expert after the answers so far.

    Attributes:
        stated: the reliability the expert states (None: none).
        estimate: the posterior mean of p from the answers.
        used: what the answers are weighted with: `stated` while believable, else `estimate`.
        believable: whether the answers leave the stated value believable.
        answers: the sure answers it rests on.
    """

    stated: float | None
    estimate: float
    used: float
    believable: bool
    answers: int = 0


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
        weights[e] = UNSTATED if stated[e] is None else float(stated[e])  # type: ignore[arg-type]
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
        estimate = float(GRID[log_like.argmax()]) if len(z) else (UNSTATED if p is None else float(p))
        believable = p is not None and float(posterior[GRID >= p - MARGIN - 1e-12].sum()) >= DOUBT
        result.append(Reliability(p, estimate, float(p) if believable and p is not None else estimate, believable,
                                  int(mine.sum())))
    return result
