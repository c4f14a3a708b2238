"""What every contract check shares: the error it raises, the collector of broken rules, tensor tests.

`contracts.py` (the public checks) and the rule modules it calls (`_statement_contract.py`,
`_domain_contract.py`) all import from here, so the rule modules never import `contracts.py` back.
`ContractError` is re-exported by `gmhf.testing.contracts`, where users import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from gmhf.core.distributions import DTYPE

__all__ = ["ContractError", "Violations", "is_vector", "same"]


class ContractError(AssertionError):
    """A plugin broke one or more contracts; `violations` lists each, with an example."""

    def __init__(self, subject: str, violations: Sequence[str]) -> None:
        self.subject = subject
        self.violations = tuple(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"{subject} breaks {len(self.violations)} contract(s):\n{lines}")


class Violations:
    """Collects broken rules; `done()` raises them all at once."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.found: list[str] = []

    def require(self, ok: bool, message: str | Callable[[], str]) -> bool:
        """Record `message` unless `ok`; returns `ok` so later rules can depend on it."""
        if not ok:
            self.found.append(message() if callable(message) else message)
        return ok

    def done(self) -> None:
        """Raise the collected violations, if any."""
        if self.found:
            raise ContractError(self.subject, self.found)


def same(a: Tensor, b: Tensor, *, rtol: float = 0.0, atol: float = 0.0) -> bool:
    """Equal shapes and values (NaN equal to NaN, infinities to themselves)."""
    return a.shape == b.shape and bool(torch.isclose(a.to(DTYPE), b.to(DTYPE), rtol=rtol, atol=atol,
                                                     equal_nan=True).all())


def is_vector(value: Any, n: int) -> bool:
    """Whether `value` is a tensor of shape `[n]`: one result per row of a batch."""
    return isinstance(value, Tensor) and tuple(value.shape) == (n,)
