"""θ sources: where the environments of a training run come from.

A task pool does not care whether θ is drawn from the spec's belief q_H (a `Guidance`), from a
distribution the steering agent refined with expert answers, or from a pool of several specs: it
asks a `ThetaSource` for a batch. Anything with these three members is one; nothing has to
subclass it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from gmhf.core.factors import FactorSpace
    from gmhf.core.theta import Theta

__all__ = ["ThetaSource"]


@runtime_checkable
class ThetaSource(Protocol):
    """Draws batches of environments θ over a domain's factor space, and scores them.

    Attributes:
        space: the factor space; θ columns are in `space.names` order.

    `sample(n, *, generator)` returns a `Theta` `[n, k]` drawn with the given torch.Generator
    only (never torch's global stream), so a run that checkpoints the generator's state resumes
    the same draws. `log_prob(theta)` is the log density `[n]`, `-inf` where the source puts no
    mass.
    """

    space: FactorSpace

    def sample(self, n: int, *, generator: torch.Generator) -> Theta:
        """`n` environments drawn with `generator`."""
        ...

    def log_prob(self, theta: Theta | Tensor) -> Tensor:
        """Log density `[n]` of each row of θ."""
        ...
