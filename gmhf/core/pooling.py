"""Several specs of one domain pooled into one belief: q(θ) = Σ_i w_i q_i(θ), w_i ∝ trust_i.

Why a linear pool. Each spec is one expert's belief about where the target environments lie. A
mixture keeps every belief's mass where its author put it, so an environment any expert finds
plausible stays possible and the steering agent (which only reweights q inside its support) can
still find it; a product (logarithmic pool) would keep only where all experts overlap, and two
experts who disagree would leave nothing. Weighting by `trust` makes the more reliable author's
belief the larger share of the draws, with the same number the reinforce agent already reads as
"how far to trust this belief". The weights are normalised, so only the ratio of trusts matters.

With one spec the pool is that spec: sampling, scores, flags, `expects` and `str()` are the
spec's own (the same random stream, the same numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core import budget
from gmhf.core import distributions as D
from gmhf.core.constraints import Expect
from gmhf.core.seeding import random_stream
from gmhf.core.theta import Theta
from gmhf.dsl.format import format_statement
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from gmhf.core.guidance import Guidance

__all__ = ["MixtureMarginal", "PooledBelief", "PooledExpect", "row_uniforms"]


class PooledExpect(Expect):
    """The pool's condition on generated data: each environment is checked against the `expect`s
    of one spec, drawn with the probability that the environment came from it.

    That probability is w_i q_i(θ) / Σ_j w_j q_j(θ), so the environments kept are distributed as
    Σ_i w_i q_i(θ) P(spec i's `expect`s hold | θ), normalised: every spec's belief about θ *and*
    its data, pooled. A spec's `expect` never cuts what another spec drew, and a spec without
    `expect`s keeps all it draws. The draw needs no random stream: its uniform number is a hash of
    the row's position and of θ's bits (`row_uniforms`), so the same batch is judged the same way
    every time, and a resumed run keeps the same environments.
    """

    def __init__(self, beliefs: Sequence[Guidance], names: Sequence[str], log_weights: Tensor) -> None:
        parts = [f"{name}: " + (", ".join(e.where for e in g.expects) or "none")
                 for name, g in zip(names, beliefs, strict=True)]
        super().__init__(_unused_condition, beliefs[0].space, where="pooled (" + "; ".join(parts) + ")")
        self.beliefs = tuple(beliefs)
        self.log_weights = log_weights

    def component(self, theta: Tensor) -> Tensor:
        """The spec each row is judged by `[n]` (-1 for a row outside every spec's support)."""
        log_joint = torch.stack([b.log_prob(theta) for b in self.beliefs]) + self.log_weights[:, None]
        posterior = torch.softmax(log_joint, 0).nan_to_num(nan=0.0)  # rows outside every support: all 0
        below = posterior.cumsum(0) <= row_uniforms(theta)[None, :]
        chosen = below.sum(0)
        return torch.where(chosen < len(self.beliefs), chosen, torch.full_like(chosen, -1))

    def holds(self, theta: Tensor, observables: dict[str, Tensor]) -> Tensor:
        """Boolean `[n]`: whether each row's data meets the `expect`s of the spec it is judged by."""
        chosen = self.component(theta)
        kept = torch.zeros(theta.shape[0], dtype=torch.bool)
        for index, belief in enumerate(self.beliefs):
            mine = chosen == index
            for expect in belief.expects:
                mine = mine & expect.holds(theta, observables).bool()
            kept |= mine
        return kept

    def __repr__(self) -> str:
        return f"PooledExpect(specs={len(self.beliefs)}, where={self.where!r})"


_PRIME = 2**31 - 1  # a Mersenne prime: products of two residues stay below 2^62, inside int64
_MULTIPLIER = 48_271


def row_uniforms(values: Tensor) -> Tensor:
    """A uniform number in (0, 1) per row `[n]`, from a hash of the row's index and its float64 bits.

    Deterministic for a given batch, and as good as a random draw for continuous θ (the low
    mantissa bits of a draw are effectively random); the index keeps equal rows apart.
    """
    n = values.shape[0]
    bits = values.to(torch.float64).contiguous().view(torch.int64)
    h = torch.arange(n, dtype=torch.int64) % _PRIME
    chunks = [bits & 0x7FFFFFFF, (bits >> 31) & 0x7FFFFFFF, (bits >> 62) & 3]
    for column in range(values.shape[1]):
        for chunk in chunks:
            h = (h * _MULTIPLIER + chunk[:, column]) % _PRIME
    for _ in range(4):  # a few rounds more, so the last column's bits spread over all of h
        h = (h * _MULTIPLIER + 12_345) % _PRIME
    return (h.to(torch.float64) + 0.5) / _PRIME


def _unused_condition(named: dict[str, Tensor]) -> Tensor:
    raise TypeError("PooledExpect decides in `holds`; it has no condition of its own.")


def _canonical_expects(guidance: Guidance) -> list[str]:
    text = {loc.where: format_statement(loc.statement) for loc in guidance.checked.statements}
    return sorted(text.get(e.where, e.where) for e in guidance.expects)


class MixtureMarginal:
    """One factor's pooled marginal before joint constraints: Σ_i w_i m_i(x), a `Distribution1D`."""

    def __init__(self, components: Sequence[D.Distribution1D], log_weights: Tensor) -> None:
        self.components = tuple(components)
        self.log_weights = log_weights
        self.low = min(float(c.low) for c in components)
        self.high = max(float(c.high) for c in components)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """`n` draws `[n]`: multinomial counts per component, each component's draws, shuffled."""
        picks = torch.multinomial(self.log_weights.exp(), max(n, 1), replacement=True, generator=generator)[:n]
        counts = torch.bincount(picks, minlength=len(self.components)).tolist()
        draws = torch.cat([c.sample(k, generator).to(torch.float64) for c, k in zip(self.components, counts,
                                                                                     strict=True)])
        return draws[torch.randperm(n, generator=generator)]

    def log_prob(self, x: Tensor) -> Tensor:
        """logsumexp_i(log w_i + log m_i(x)) `[n]`; `-inf` outside every component's support."""
        return torch.logsumexp(torch.stack([c.log_prob(x) for c in self.components]) + self.log_weights[:, None], 0)

    def __repr__(self) -> str:
        return f"MixtureMarginal(components={len(self.components)}, low={self.low:g}, high={self.high:g})"


class PooledBelief:
    """A linear pool of compiled specs of one domain, usable wherever a `Guidance` is read.

    Args:
        beliefs: compiled specs (`gmhf.load`), all of one domain; at least one.
        names: how each spec is named in messages, `str()` and `explain` (default: its file).

    Members (each documented below): `space`, `domain`, `weights` (∝ trust, summing to 1),
    `trust` (Σ w_i·trust_i: the expected trust of the spec a draw came from), `flagged` (union),
    `invariant` (invariant in every spec), `expects` (the shared ones, or a `PooledExpect`),
    `marginals` (per factor Σ_i w_i m_i before joint constraints), `sample`, `log_prob`, `accepts`.
    `str()` is each spec's canonical text under a comment header with its weight.

    Raises:
        UsageError: no spec, or specs of different domains (naming both).

    Example:
        >>> pool = PooledBelief([gmhf.load("a.guide"), gmhf.load("b.guide")], names=["a.guide", "b.guide"])
        >>> pool.weights, pool.sample(1000, seed=0).values.shape
    """

    def __init__(self, beliefs: Sequence[Guidance], *, names: Sequence[str] | None = None) -> None:
        if isinstance(beliefs, str | bytes) or not isinstance(beliefs, Sequence) or not beliefs:
            raise UsageError(f"`beliefs` must be a non-empty sequence of compiled specs, got {beliefs!r}.")
        if names is None:
            names = [next(iter(g.checked.sources), f"spec {i + 1}") for i, g in enumerate(beliefs)]
        if len(names) != len(beliefs):
            raise UsageError(f"`names` must name each of the {len(beliefs)} specs, got {len(names)} names.")
        first = beliefs[0]
        for name, belief in zip(names[1:], beliefs[1:], strict=True):
            if belief.checked.domain != first.checked.domain or belief.space.names != first.space.names:
                raise UsageError(f"the specs are about different domains: {names[0]} about {first.checked.domain!r}, "
                                 f"{name} about {belief.checked.domain!r}; only specs of one domain can be pooled.")
        self.beliefs: tuple[Guidance, ...] = tuple(beliefs)
        self.names: tuple[str, ...] = tuple(names)
        self.space = first.space
        self.domain = first.domain
        total = sum(b.trust for b in beliefs)
        self.weights: tuple[float, ...] = tuple(b.trust / total for b in beliefs)
        self._log_weights = torch.tensor([math.log(w) for w in self.weights], dtype=torch.float64)
        self.trust = first.trust if len(beliefs) == 1 else sum(w * b.trust for w, b in
                                                               zip(self.weights, beliefs, strict=True))
        self._expects: list[Expect] = self._pool_expects()
        #: Each factor's marginal before joint constraints, pooled (the spec's own for one spec).
        self.marginals: dict[str, D.Distribution1D] = {
            name: first.marginals[name] if len(beliefs) == 1
            else MixtureMarginal([b.marginals[name] for b in beliefs], self._log_weights)
            for name in self.space.names}

    def _pool_expects(self) -> list[Expect]:
        texts = [_canonical_expects(b) for b in self.beliefs]
        if all(t == texts[0] for t in texts):  # shared by every spec (or none has any): exactly the spec's own
            return list(self.beliefs[0].expects)
        return [PooledExpect(self.beliefs, self.names, self._log_weights)]

    # ------------------------------------------------------------------ flags
    @property
    def flagged(self) -> tuple[str, ...]:
        """Factors some spec shifts or gives a prior (the union), in the domain's order."""
        return tuple(n for n in self.space.names if any(n in b.flagged for b in self.beliefs))

    @property
    def invariant(self) -> tuple[str, ...]:
        """Factors every spec declares invariant: one spec's belief that a factor moves is kept."""
        return tuple(n for n in self.space.names if all(n in b.invariant for b in self.beliefs))

    @property
    def expects(self) -> list[Expect]:
        """The spec's `expect`s when every spec has the same ones (by canonical text); otherwise
        one `PooledExpect`: each environment meets the `expect`s of the spec it likely came from."""
        return list(self._expects)

    # ------------------------------------------------------------------ sampling and scoring
    def sample(self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None) -> Theta:
        """Draw `n` environments from the mixture, as one batch.

        How many come from each spec is one multinomial draw with the pool's weights; each spec
        then draws its share, and the rows are shuffled, so a row's position says nothing about
        which spec drew it. Every step uses `generator` (or a stream from `seed`) only. With one
        spec it is that spec's `sample`, draw for draw.

        Raises:
            UsageError: a bad `n`, or a result over 4 GiB.
        """
        if len(self.beliefs) == 1:
            return self.beliefs[0].sample(n, seed=seed, generator=generator)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise UsageError(f"`n` must be a non-negative int, got {n!r}.")
        budget.check_result_size(n, len(self.space))
        if generator is None:
            generator = random_stream(seed)
        counts = self.component_counts(n, generator)
        parts = [b.sample(int(c), generator=generator) for b, c in zip(self.beliefs, counts.tolist(), strict=True)]
        values = torch.cat([p.values for p in parts])
        values = values[torch.randperm(n, generator=generator)]
        return Theta(values, parts[0].names, parts[0].levels, parts[0].integers)

    def component_counts(self, n: int, generator: torch.Generator) -> Tensor:
        """How many of `n` draws each spec gives: Multinomial(n, weights) `[specs]`, drawn with `generator`."""
        if n == 0:
            return torch.zeros(len(self.beliefs), dtype=torch.long)
        picks = torch.multinomial(self._log_weights.exp(), n, replacement=True, generator=generator)
        return torch.bincount(picks, minlength=len(self.beliefs))

    def component_log_probs(self, theta: Theta | Tensor | dict[str, Any]) -> Tensor:
        """log q_i(θ) of every spec `[specs, n]`."""
        return torch.stack([b.log_prob(theta) for b in self.beliefs])

    def log_prob(self, theta: Theta | Tensor | dict[str, Any]) -> Tensor:
        """Log density `[n]` of the mixture: logsumexp_i(log w_i + log q_i(θ)); `-inf` outside every support."""
        if len(self.beliefs) == 1:
            return self.beliefs[0].log_prob(theta)
        return torch.logsumexp(self.component_log_probs(theta) + self._log_weights[:, None], 0)

    def accepts(self, theta: Theta | Tensor | dict[str, Any]) -> Tensor:
        """Boolean `[n]`: some spec accepts the row (its support and its hard constraints)."""
        kept = self.beliefs[0].accepts(theta)
        for belief in self.beliefs[1:]:
            kept = kept | belief.accepts(theta)
        return kept

    # ------------------------------------------------------------------ explaining
    def explain(self) -> dict[str, Any]:
        """Each spec's weight and constraints (`weights`), and per factor every spec's believed target.

        The pooled marginals themselves have no closed form; `gmhf explain` estimates them from
        draws of the mixture.
        """
        each = [b.explain() for b in self.beliefs]
        weights = [{"spec": name, "trust": b.trust, "weight": w, "acceptance_rate": e["acceptance_rate"],
                  "joint": e["joint"], "truncate": e["truncate"], "prefer": e["prefer"], "expect": e["expect"]}
                 for name, b, w, e in zip(self.names, self.beliefs, self.weights, each, strict=True)]
        factors = []
        for i, row in enumerate(each[0]["factors"]):
            factors.append({
                "factor": row["factor"], "kind": row["kind"], "bounds": row["bounds"], "unit": row["unit"],
                "source": row["source"], "targets": [e["factors"][i]["target"] for e in each],
                "flagged": row["factor"] in self.flagged, "invariant": row["factor"] in self.invariant,
            })
        pooled_expect = [{"statement": "each environment meets the `expect`s of the spec it is drawn to "
                                       "(with the probability that it came from that spec)",
                          "where": e.where} for e in self._expects if isinstance(e, PooledExpect)]
        return {"domain": self.beliefs[0].checked.domain, "trust": self.trust, "pooling": "linear",
                "weights": weights, "factors": factors, "expect": pooled_expect or weights[0]["expect"]}

    def __repr__(self) -> str:
        weights = ", ".join(f"{w:.3g}" for w in self.weights)
        return (f"PooledBelief(domain={self.beliefs[0].checked.domain!r}, specs={len(self.beliefs)}, "
                f"weights=({weights}), trust={self.trust:.3g})")

    def __str__(self) -> str:
        if len(self.beliefs) == 1:
            return str(self.beliefs[0])
        blocks = [f"# pooled belief: {len(self.beliefs)} specs, linear pooling, weights proportional to trust\n"]
        for i, (name, belief, weight) in enumerate(zip(self.names, self.beliefs, self.weights, strict=True)):
            text = str(belief)
            blocks.append(f"# spec {i + 1} of {len(self.beliefs)}: {name}, trust {belief.trust:g}, "
                          f"weight {weight:.6g}\n{text}{'' if text.endswith(chr(10)) else chr(10)}")
        return "\n".join(blocks)
