"""Base class for domains: a factor space, a simulator, and what `expect` can observe."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch

    from gmhf.core.factors import FactorSpace

__all__ = ["Domain"]


class Domain(abc.ABC):
    """Base class for domains; a plugin registers an instance through `gmhf_domains`.

    Subclasses set `name`, `description` and `space` (a class attribute, or a cached property so
    that merely loading the plugin stays cheap), and implement `simulate` and `observe`. Keep torch
    imports inside methods: domains are loaded by `gmhf check`, which must stay torch-free.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: Entries of generated data shared by all environments (such as the time grid `t`), not per row.
    shared: ClassVar[tuple[str, ...]] = ()
    space: FactorSpace

    @abc.abstractmethod
    def simulate(self, theta: torch.Tensor, *, generator: torch.Generator | None = None, **options: Any) -> Any:
        """Generate data for a batch of environments θ `[n, k]` (columns in `space.names` order)."""

    @abc.abstractmethod
    def observe(self, theta: torch.Tensor, data: Any) -> dict[str, torch.Tensor]:
        """The observables of generated data, each `[n]` or `[n, t]`, for `expect` statements."""

    def examples(self, theta: torch.Tensor, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Input/target pairs `[n, P, ·]` of each environment, from which few-shot tasks are cut.

        Targets are real for regression, integer class labels `[n, P]` for classification. A domain
        that does not override this cannot be meta-trained on.
        """
        from gmhf.errors import UsageError

        raise UsageError(f"domain {self.name!r} does not turn its data into examples, so it cannot be "
                         f"meta-trained on; its plugin must define `examples(theta, data)`.")

    def __repr__(self) -> str:
        return f"<Domain {self.name!r} factors={len(self.space)}>"
