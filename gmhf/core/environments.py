"""Environments with their generated data, kept only where the data meets the spec's `expect`s.

`expect` speaks about data, not θ, so it can only be enforced after generation: draw θ from the
Guidance, generate, drop the environments whose data violate an `expect` (or whose simulation
diverged), and draw again until enough remain. Every rejection is counted per statement, so a
user sees how much an expectation costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core.theta import Theta
from gmhf.errors import GmhfError, UsageError

if TYPE_CHECKING:
    from gmhf.core.guidance import Guidance

__all__ = ["Environments", "generate"]

MAX_ROUNDS = 100
#: Generated environments after which an `expect` that accepted none of them is given up on.
GIVE_UP_AFTER = 1000
#: Most environments generated in one round.
ROUND_LIMIT = 4096


@dataclass
class Environments:
    """θ and data of accepted environments, with rejection counts.

    Attributes:
        theta: the accepted environments.
        data: the generator's output for them (tensors with the batch first, or shared such as `t`).
        checked: how many generated environments were examined.
        rejected: per `expect` (by `path:line`), how many it rejected.
        diverged: how many generated trajectories failed (non-finite or blew up).
    """

    theta: Theta
    data: dict[str, Tensor]
    checked: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    diverged: int = 0

    def report(self) -> dict[str, Any]:
        """Counts as plain data, for `gmhf sample --json`."""
        return {"checked": self.checked, "diverged": self.diverged,
                "rejected": [{"where": where, "count": count} for where, count in self.rejected.items()]}


def _select(data: dict[str, Tensor], keep: Tensor, shared: tuple[str, ...]) -> dict[str, Tensor]:
    return {k: v if k in shared else v[keep] for k, v in data.items()}


def generate(guidance: Guidance, n: int, *, seed: int | None = None, **simulate_options: Any) -> Environments:
    """Draw `n` environments whose generated data satisfy every `expect` of the spec.

    Raises:
        GmhfError: when fewer than `n` survive after many rounds (the expectations contradict the
            spec's other beliefs).
    """
    if not isinstance(n, int) or n < 0:
        raise UsageError(f"`n` must be a non-negative int, got {n!r}.")
    generator = torch.Generator().manual_seed(seed if seed is not None else int(torch.seed() % 2**63))
    expects = guidance.expects
    shared = getattr(guidance.domain, "shared", ())
    kept_theta: list[Tensor] = []
    kept_data: list[dict[str, Tensor]] = []
    result = Environments(theta=guidance.sample(0), data={}, rejected={e.where: 0 for e in expects})
    have = 0
    for _ in range(MAX_ROUNDS):
        if have >= n or (have == 0 and result.checked >= GIVE_UP_AFTER):
            break
        rate = max(have / result.checked, 0.01) if result.checked else 1.0  # acceptance so far
        want = min(ROUND_LIMIT, max(16, int((n - have) / rate * 1.2)))
        theta = guidance.sample(want, generator=generator).values
        data = guidance.domain.simulate(theta, generator=generator, **simulate_options)
        keep = data.get("ok", torch.ones(want, dtype=torch.bool)).clone()
        result.diverged += int((~keep).sum())
        observed = guidance.domain.observe(theta, data)
        for expect in expects:
            holds = expect.holds(theta, observed)
            result.rejected[expect.where] += int((keep & ~holds).sum())
            keep &= holds
        result.checked += want
        kept_theta.append(theta[keep])
        kept_data.append(_select(data, keep, shared))
        have += int(keep.sum())
    if have < n:
        raise GmhfError(f"only {have} of {n} environments met the spec's `expect`s after {result.checked} "
                        f"generated ({result.report()['rejected']}); relax them or the spec's shifts.")
    values = torch.cat(kept_theta)[:n]
    result.theta = Theta(values, guidance.space.names, result.theta.levels, result.theta.integers)
    result.data = {k: v if k in shared else torch.cat([d[k] for d in kept_data])[:n]
                   for k, v in kept_data[0].items()}
    return result
