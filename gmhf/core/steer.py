"""Steering: the agent that turns expert answers into the distribution π(θ) training draws from.

A `Steerer` proposes environments to ask about, takes the answers, and is itself a `ThetaSource`
(so a task pool draws from π exactly as it would from the spec). The default agent,
`PosteriorSteerer`, reads every answer as a noisy label of "θ is plausible" and sets

    π(θ) ∝ q_H(θ) · P(plausible | θ, answers),

where q_H is the spec's belief and the plausibility model looks only at the factors the spec flags:
by default a posterior over boxes in those factors (`gmhf.core.boxes`, the shape a spec states a
target in), or with `shape="any"` the nearest-answer model (`gmhf.core.plausibility`), which
assumes no shape and needs more answers. docs/method.md gives the reasons for each choice.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from gmhf.core.boxes import BoxPosterior
from gmhf.core.plausibility import PlausibilityModel
from gmhf.core.reliability import DEFAULT_RELIABILITY
from gmhf.core.theta import Theta
from gmhf.errors import GmhfError, GmhfWarning, UsageError

if TYPE_CHECKING:
    from gmhf.core.belief import Belief
    from gmhf.core.factors import FactorSpace

__all__ = ["Informative", "Plausible", "PosteriorSteerer", "ReliabilityAware", "Steerer", "rejection_sample",
           "steered_factors", "sure_answers"]

#: q_H draws that fix the normalisation of the steered factors and π's normaliser.
PROBE = 16_384
#: Share of each round's candidates drawn from q_H rather than π, so the boundary is probed from outside too.
EXPLORE = 0.5
#: Candidates scored per question asked, and at most in one round (a panel's).
CANDIDATES_PER_QUESTION = {"box": 512, "any": 64}
CANDIDATES = 4096
#: Share of each round's questions that are plain draws from π: they catch regions the model is
#: confidently wrong about, which an uncertainty score alone never asks about.
FROM_PI = {"box": 0.2, "any": 0.4}


@runtime_checkable
class Steerer(Protocol):
    """Base protocol of steering agents: propose questions, learn from answers, and be a θ source.

    `propose(count, generator=)` returns θ rows `[count, k]` worth asking about; `update(values,
    answers, reliabilities)` takes answered rows with the reliability each answer is weighted with;
    `reweigh(reliabilities)` replaces those weights for every answer taken so far (the loop's
    estimate of an expert changed); `state()` summarises the agent for the round log; `factors`
    names the factors it may move. `space`, `sample` and `log_prob` make it a `ThetaSource`. An
    agent must be a function of the answers it was given, so a resumed run rebuilds the same π.
    """

    space: FactorSpace
    factors: tuple[str, ...]

    def propose(self, count: int, *, generator: torch.Generator) -> Tensor:
        """`count` θ rows to put to the experts."""
        ...

    def update(self, values: Tensor, answers: Sequence[str], reliabilities: Sequence[float]) -> None:
        """Learn from answered rows `[m, k]`."""
        ...

    def reweigh(self, reliabilities: Sequence[float]) -> None:
        """Weigh every answer taken so far, in the order taken, with these reliabilities instead."""
        ...

    def state(self) -> dict[str, Any]:
        """A JSON-able summary for the round log."""
        ...

    def sample(self, n: int, *, generator: torch.Generator) -> Theta:
        """`n` environments from π."""
        ...

    def log_prob(self, theta: Theta | Tensor) -> Tensor:
        """Log density of π `[n]`."""
        ...


@runtime_checkable
class Informative(Protocol):
    """An agent that can say how much an answer would teach it (what `--answers auto` stops on)."""

    def information(self, values: Tensor, reliability: float) -> Tensor:
        """Expected bits `[n]` an answer at `reliability` about each row would carry."""
        ...


@runtime_checkable
class ReliabilityAware(Protocol):
    """An agent that chooses each expert's questions for the weight of that expert's answers (a split panel)."""

    def propose_panel(self, weights: Sequence[float], count: int, *, generator: torch.Generator) -> Tensor:
        """θ rows `[len(weights) · count, k]`: `count` for each expert in turn, each answered once."""
        ...


@runtime_checkable
class Plausible(Protocol):
    """An agent whose π rests on P(θ plausible | answers so far): the loop judges each expert's answers by it."""

    def plausibility(self, values: Tensor) -> Tensor:
        """P(plausible) `[n]` for θ rows `[n, k]`, from the answers taken so far."""
        ...


