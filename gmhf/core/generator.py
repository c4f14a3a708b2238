"""Generators: θ batch in, data batch out — the domain's simulator or a learned twin of it.

The steerer and the meta-learner ask for data through one method, `generate`, so a run can swap
the exact simulator for the conditional neural ODE (`ConditionalNODE`, in `gmhf.core.cnode`)
without knowing which it has. For dynamical domains the data is a dict: `"t"` `[t]`, one `[n, t]`
tensor per state component (Duffing: `"x"`, `"v"`) and `"ok"` `[n]`, False where a trajectory
diverged or turned non-finite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from gmhf.core.cnode import ConditionalNODE, FitReport

if TYPE_CHECKING:
    from gmhf.core.domain import Domain

__all__ = ["ConditionalNODE", "FitReport", "Generator", "SimulatorGenerator"]


@runtime_checkable
class Generator(Protocol):
    """Anything that turns a batch of environments into a batch of data.

    `generate(theta, *, generator=None)` takes θ `[n, k]` (columns in the domain's factor order)
    and returns a dict of tensors, at least `"ok"` `[n]`, and for dynamical domains `"t"` `[t]` and
    each state component `[n, t]`. `generator` feeds whatever randomness the data has (noise);
    deterministic generators ignore it.
    """

    def generate(self, theta: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Data for the batch θ `[n, k]`."""
        ...


class SimulatorGenerator:
    """The domain's own simulator behind the `Generator` protocol.

    Args:
        domain: the domain whose `simulate` is called.
        **simulate_options: passed to every `simulate` call (Duffing: `points`, `horizon`, `method`).

    A simulator that returns no `"ok"` gets one: True where every per-environment value is finite
    (entries in the domain's `shared`, such as the time grid, are not per-environment).
    """

    def __init__(self, domain: Domain, **simulate_options: Any) -> None:
        self.domain = domain
        self.options = dict(simulate_options)

    def generate(self, theta: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """`domain.simulate(theta, generator=generator, **simulate_options)`, as a dict with `"ok"`."""
        k = len(self.domain.space)
        if theta.ndim != 2 or theta.shape[1] != k:
            raise ValueError(f"`theta` must have shape [n, {k}], got {list(theta.shape)}.")
        data = self.domain.simulate(theta, generator=generator, **self.options)
        if not isinstance(data, dict):
            raise TypeError(f"Domain {self.domain.name!r}: `simulate` must return a dict of tensors to be "
                            f"used as a generator, got {type(data).__name__}.")
        if "ok" not in data:
            shared = getattr(self.domain, "shared", ())
            data = {**data, "ok": _finite_rows({k: v for k, v in data.items() if k not in shared}, theta.shape[0])}
        return data

    def __repr__(self) -> str:
        options = "".join(f", {key}={value!r}" for key, value in self.options.items())
        return f"SimulatorGenerator(domain={self.domain.name!r}{options})"


def _finite_rows(data: dict[str, Tensor], n: int) -> Tensor:
    ok = torch.ones(n, dtype=torch.bool)
    for value in data.values():
        if value.ndim >= 1 and value.shape[0] == n and value.is_floating_point():
            ok &= torch.isfinite(value.reshape(n, -1)).all(-1)
    return ok
