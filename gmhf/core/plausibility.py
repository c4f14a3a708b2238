"""P(plausible | θ): a small Bayesian classifier of expert answers, read as noisy labels.

An answer about θ is taken to be the truth of "θ is plausible for the target", z(θ), flipped with
probability 1 − p (p the expert's reliability): P(accept | θ) = p·s(θ) + (1 − p)·(1 − s(θ)), where
s(θ) = P(z(θ) = 1). The model of s is a bootstrap ensemble of small ReLU networks on the steered
factors (normalised by q_H's spread), each a MAP fit under a Gaussian prior on its weights:

* a ReLU network extrapolates linearly, so a region the answers reject around is judged less
  plausible the further one goes from any acceptance, without assuming the plausible region is
  a box or even convex;
* the output layer starts at zero, so s = ½ everywhere before any answer, and an answer at p = ½
  (pure noise) is dropped: π is then exactly q_H; lower p flattens the likelihood, so π moves less;
* the ensemble's spread (each member sees its own Poisson(1) bootstrap weights) says where the
  answers disagree or are missing, which is where the next question teaches most (BALD).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["PlausibilityModel"]

#: Ensemble members, hidden width, Adam steps per fit, learning rate, prior precision on weights.
MEMBERS = 8
HIDDEN = 32
STEPS = 200
LEARNING_RATE = 0.02
PRIOR_PRECISION = 0.01


class PlausibilityModel:
    """An ensemble of `MEMBERS` networks d → 32 → 32 → 1 (ReLU), batched over members.

    Args:
        inputs: d, the number of steered factors.
        seed: initial weights and bootstrap weights.
    """

    def __init__(self, inputs: int, *, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        e, h = MEMBERS, HIDDEN

        def uniform(*shape: int, fan_in: int) -> Tensor:
            bound = fan_in ** -0.5
            return (torch.rand(*shape, generator=self.generator, dtype=torch.float64) * 2 - 1) * bound

        self.weights = [uniform(e, inputs, h, fan_in=max(inputs, 1)), uniform(e, 1, h, fan_in=max(inputs, 1)),
                        uniform(e, h, h, fan_in=h), uniform(e, 1, h, fan_in=h),
                        torch.zeros(e, h, 1, dtype=torch.float64), torch.zeros(e, 1, 1, dtype=torch.float64)]
        self.bootstrap = torch.empty(e, 0, dtype=torch.float64)
        self.fitted = False

    def logits(self, x: Tensor, weights: list[Tensor] | None = None) -> Tensor:
        """f_e(x) `[E, n]` for inputs `[n, d]`."""
        w1, b1, w2, b2, w3, b3 = self.weights if weights is None else weights
        hidden = torch.relu(torch.baddbmm(b1, x.expand(w1.shape[0], *x.shape), w1))
        hidden = torch.relu(torch.baddbmm(b2, hidden, w2))
        return torch.baddbmm(b3, hidden, w3)[..., 0]

    def probability(self, x: Tensor) -> Tensor:
        """s(x) `[n]`: the ensemble's mean probability that each input is plausible."""
        if not self.fitted:
            return torch.full((x.shape[0],), 0.5, dtype=torch.float64)
        with torch.no_grad():
            return torch.sigmoid(self.logits(x)).mean(0)

    def information(self, x: Tensor, reliability: float) -> Tensor:
        """How much an answer at each input would teach `[n]`: predictive entropy plus BALD.

        With answers flipped at rate 1 − p, the predicted answer is p·s + (1 − p)·(1 − s); the
        entropy of the ensemble's mean prediction is highest where the answer is a coin toss, and
        the mutual information between the answer and the member (BALD) is highest where the
        members disagree.
        """
        with torch.no_grad():
            s = torch.sigmoid(self.logits(x)) if self.fitted else torch.full((1, x.shape[0]), 0.5,
                                                                             dtype=torch.float64)
            p = min(max(reliability, 0.5), 1.0)
            accept = p * s + (1 - p) * (1 - s)
            mean = accept.mean(0)
            return 2 * _entropy(mean) - _entropy(accept).mean(0)

    def fit(self, x: Tensor, labels: Tensor, reliabilities: Tensor) -> None:
        """MAP fit of every member to the answers (1 accept, 0 reject) with their reliabilities.

        Warm-started from the previous fit, so each round's fit is a short refinement; answers at
        reliability ½ or less are left out (they carry no information about z).
        """
        grow = x.shape[0] - self.bootstrap.shape[1]
        if grow > 0:  # each member's bootstrap weight of each new answer, drawn once
            fresh = torch.poisson(torch.ones(MEMBERS, grow, dtype=torch.float64), generator=self.generator)
            self.bootstrap = torch.cat([self.bootstrap, fresh], 1)
        informative = reliabilities > 0.5
        if not bool(informative.any()):
            return
        x, labels, p = x[informative], labels[informative], reliabilities[informative]
        bootstrap = self.bootstrap[:, informative]
        sign = labels * 2 - 1  # +1 accept, −1 reject
        log_right, log_wrong = p.log(), torch.log1p(-p).clamp(min=-1e300)
        weights = [w.clone().requires_grad_(True) for w in self.weights]
        optimiser = torch.optim.Adam(weights, lr=LEARNING_RATE)
        for _ in range(STEPS):
            optimiser.zero_grad()
            f = self.logits(x, weights) * sign  # [E, n]: the logit of the answer given
            likelihood = torch.logaddexp(log_right + torch.nn.functional.logsigmoid(f),
                                         log_wrong + torch.nn.functional.logsigmoid(-f))
            prior = sum((w * w).sum((1, 2)) for w in weights[::2])  # weights, not biases
            loss = (-(bootstrap * likelihood).sum(1) + PRIOR_PRECISION / 2 * prior).sum()
            loss.backward()
            optimiser.step()
        self.weights = [w.detach() for w in weights]
        self.fitted = True


def _entropy(p: Tensor) -> Tensor:
    q = p.clamp(1e-12, 1 - 1e-12)
    return -(q * q.log() + (1 - q) * (1 - q).log()) / math.log(2)