def steered_factors(guidance: Belief, steer: Literal["flagged", "all"]) -> tuple[str, ...]:
    """The factors an agent may move: the flagged ones, or with `all` every factor not declared invariant."""
    if steer == "flagged":
        return guidance.flagged
    if steer == "all":
        return tuple(n for n in guidance.space.names if n not in guidance.invariant)
    raise UsageError(f"`steer` must be 'flagged' or 'all', got {steer!r}.")


class PosteriorSteerer:
    """π(θ) ∝ q_H(θ) · s(θ), s the posterior probability that θ is plausible given the answers.

    Args:
        guidance: the spec's belief q_H; π never leaves its support or its `require`s.
        steer: `"flagged"` (default) moves only the factors the spec shifts or gives a prior;
            `"all"` every factor not declared invariant. Invariant factors are never moved.
        shape: `"box"` (default) takes the plausible region to be a box in the steered factors
            and asks the questions that locate its bounds jointly; `"any"` assumes no shape (a
            region a `require` cuts, levels that are not adjacent) at the price of more answers.
        seed: the q_H probe that fixes the steered factors' normalisation and π's normaliser, and the
            box posterior's particles.

    Sampling is exact rejection from q_H with acceptance s(θ)/ŝ, ŝ the largest s over a probe of
    16,384 q_H draws: exact wherever s does not exceed that maximum. s depends on the steered
    columns only, so the other factors keep q_H's distribution (exactly, when the spec has no
    `require` linking them to steered ones). With no answers, or answers at reliability 0.5, s is
    ½ everywhere and π is q_H.
    """

    def __init__(self, guidance: Belief, *, steer: Literal["flagged", "all"] = "flagged",
                 shape: Literal["box", "any"] = "box", seed: int = 0) -> None:
        self.guidance = guidance
        self.space = guidance.space
        self.factors = steered_factors(guidance, steer)
        self.columns = [self.space.index(name) for name in self.factors]
        probe = guidance.sample(PROBE, generator=torch.Generator().manual_seed(seed)).values
        self._probe = probe
        steered = probe[:, self.columns]
        self.centre = steered.mean(0)
        self.scale = steered.std(0).clamp(min=1e-12)
        inputs = self._inputs(probe)
        if shape not in ("box", "any"):
            raise UsageError(f"`shape` must be 'box' or 'any', got {shape!r}.")
        self.shape = shape
        if shape == "box":
            _warn_of_unordered_levels(guidance.space, self.factors, steered)
        self.model: BoxPosterior | PlausibilityModel = (
            BoxPosterior(inputs.min(0).values, inputs.max(0).values, seed=seed) if shape == "box"
            else PlausibilityModel(len(self.columns)))
        self.values = torch.empty(0, len(self.space), dtype=torch.float64)
        self.labels = torch.empty(0, dtype=torch.float64)
        self.reliabilities = torch.empty(0, dtype=torch.float64)
        self._refresh_normaliser()

    # ------------------------------------------------------------------ the plausibility s(θ)
    def _inputs(self, values: Tensor) -> Tensor:
        return (values[:, self.columns] - self.centre) / self.scale

    def plausibility(self, values: Tensor) -> Tensor:
        """s(θ) `[n]`: the posterior probability that each row is plausible (½ before any answer)."""
        if not self.columns or not self.model.fitted:
            return torch.full((values.shape[0],), 0.5, dtype=torch.float64)
        return self.model.probability(self._inputs(values))

    def _refresh_normaliser(self) -> None:
        s = self.plausibility(self._probe)
        self._ceiling = float(s.max())
        self._log_z = math.log(max(float(s.mean()), 1e-300))

    # ------------------------------------------------------------------ Steerer
    def propose(self, count: int, *, generator: torch.Generator) -> Tensor:
        """`count` questions, each to be answered by every expert (their answers add up: `_typical_reliability`)."""
        return self.propose_panel([self._typical_reliability()], count, generator=generator)

    def propose_panel(self, weights: Sequence[float], count: int, *, generator: torch.Generator) -> Tensor:
        """`count` questions for each expert, answers weighing `weights`; rows `[i·count, (i+1)·count)` are expert i's.

        A share `FROM_PI` of each expert's questions are draws from π: they catch regions π is
        confidently wrong about, which an uncertainty score never asks about, and they keep each
        expert's reliability estimate fed with answers the agent is sure of. The rest are chosen
        from candidates (half from π, half from q_H, so the boundary is probed from both sides): by
        the box model jointly, each for the weight of the answer it will get
        (`BoxPosterior.select`); by the nearest-answer model by the entropy of the predicted
        answer, greedily, each pick damping the scores of candidates near it (radius 0.25 in
        q_H-normalised units), so a round does not ask one question five times. Before any
        acceptance, answers say only where plausibility is not, so the questions fill q_H's support
        instead: each is the candidate farthest from every question asked so far (a maximin design
        over draws of q_H, so denser where q_H is).
        """
        if count < 1 or not weights:
            return torch.empty(0, len(self.space), dtype=torch.float64)
        found = bool((self.labels > 0).any())
        plain = int(round(count * FROM_PI[self.shape])) if found else 0
        direct = [i * count + j for i in range(len(weights)) for j in range(plain)]
        rest = [i * count + j for i in range(len(weights)) for j in range(plain, count)]
        reliabilities = [weights[row // count] for row in rest]
        questions = torch.empty(len(weights) * count, len(self.space), dtype=torch.float64)
        questions[direct] = self.sample(len(direct), generator=generator).values
        total = min(max(len(rest) * CANDIDATES_PER_QUESTION[self.shape], 64), CANDIDATES)
        explore = int(total * EXPLORE)
        candidates = torch.cat([self.guidance.sample(explore, generator=generator).values,
                                self.sample(total - explore, generator=generator).values])
        if not self.columns:
            questions[rest] = candidates[:len(rest)]
            return questions
        inputs = self._inputs(candidates)
        jitter = 1e-9 * torch.rand(len(inputs), generator=generator, dtype=torch.float64)  # breaks ties
        if not found:
            chosen = _spread(inputs, self._inputs(self.values), len(rest), jitter)
        elif isinstance(self.model, BoxPosterior):
            chosen = self.model.select(inputs, reliabilities, generator=generator)
        else:
            typical = sorted(reliabilities)[len(rest) // 2]  # one score for all: the median
            chosen = _informative(inputs, self._entropy(inputs, typical) + jitter, len(rest))
        questions[rest] = candidates[chosen]
        return questions

    def _typical_reliability(self) -> float:
        """The reliability of one question's answers taken together, averaged over the questions asked.

        A panel answers each question several times and the answers add their evidence, so a
        question answered at 0.9 and 0.7 is worth one answer at 0.95: the questions are chosen for that.
        """
        if not len(self.reliabilities):
            return DEFAULT_RELIABILITY
        p = self.reliabilities.clamp(0.5, 1.0)  # a perfect expert's answer settles its question: p stays 1
        _, question = torch.unique(self.values, dim=0, return_inverse=True)
        evidence = torch.zeros(int(question.max()) + 1, dtype=torch.float64)
        evidence.index_add_(0, question, (p / (1 - p)).log())
        return float(torch.sigmoid(evidence.mean()))

    def update(self, values: Tensor, answers: Sequence[str], reliabilities: Sequence[float]) -> None:
        """Add the sure answers (unsure ones carry nothing) and refit the plausibility model."""
        rows, accepted, p = sure_answers(values, answers, reliabilities)
        if not len(rows):
            return
        labels, p = accepted.to(torch.float64), p.clamp(0.5, 1.0)
        self.values = torch.cat([self.values, rows])
        self.labels = torch.cat([self.labels, labels])
        self.reliabilities = torch.cat([self.reliabilities, p])
        if self.columns:
            self.model.fit(self._inputs(self.values), self.labels, self.reliabilities)
        self._refresh_normaliser()

    def reweigh(self, reliabilities: Sequence[float]) -> None:
        """New weights for every sure answer taken so far (in the order taken), and refit."""
        if len(reliabilities) != len(self.labels):
            raise ValueError(f"`reliabilities` must have one entry per answer taken ({len(self.labels)}), "
                             f"got {len(reliabilities)}.")
        self.reliabilities = torch.tensor([min(max(float(p), 0.5), 1.0) for p in reliabilities], dtype=torch.float64)
        if self.columns and len(self.labels):
            self.model.fit(self._inputs(self.values), self.labels, self.reliabilities)
        self._refresh_normaliser()

    def information(self, values: Tensor, reliability: float) -> Tensor:
        """Expected bits `[n]` an answer at `reliability` would carry: H(predicted answer) − H₂(p).

        Zero where the answers so far already settle plausibility (s near 0 or 1) and for an
        answer at p = ½; at most 1 − H₂(p), where s = ½.
        """
        if not self.columns:
            return torch.zeros(values.shape[0], dtype=torch.float64)
        p = min(max(reliability, 0.5), 1.0)
        return (self._entropy(self._inputs(values), p) - _binary_entropy(p)).clamp(min=0.0)

    def _entropy(self, inputs: Tensor, reliability: float) -> Tensor:
        """Entropy (bits) of the predicted answer `[n]`: p·s + (1 − p)·(1 − s) is accept's probability."""
        s = self.model.probability(inputs)
        p = min(max(reliability, 0.5), 1.0)
        q = (p * s + (1 - p) * (1 - s)).clamp(1e-12, 1 - 1e-12)
        return -(q * q.log() + (1 - q) * (1 - q).log()) / math.log(2)

    def state(self) -> dict[str, Any]:
        """Answers used, the steered factors, and how much of q_H π keeps (its normaliser E_q[s])."""
        return {"answers_used": int(len(self.labels)), "steered": list(self.factors),
                "kept_mass": math.exp(self._log_z)}

    # ------------------------------------------------------------------ ThetaSource
    def sample(self, n: int, *, generator: torch.Generator) -> Theta:
        """`n` environments from π, by rejection from q_H with acceptance s(θ)/ŝ."""
        ceiling = max(self._ceiling, 1e-300)
        return rejection_sample(self.guidance, n, generator, lambda values: (self.plausibility(values) / ceiling).log(),
                                rate=math.exp(self._log_z) / ceiling,
                                refusal="the answers reject nearly everything the spec allows")

    def log_prob(self, theta: Theta | Tensor) -> Tensor:
        """log q_H(θ) + log s(θ) − log E_q[s]: π's density, −inf outside the spec's support."""
        values = theta.values if isinstance(theta, Theta) else theta.to(torch.float64)
        return self.guidance.log_prob(values) + self.plausibility(values).log() - self._log_z

    def __repr__(self) -> str:
        return f"PosteriorSteerer(steered={self.factors!r}, answers={len(self.labels)})"


def sure_answers(values: Tensor, answers: Sequence[str], reliabilities: Sequence[float]) -> tuple[Tensor, Tensor, Tensor]:
    """The rows answered accept or reject `[m, k]`, whether each was accepted `[m]`, and its reliability `[m]`.

    Unsure answers carry nothing and are left out. Raises ValueError when the lengths differ (a
    caller's mistake, not a user's).
    """
    if values.shape[0] != len(answers) or len(answers) != len(reliabilities):
        raise ValueError(f"`values`, `answers` and `reliabilities` must have the same length, got "
                         f"{values.shape[0]}, {len(answers)} and {len(reliabilities)}.")
    sure = [i for i, a in enumerate(answers) if a in ("accept", "reject")]
    return (values[sure].to(torch.float64), torch.tensor([answers[i] == "accept" for i in sure], dtype=torch.bool),
            torch.tensor([float(reliabilities[i]) for i in sure], dtype=torch.float64))


def rejection_sample(belief: Belief, n: int, generator: torch.Generator, log_acceptance: Callable[[Tensor], Tensor],
                     *, rate: float, refusal: str) -> Theta:
    """`n` draws of q_H, each kept with probability exp(log_acceptance(θ)) ≤ 1: exact draws of π ∝ q_H · acceptance.

    `rate` is the expected share kept (it sizes each batch of candidates); `refusal` says why π
    keeps too little when a thousand batches do not yield `n`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UsageError(f"`n` must be a non-negative int, got {n!r}.")
    kept: list[Tensor] = []
    have = 0
    rate = max(rate, 1e-4)
    for _ in range(1000):
        if have >= n:
            break
        want = min(int((n - have) / rate * 1.2) + 16, 1 << 20)
        candidates = belief.sample(want, generator=generator).values
        keep = torch.rand(want, generator=generator, dtype=torch.float64).log() < log_acceptance(candidates)
        kept.append(candidates[keep])
        have += int(keep.sum())
    if have < n:
        raise GmhfError(f"π keeps too little of the spec's belief to draw {n} environments; {refusal} (is the spec "
                        f"wrong about the target?).")
    values = torch.cat(kept)[:n] if kept else torch.empty(0, len(belief.space), dtype=torch.float64)
    template = belief.sample(0, generator=generator)
    return Theta(values, template.names, template.levels, template.integers)


def _warn_of_unordered_levels(space: FactorSpace, factors: Sequence[str], steered: Tensor) -> None:
    """A box holds an interval of a categorical factor's levels: say so where q_H leaves three or more to choose from."""
    for name, codes in zip(factors, steered.T, strict=True):
        levels = space[name].levels
        present = [levels[int(code)] for code in codes.unique().tolist()] if levels else []
        if len(present) >= 3:
            warnings.warn(f"the box shape takes the plausible levels of `{name}` to be neighbours in the order "
                          f"{', '.join(present)}; a target such as {present[0]} and {present[2]} without {present[1]} "
                          f"needs shape 'any' (gmhf run --shape any).", GmhfWarning, stacklevel=3)


def _binary_entropy(p: float) -> float:
    """H₂(p) in bits."""
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def _informative(inputs: Tensor, scores: Tensor, count: int, radius: float = 0.25) -> list[int]:
    """Greedy: the best-scoring candidate, then damp the scores near it, `count` times."""
    chosen: list[int] = []
    for _ in range(min(count, len(inputs))):
        best = int(scores.argmax())
        chosen.append(best)
        distance = ((inputs - inputs[best]) ** 2).sum(-1)
        scores = scores * (1 - torch.exp(-distance / (2 * radius**2)))
        scores[best] = -math.inf
    return chosen


def _spread(inputs: Tensor, asked: Tensor, count: int, jitter: Tensor) -> list[int]:
    """Greedy maximin: each pick is the candidate farthest from every earlier question and pick."""
    nearest = (torch.cdist(inputs, asked).min(1).values if len(asked)
               else torch.full((len(inputs),), math.inf, dtype=torch.float64))
    chosen: list[int] = []
    for _ in range(min(count, len(inputs))):
        best = int((torch.where(torch.isinf(nearest), torch.full_like(nearest, 1e9), nearest) + jitter).argmax())
        chosen.append(best)
        nearest = torch.minimum(nearest, ((inputs - inputs[best]) ** 2).sum(-1).sqrt())
    return chosen
