"""What the steering agents, task pools and `explain` ask of a belief q_H, whoever built it.

A compiled spec (`Guidance`) is one belief; several specs pooled into one (`PooledBelief`) are
another. Code that only draws, scores and reads the flags of a belief takes a `Belief`, so either
can be passed. Anything with these members is one; nothing has to subclass it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import torch
    from torch import Tensor

    from gmhf.core.constraints import Expect
    from gmhf.core.distributions import Distribution1D
    from gmhf.core.domain import Domain
    from gmhf.core.factors import FactorSpace
    from gmhf.core.theta import Theta

__all__ = ["Belief"]


@runtime_checkable
class Belief(Protocol):
    """An expert's believed target distribution q_H(θ) over one domain, with its flags and trust.

    Attributes:
        space: the domain's factor space; θ columns are in `space.names` order.
        domain: the domain plugin (simulator, observables, examples).
        trust: how reliable the belief's author is, in (0, 1].

    `flagged` names the factors the steering agent refines, `invariant` those it never moves,
    `expects` the conditions generated data must meet, `marginals` each factor's believed
    distribution before joint constraints. `sample` draws with the given generator
    (or a seed) only; `log_prob` is `-inf` where q_H puts no mass; `accepts` is the support and
    the hard constraints. `str()` is text a run's config can record.
    """

    space: FactorSpace
    domain: Domain
    trust: float

    @property
    def flagged(self) -> tuple[str, ...]:
        """Factors the steering agent refines."""
        ...

    @property
    def invariant(self) -> tuple[str, ...]:
        """Factors never moved."""
        ...

    @property
    def expects(self) -> Sequence[Expect]:
        """Conditions on generated data, enforced by task pools."""
        ...

    @property
    def marginals(self) -> Mapping[str, Distribution1D]:
        """Each factor's believed distribution before joint constraints."""
        ...

    def sample(self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None) -> Theta:
        """`n` environments, drawn with `generator` (or from `seed`)."""
        ...

    def log_prob(self, theta: Theta | Tensor | dict[str, Any]) -> Tensor:
        """Log density `[n]`."""
        ...

    def accepts(self, theta: Theta | Tensor | dict[str, Any]) -> Tensor:
        """Boolean `[n]`: inside the support and every hard constraint."""
        ...
