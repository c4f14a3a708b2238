"""P(plausible | θ) when the plausible region is a box: a posterior over boxes, kept as weighted particles.

A spec's statements (`shift beta in 0.6 .. 1.0`) describe a target as an interval per factor, so the
natural hypothesis about an expert's plausible region is a box in the steered coordinates: 2·d
numbers, whatever the number of answers. Answers are noisy labels of "θ is in the box", flipped
with probability 1 − p, so a box b has log-likelihood Σⱼ 1[xⱼ ∈ b] · eⱼ up to a constant, eⱼ =
±log(p / (1 − p)) the answer's evidence (the same as the neighbourhood model's). Then

    s(θ) = P(θ ∈ box | answers) = Σᵢ wᵢ · 1[θ ∈ bᵢ]

over particles bᵢ of the posterior. Why this shape:

* each answer near a bound moves that bound's posterior, whatever its position along the box's
  face, so locating a bound takes about log₂(range / precision) answers, as bisection does; a
  model with no shape must resolve the boundary at every position along it;
* the answer that teaches most is where s = ½ (the entropy of the predicted answer is then the
  mutual information between the answer and the box, exactly, under this noise model);
* the prior keeps π = q_H before any evidence: each factor's width w is log-uniform over
  [2 %, 200 %] of its range R and the lower bound uniform over [a − w, b], so every point of
  [a, b] lies inside with probability w / (R + w), the same everywhere.

The posterior is kept by sequential Monte Carlo: new evidence is brought in by tempering steps
small enough to keep half the particles effective, each followed by resampling and Metropolis
moves of one factor's bounds at a time. Every random draw comes from a generator seeded by the
model's seed and the number of answers fitted, so replaying the same answers rebuilds the same s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gmhf.core.plausibility import RELIABILITY_CAP
from gmhf.core.seeding import named_stream

__all__ = ["BoxPosterior"]

#: Particles of the posterior over boxes.
PARTICLES = 2048
#: The prior's widths, as fractions of a factor's range (log-uniform between them).
WIDEST, NARROWEST = 2.0, 0.02
#: Tempering keeps at least this share of the particles effective.
EFFECTIVE = 0.5
#: Metropolis sweeps (each moves every factor's bounds once) after each resampling.
SWEEPS = 3
#: Candidates scored at once.
CHUNK = 8192
#: Outcomes of a round's answers kept exactly when choosing its questions (2^5: the first six picks
#: of a round are exact); beyond, they are thinned to this many draws.
OUTCOMES = 32


class BoxPosterior:
    """s(x) = P(x in the box | answers), for inputs in a known range.

    Args:
        low, high: `[d]` the range of each input (q_H's support in the steered coordinates).
        seed: seeds the prior draw and every move.
    """

    def __init__(self, low: Tensor, high: Tensor, *, seed: int = 0, particles: int = PARTICLES) -> None:
        self.low, self.high = low.to(torch.float64), high.to(torch.float64)
        self.range = (self.high - self.low).clamp(min=1e-12)
        self.seed, self.particles = seed, particles
        self.x = torch.empty(0, len(self.low), dtype=torch.float64)
        self.own = torch.empty(0, dtype=torch.float64)  # each answer's evidence, as the particles weigh it
        self._reset()

    def _reset(self) -> None:
        generator = named_stream("gmhf-boxes", self.seed)
        n, d = self.particles, len(self.low)
        width = self.range * torch.exp(math.log(NARROWEST) + math.log(WIDEST / NARROWEST)
                                       * torch.rand(n, d, generator=generator, dtype=torch.float64))
        self.lower = self.low - width + (self.range + width) * torch.rand(n, d, generator=generator,
                                                                          dtype=torch.float64)
        self.upper = self.lower + width
        self.log_weight = torch.full((n,), -math.log(n), dtype=torch.float64)

    @property
    def fitted(self) -> bool:
        """Whether any answer carries evidence."""
        return bool((self.own != 0).any())

    # ------------------------------------------------------------------ fitting
    def fit(self, x: Tensor, labels: Tensor, reliabilities: Tensor) -> None:
        """Take all answers so far (inputs `[m, d]`, labels 1/0, reliabilities `[m]`).

        When the earlier answers are a prefix of these (the agent only appends), the particles move
        from the last posterior to the new one; otherwise they start again from the prior.
        """
        x = x.to(torch.float64)
        p = reliabilities.to(torch.float64).clamp(0.5, RELIABILITY_CAP)
        evidence = (labels.to(torch.float64) * 2 - 1) * (p / (1 - p)).log()
        m = len(self.own)
        if len(x) < m or not torch.equal(x[:m], self.x):
            self._reset()
            m, self.own = 0, torch.empty(0, dtype=torch.float64)
        before = torch.cat([self.own, evidence.new_zeros(len(x) - m)])
        self.x, self.own = x, evidence
        generator = named_stream("gmhf-boxes", self.seed, len(x))
        self._temper(before, evidence - before, generator)

    def _temper(self, before: Tensor, change: Tensor, generator: torch.Generator) -> None:
        """Move the particles from the posterior under `before` to the one under `before + change`."""
        if not bool((change != 0).any()):
            return
        gain = self._inside(self.x).to(torch.float64) @ change  # how much each particle's log-likelihood changes
        done = 0.0
        while done < 1.0:
            step = self._step(gain, 1.0 - done)
            done = 1.0 if step >= 1.0 - done - 1e-9 else done + step
            self.log_weight = _normalised(self.log_weight + step * gain)
            self._resample(generator)
            self._move(before + done * change, generator)
            gain = self._inside(self.x).to(torch.float64) @ change

    def _step(self, gain: Tensor, left: float) -> float:
        """The largest tempering step (≤ `left`) that keeps EFFECTIVE of the particles effective."""
        if _effective(self.log_weight + left * gain) >= EFFECTIVE * self.particles:
            return left
        low, high = 0.0, left
        for _ in range(40):
            middle = (low + high) / 2
            low, high = (middle, high) if _effective(self.log_weight + middle * gain) >= EFFECTIVE * self.particles \
                else (low, middle)
        return max(low, min(left, 1e-3))

    def _resample(self, generator: torch.Generator) -> None:
        """Systematic resampling: equal weights, each particle kept about N·wᵢ times."""
        n = self.particles
        cumulative = torch.cumsum(self.log_weight.exp(), 0)
        points = (torch.rand(1, generator=generator, dtype=torch.float64) + torch.arange(n, dtype=torch.float64)) / n
        index = torch.searchsorted(cumulative, points * cumulative[-1]).clamp(max=n - 1)
        self.lower, self.upper = self.lower[index], self.upper[index]
        self.log_weight = torch.full((n,), -math.log(n), dtype=torch.float64)

    def _move(self, evidence: Tensor, generator: torch.Generator) -> None:
        """Metropolis moves of one factor's two bounds at a time, on prior × exp(Σ 1[x ∈ b]·e).

        Each bound steps by the particles' spread for that bound. (Moves that also slide a whole
        interval by a tenth of its width mixed better, and made π reach 90 % in the truth's support
        later at p = 0.9: median 135 answers against 75 over seeds 0-4, since the posterior they
        keep is wider near the bounds.)
        """
        d = len(self.low)
        log_like = self._inside(self.x).to(torch.float64) @ evidence
        log_prior = self._log_prior(self.lower, self.upper)
        for _ in range(SWEEPS):
            for f in range(d):
                floor = 1e-3 * float(self.range[f])
                lower, upper = self.lower.clone(), self.upper.clone()
                lower[:, f] += self.lower[:, f].std().clamp(min=floor) * _normal(self.particles, generator)
                upper[:, f] += self.upper[:, f].std().clamp(min=floor) * _normal(self.particles, generator)
                prior = self._log_prior(lower, upper)
                like = _inside(self.x, lower, upper).to(torch.float64) @ evidence
                accept = torch.rand(self.particles, generator=generator, dtype=torch.float64).log() < \
                    (prior + like - log_prior - log_like)
                self.lower = torch.where(accept[:, None], lower, self.lower)
                self.upper = torch.where(accept[:, None], upper, self.upper)
                log_like = torch.where(accept, like, log_like)
                log_prior = torch.where(accept, prior, log_prior)

    def _log_prior(self, lower: Tensor, upper: Tensor) -> Tensor:
        """Log density of (lower, upper) under the prior, summed over factors (−inf outside it)."""
        width = upper - lower
        allowed = ((width >= NARROWEST * self.range) & (width <= WIDEST * self.range)
                   & (lower >= self.low - width) & (lower <= self.high)).all(1)
        density = -(width.clamp(min=1e-300).log() + (self.range + width).log()).sum(1)
        return torch.where(allowed, density, torch.full_like(density, -math.inf))

    def _inside(self, x: Tensor) -> Tensor:
        return _inside(x, self.lower, self.upper)

    def _carrying(self) -> tuple[Tensor, Tensor, Tensor]:
        """The boxes that carry weight, and their weights: below e⁻⁴⁰ of the largest a weight adds nothing."""
        keep = self.log_weight > self.log_weight.max() - 40
        return self.lower[keep], self.upper[keep], self.log_weight[keep].exp()

    # ------------------------------------------------------------------ reading s
    def probability(self, x: Tensor) -> Tensor:
        """s(x) `[n]`: the posterior probability that each input lies in the box.

        Only inputs inside the envelope of the boxes that carry weight are compared with them: s is
        0 elsewhere, and late in a run that is most of q_H.
        """
        x = x.to(torch.float64)
        lower, upper, weight = self._carrying()
        near = ((x >= lower.min(0).values) & (x <= upper.max(0).values)).all(1)
        s = torch.zeros(len(x), dtype=torch.float64)
        candidates = x[near]
        if len(candidates):
            weight32 = weight.to(torch.float32)  # a sum of weights to 1e-7 is all rejection sampling needs
            s[near] = torch.cat([weight32 @ _inside(part, lower, upper).to(torch.float32)
                                 for part in candidates.split(CHUNK)]).to(torch.float64)
        return s.clamp(1e-12, 1 - 1e-12)

    def select(self, x: Tensor, reliabilities: Sequence[float], *, generator: torch.Generator) -> list[int]:
        """One row of `x` per answer to come, at that answer's reliability: together, the answers that teach most.

        The answers to a set of questions are independent given the box, so their mutual
        information with it is H(answers) − Σ H₂(p). The rows are picked greedily, the most
        reliable answers first, each the one that adds most to H(answers). That entropy is exact
        over the particles (2^k outcomes for k answers) up to OUTCOMES outcomes; beyond, the
        outcomes are thinned to OUTCOMES draws in proportion to their probability (drawn from
        `generator`), which estimates the entropy's increment without bias. Two questions about
        the same stretch of one bound are worth little more than one, so a round spreads itself
        over the bounds without a distance scale; an answer at p = ½ teaches nothing, and its row
        is the first not taken. Returns row indices in the order of `reliabilities`.
        """
        if len(x) < len(reliabilities):
            raise ValueError(f"{len(reliabilities)} answers need as many candidate rows, got {len(x)}.")
        lower, upper, weight = self._carrying()
        weight = weight / weight.sum()
        inside = _inside(x.to(torch.float64), lower, upper).to(torch.float64)
        joint = weight[:, None]  # [particles, outcomes]: P(box) · P(answers so far | box)
        taken = torch.zeros(len(x), dtype=torch.bool)
        chosen: dict[int, int] = {}
        answer: dict[float, tuple[Tensor, Tensor]] = {}  # p -> P(accept | box), P(reject | box) `[particles, n]`
        for slot in sorted(range(len(reliabilities)), key=lambda i: -reliabilities[i]):  # stable: ties keep their order
            p = min(max(float(reliabilities[slot]), 0.5), RELIABILITY_CAP)
            if p not in answer:
                accept = p * inside + (1 - p) * (1 - inside)
                answer[p] = accept, 1 - accept
            accept, reject = answer[p]
            yes = joint.T @ accept  # [outcomes, n]
            no = joint.T @ reject
            entropy = -(_xlogx(yes) + _xlogx(no)).sum(0)
            entropy[taken] = -math.inf
            best = int(entropy.argmax())
            chosen[slot], taken[best] = best, True
            joint = torch.cat([joint * accept[:, best, None], joint * reject[:, best, None]], 1)
            if joint.shape[1] > OUTCOMES:
                joint = _thinned(joint, generator)
        return [chosen[slot] for slot in range(len(reliabilities))]


def _inside(x: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    """`[particles, n]` true where input j lies in box i (one factor at a time: no `[particles, n, d]` array)."""
    inside = torch.ones(len(lower), len(x), dtype=torch.bool)
    for f in range(x.shape[1]):
        column = x[:, f][None]
        inside &= (column >= lower[:, f, None]) & (column <= upper[:, f, None])
    return inside


def _thinned(joint: Tensor, generator: torch.Generator) -> Tensor:
    """OUTCOMES outcome columns drawn in proportion to their probability, each rescaled to mass 1 / OUTCOMES.

    Σ −yes·log(yes) over the drawn columns is then a Monte Carlo estimate of H(answers so far,
    next answer) less a constant, which is all the greedy choice compares.
    """
    mass = joint.sum(0)
    drawn = torch.multinomial(mass / mass.sum(), OUTCOMES, replacement=True, generator=generator)
    return joint[:, drawn] / (mass[drawn] * OUTCOMES)


def _normal(n: int, generator: torch.Generator) -> Tensor:
    return torch.randn(n, generator=generator, dtype=torch.float64)


def _xlogx(q: Tensor) -> Tensor:
    return q * q.clamp(min=1e-300).log()


def _normalised(log_weight: Tensor) -> Tensor:
    return log_weight - torch.logsumexp(log_weight, 0)


def _effective(log_weight: Tensor) -> float:
    """Kish's effective sample size of the weights."""
    w = torch.softmax(log_weight, 0)
    return float(1.0 / (w * w).sum())
