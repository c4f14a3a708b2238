"""P(plausible | θ): expert answers read as noisy labels, pooled over each point's nearest answers.

An answer about θ is taken as the truth of "θ is plausible for the target", z(θ), flipped with
probability 1 − p (p the expert's reliability). One answer is then evidence ±log(p / (1 − p)) on
the log-odds that z = 1 (+ for accept, − for reject; p is capped at 0.99, so a perfect expert's
answer is worth ±4.6 and one wrong answer can still be outvoted). The model pools the evidence of
the K = 16 answers nearest to θ (in q_H-normalised steered coordinates), each weighted by
1 − (d / d₁₇)², d₁₇ the distance to the 17th nearest:

    logit s(θ) = Σ_{j ≤ 16} (1 − (d_j / d₁₇)²) · ±log(p_j / (1 − p_j)).

Why this shape (docs/method.md has the measurements):

* the neighbourhood adapts to the answers: dense near the boundary of the plausible region (where
  questions go), so the boundary is sharp there; wide far away, so a region surrounded by
  rejections is judged implausible without anyone asking about it — no box or convexity assumed;
* with no answers, or answers at p = ½ (pure noise: evidence 0), s = ½ everywhere and π is
  exactly q_H; as p falls every answer weighs less and π moves less;
* it is cheap and exact to replay: no training, no random state, so a resumed run rebuilds π
  from the stored answers bit for bit.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["NEIGHBOURS", "PlausibilityModel"]

#: Answers pooled at each point.
NEIGHBOURS = 16
#: The most an answer is believed: p is capped here, so a single answer never decides alone.
RELIABILITY_CAP = 0.99
#: Candidates scored at once (bounds the memory of the distance matrix).
CHUNK = 65_536


class PlausibilityModel:
    """s(x) from the evidence of the nearest answers.

    Args:
        inputs: d, the number of steered coordinates.
    """

    def __init__(self, inputs: int) -> None:
        self.x = torch.empty(0, inputs, dtype=torch.float64)  # the answered points, each once
        self.evidence = torch.empty(0, dtype=torch.float64)  # summed over the answers at each point
        self.own = torch.empty(0, dtype=torch.float64)  # each answer's evidence, in the order given
        self.at = torch.empty(0, dtype=torch.long)  # each answer's point

    @property
    def fitted(self) -> bool:
        """Whether any answer carries evidence (an answer at p = ½ carries none)."""
        return bool((self.evidence != 0).any())

    def fit(self, x: Tensor, labels: Tensor, reliabilities: Tensor) -> None:
        """Take all answers so far: inputs `[m, d]`, labels 1 accept / 0 reject, reliabilities `[m]`.

        Answers about the same θ (several experts, or one question asked twice) are one point whose
        evidence is their sum: the exact log-odds of independent answers, and one neighbour slot,
        so a panel's answers do not crowd out the answers about other environments.
        """
        p = reliabilities.clamp(0.5, RELIABILITY_CAP)
        answered = x.to(torch.float64)
        self.own = (labels * 2 - 1) * (p / (1 - p)).log()
        self.x, self.at = torch.unique(answered, dim=0, return_inverse=True) if len(answered) else \
            (answered, torch.empty(0, dtype=torch.long))
        self.evidence = torch.zeros(len(self.x), dtype=torch.float64).index_add_(0, self.at, self.own)

    def held_out(self) -> Tensor:
        """Each answer's log-odds `[m]` from every answer but itself (for judging the answer against the rest).

        The answer's own point is its nearest (distance 0, weight 1), so leaving it out is
        subtracting its evidence there; the neighbourhood's radius is kept.
        """
        if not len(self.own):
            return torch.zeros(0, dtype=torch.float64)
        return self.logit(self.x)[self.at] - self.own

    def logit(self, x: Tensor) -> Tensor:
        """The pooled log-odds `[n]` that each input is plausible (0 before any evidence)."""
        if not self.fitted:
            return torch.zeros(x.shape[0], dtype=torch.float64)
        return torch.cat([self._logit(part) for part in x.split(CHUNK)]) if len(x) else x.new_zeros(0)

    def _logit(self, x: Tensor) -> Tensor:
        k = min(NEIGHBOURS + 1, self.x.shape[0])
        distance, index = torch.cdist(x, self.x).topk(k, largest=False)
        if k == 1:  # a single answer speaks everywhere
            return self.evidence[index[:, 0]]
        weight = (1 - (distance / distance[:, -1:].clamp(min=1e-12)) ** 2).clamp(min=0)
        weight[:, 0] = weight[:, 0].clamp(min=1e-3)  # the nearest answer always speaks
        return (weight * self.evidence[index]).sum(1)

    def probability(self, x: Tensor) -> Tensor:
        """s(x) `[n]`: the probability that each input is plausible."""
        return torch.sigmoid(self.logit(x))
