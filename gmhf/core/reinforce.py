"""The `reinforce` steering agent: the paper's policy-gradient agent behind the `Steerer` protocol.

π is an exponential tilt of the spec's belief over the steered (flagged) factors,

    π_η(θ) ∝ q_H(θ) · exp(ηᵀT(θ)),   T(θ) = (c_j, c_j²) per steered factor j,

c_j the factor in q_H-normalised units (centred on q_H's mean, divided by its standard deviation)
and clipped to the range q_H's probe covers. η = 0 is q_H exactly; the tilt is a Gaussian-shaped
bump per factor (η_j2 ≤ 0), so π never leaves q_H's support or its `require`s, and the factors it
does not steer keep q_H's conditional distribution given the steered ones.

Learning is REINFORCE with a baseline, in natural-gradient form: each sure answer is a reward
r = ±(2p − 1) (accept/reject, p the answer's reliability), the baseline b is a running mean of the
rewards before the round, and since ∇_η log π = T − E_π[T] and the Fisher matrix is Cov_π[T],

    η ← (1 − αλ) η + α · Cov_π[T]⁻¹ · mean_i[(r_i − b)(T(θ_i) − E_π T)],

the step halved until it moves π at most `TRUST_REGION` nats (KL, measured on the probe), and −αλη the natural gradient
of the pull λ·KL(π‖q_H) with λ = `PULL` × the spec's `trust`. A floor keeps π's standard deviation
of each steered factor at least `FLOOR` times q_H's. Expectations under π are self-normalised
importance averages over a fixed probe of q_H draws, so π is a function of the answers alone and
a resumed run rebuilds it bit for bit. docs/method.md compares it with the `posterior` agent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from gmhf.core.steer import rejection_sample, steered_factors, sure_answers
from gmhf.core.theta import Theta

if TYPE_CHECKING:
    from gmhf.core.belief import Belief

__all__ = ["ReinforceSteerer"]

#: q_H draws behind the normalisation, π's normaliser and every expectation under π. Larger than
#: the posterior agent's probe: a tilt at the spread floor keeps well under 1 % of them.
PROBE = 65_536
#: α, the step of each round's natural-gradient update.
STEP = 1.0
#: The most one round's step may change π, KL(π_old‖π_new) in nats measured on the probe, so a
#: lucky or wrong answer cannot throw π away at once.
TRUST_REGION = 0.5
#: Halvings of a step that moves π further than `TRUST_REGION` before only the pull is applied.
HALVINGS = 20
#: λ per unit of the spec's `trust`: the weight of the KL(π‖q_H) pull.
PULL = 0.05
#: π's standard deviation of each steered factor is kept at least this share of q_H's.
FLOOR = 0.1
#: Weight of each new reward in the running-mean baseline (about the last 1 / RATE answers).
BASELINE_RATE = 0.2
#: Bisection steps when shrinking a factor's tilt to meet the floor, and passes over the factors.
FLOOR_STEPS = 40
FLOOR_PASSES = 5


class ReinforceSteerer:
    """π_η(θ) ∝ q_H(θ) · exp(ηᵀT(θ)), learnt from the answers by natural-gradient REINFORCE.

    Args:
        guidance: the spec's belief q_H (its `trust` sets the KL pull); π never leaves its support.
        steer: `"flagged"` (default) tilts only the factors the spec shifts or gives a prior;
            `"all"` every factor not declared invariant. Invariant factors are never moved.
        seed: the q_H probe that fixes the normalisation, π's normaliser and its expectations.

    Questions are draws from π (on-policy). Sampling is exact rejection from q_H: the tilt is
    bounded analytically over the clipped coordinates, so the bound holds wherever q_H has mass.
    With no answers, or answers at reliability ½ (reward 0), η stays 0 and π is q_H.
    """

    def __init__(self, guidance: Belief, *, steer: Literal["flagged", "all"] = "flagged", seed: int = 0) -> None:
        self.guidance = guidance
        self.space = guidance.space
        self.factors = steered_factors(guidance, steer)
        self.columns = [self.space.index(name) for name in self.factors]
        probe = guidance.sample(PROBE, generator=torch.Generator().manual_seed(seed)).values
        steered = probe[:, self.columns]
        self.centre = steered.mean(0)
        self.scale = steered.std(0).clamp(min=1e-12)
        normalised = (steered - self.centre) / self.scale
        self.low, self.high = normalised.min(0).values, normalised.max(0).values
        self.pull = PULL * float(guidance.trust)
        self._features = self.statistics(probe)  # [N, 2d]
        self.eta = torch.zeros(0, dtype=torch.float64)  # [η_1 … η_d, η_1² … η_d²]
        self.baseline: float | None = None
        self.answers_used = 0
        self._rounds: list[tuple[Tensor, Tensor, Tensor]] = []  # every round's sure answers, for `reweigh`
        self._reset()

    # ------------------------------------------------------------------ the tilt
    def statistics(self, values: Tensor) -> Tensor:
        """T(θ) `[n, 2d]`: the clipped normalised steered coordinates, then their squares."""
        c = ((values[:, self.columns].to(torch.float64) - self.centre) / self.scale).clamp(self.low, self.high)
        return torch.cat([c, c * c], 1)

    def _refresh(self) -> None:
        """π's normaliser, its moments of T and the tilt's bound, from the probe."""
        log_w = self._features @ self.eta
        self._log_z = float(torch.logsumexp(log_w, 0)) - math.log(PROBE)
        weights = torch.softmax(log_w, 0)
        self._mean = weights @ self._features
        centred = self._features - self._mean
        self._cov = centred.T @ (centred * weights[:, None])
        self._log_bound = self._bound(self.eta)
        self._kl = float(weights @ log_w) - self._log_z  # KL(π‖q_H) = E_π[ηᵀT] − log Z

    def _bound(self, eta: Tensor) -> float:
        """max of ηᵀT over the clipped box, coordinate by coordinate (each a concave quadratic in c)."""
        d = len(self.columns)
        linear, square = eta[:d], eta[d:]
        peak = torch.where(square < 0, -linear / (2 * square.clamp(max=-1e-300)), self.low)
        points = torch.stack([self.low, self.high, peak.clamp(self.low, self.high)])  # [3, d]
        return float((linear * points + square * points**2).max(0).values.sum()) if d else 0.0

    def spread(self) -> Tensor:
        """π's standard deviation of each steered factor, in units of q_H's `[d]`."""
        d = len(self.columns)
        return (self._mean[d:] - self._mean[:d] ** 2).clamp(min=0).sqrt()

    # ------------------------------------------------------------------ Steerer
    def propose(self, count: int, *, generator: torch.Generator) -> Tensor:
        """`count` draws from π: REINFORCE learns on-policy, from answers about its own samples."""
        if count < 1:
            return torch.empty(0, len(self.space), dtype=torch.float64)
        return self.sample(count, generator=generator).values

    def update(self, values: Tensor, answers: Sequence[str], reliabilities: Sequence[float]) -> None:
        """One natural-gradient step on the round's sure answers (unsure ones carry nothing)."""
        rows, accepted, p = sure_answers(values, answers, reliabilities)
        if not len(rows):
            return
        self._rounds.append((rows, accepted.to(torch.float64) * 2 - 1, p))
        self._learn(*self._rounds[-1])

    def reweigh(self, reliabilities: Sequence[float]) -> None:
        """Weigh every sure answer taken so far (in the order taken) with these reliabilities instead.

        A policy gradient is a path, not a sum: π is rebuilt by replaying every round's step from
        q_H with the new weights, so it is the π the run would have had with them from the start.
        """
        if len(reliabilities) != self.answers_used:
            raise ValueError(f"`reliabilities` must have one entry per answer taken ({self.answers_used}), "
                             f"got {len(reliabilities)}.")
        weights = torch.tensor([float(p) for p in reliabilities], dtype=torch.float64)
        rounds, start = [], 0
        for values, sign, _ in self._rounds:
            rounds.append((values, sign, weights[start:start + len(sign)]))
            start += len(sign)
        self._reset()
        self._rounds = rounds
        for values, sign, p in rounds:
            self._learn(values, sign, p)

    def _reset(self) -> None:
        self.eta = torch.zeros(2 * len(self.columns), dtype=torch.float64)
        self.baseline = None
        self.answers_used = 0
        self._rounds = []
        self._refresh()

    def _learn(self, values: Tensor, sign: Tensor, reliabilities: Tensor) -> None:
        rewards = sign * (2 * reliabilities.clamp(0.5, 1.0) - 1)
        baseline = float(rewards.mean()) if self.baseline is None else self.baseline
        if self.columns:
            advantage = rewards - baseline
            self._step((advantage[:, None] * (self.statistics(values) - self._mean)).mean(0))
        self.baseline = baseline
        for reward in rewards.tolist():  # a running mean over about the last 1 / BASELINE_RATE answers
            self.baseline += BASELINE_RATE * (reward - self.baseline)
        self.answers_used += len(sign)

    def _step(self, gradient: Tensor) -> None:
        """Natural-gradient ascent with the KL pull, halved until π moved at most `TRUST_REGION` nats."""
        size = len(self.eta)
        fisher = self._cov + (1e-9 + 1e-6 * float(self._cov.diagonal().mean())) * torch.eye(size, dtype=torch.float64)
        natural = torch.linalg.solve(fisher, gradient)
        d = len(self.columns)
        for _ in range(HALVINGS):
            eta = (1 - STEP * self.pull) * self.eta + STEP * natural
            eta[d:] = eta[d:].clamp(max=0.0)  # a bump, never a trough: bounded, one mode per factor
            if self._divergence(eta) <= TRUST_REGION:
                break
            natural = natural / 2
        else:
            eta = (1 - STEP * self.pull) * self.eta  # no safe step: only the pull
        self.eta = eta
        self._refresh()
        for _ in range(FLOOR_PASSES):  # a factor's weights shift the probe estimate of the others' spread a little
            if not bool((self.spread() < FLOOR).any()):
                break
            self._floor()
            self._refresh()

    def _divergence(self, eta: Tensor) -> float:
        """KL(π_η_now ‖ π_eta) on the probe: how far a step would move π, measured, not linearised."""
        log_w = self._features @ self.eta
        change = self._features @ (eta - self.eta)
        log_z_new = float(torch.logsumexp(log_w + change, 0)) - math.log(PROBE)
        return float(torch.softmax(log_w, 0) @ -change) + log_z_new - self._log_z

    def _floor(self) -> None:
        """Shrink the tilt of each factor narrower than the floor toward 0, keeping its centre."""
        d = len(self.columns)
        for j in torch.nonzero(self.spread() < FLOOR).flatten().tolist():
            own = self._features[:, [j, d + j]] @ self.eta[[j, d + j]]
            rest = self._features @ self.eta - own
            c = self._features[:, j]

            def spread(t: float, own: Tensor = own, rest: Tensor = rest, c: Tensor = c) -> float:
                weights = torch.softmax(rest + t * own, 0)
                mean = float(weights @ c)
                return math.sqrt(max(float(weights @ (c * c)) - mean * mean, 0.0))

            low, high = 0.0, 1.0  # the largest share t of the tilt that keeps the spread at the floor
            for _ in range(FLOOR_STEPS):
                middle = (low + high) / 2
                low, high = (middle, high) if spread(middle) >= FLOOR else (low, middle)
            self.eta[[j, d + j]] *= low

    def state(self) -> dict[str, Any]:
        """Answers used, the steered factors, π's mean and spread of each, its tilt η, KL(π‖q_H) and the share of q_H kept."""
        d = len(self.columns)
        mean = (self.centre + self.scale * self._mean[:d]).tolist()
        std = (self.scale * self.spread()).tolist()
        return {"answers_used": self.answers_used, "steered": list(self.factors),
                "mean": dict(zip(self.factors, mean, strict=True)), "std": dict(zip(self.factors, std, strict=True)),
                "eta": {name: [float(self.eta[j]), float(self.eta[d + j])] for j, name in enumerate(self.factors)},
                "baseline": self.baseline, "kl_from_spec": self._kl, "kept_mass": math.exp(self._log_z - self._log_bound)}

    # ------------------------------------------------------------------ ThetaSource
    def sample(self, n: int, *, generator: torch.Generator) -> Theta:
        """`n` environments from π, by rejection from q_H with acceptance exp(ηᵀT − max ηᵀT)."""
        return rejection_sample(self.guidance, n, generator,
                                lambda values: self.statistics(values) @ self.eta - self._log_bound,
                                rate=math.exp(self._log_z - self._log_bound),
                                refusal="the answers push it where the spec puts almost no mass")

    def log_prob(self, theta: Theta | Tensor) -> Tensor:
        """log q_H(θ) + ηᵀT(θ) − log E_q[exp(ηᵀT)]: π's density, −inf outside the spec's support."""
        values = theta.values if isinstance(theta, Theta) else theta.to(torch.float64)
        return self.guidance.log_prob(values) + self.statistics(values) @ self.eta - self._log_z

    def __repr__(self) -> str:
        return f"ReinforceSteerer(steered={self.factors!r}, answers={self.answers_used})"
