"""Environments with their generated data, kept only where the data meets the spec's `expect`s.

`expect` speaks about data, not θ, so it can only be enforced after generation: draw θ from a
source, generate its data, drop the environments whose data violate an `expect` (or whose
generation diverged: `ok` False), and draw again until enough remain. Every rejection is counted
per statement, so a user sees how much an expectation costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core.generator import SimulatorGenerator
from gmhf.core.seeding import random_stream
from gmhf.core.theta import Theta
from gmhf.errors import GmhfError, UsageError

if TYPE_CHECKING:
    from gmhf.core.constraints import Expect
    from gmhf.core.domain import Domain
    from gmhf.core.generator import Generator
    from gmhf.core.guidance import Guidance
    from gmhf.core.sources import ThetaSource

__all__ = ["Environments", "check_expects", "draw", "draw_from_spec"]

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
        diverged: how many generated environments failed (`ok` False: non-finite or blew up).
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


def draw(source: ThetaSource, generator: Generator, domain: Domain, n: int, *, rng: torch.Generator,
         expects: Sequence[Expect] = ()) -> Environments:
    """Draw `n` environments from `source` whose data from `generator` meet every `expect`.

    Args:
        source: where θ comes from (a Guidance, a steered distribution, …).
        generator: θ -> data (the domain's simulator, or a twin); its `ok` marks diverged rows.
        domain: whose observables the `expect`s read and which data entries are shared.
        n: environments wanted.
        rng: the only random stream used (θ draws and the generator's noise).
        expects: the spec's `expect` constraints.

    Raises:
        GmhfError: when fewer than `n` survive after many rounds (the expectations contradict the
            spec's other beliefs).
    """
    # Long: the rejection loop's bookkeeping (rates, rejections, kept rows) stays together.
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UsageError(f"`n` must be a non-negative int, got {n!r}.")
    shared = domain.shared
    kept_theta: list[Tensor] = []
    kept_data: list[dict[str, Tensor]] = []
    first = source.sample(0, generator=rng)
    result = Environments(theta=first, data={}, rejected={e.where: 0 for e in expects})
    have = 0
    for _ in range(MAX_ROUNDS):
        if have >= n or (have == 0 and result.checked >= GIVE_UP_AFTER):
            break
        rate = max(have / result.checked, 0.01) if result.checked else 1.0  # acceptance so far
        want = min(ROUND_LIMIT, max(16, int((n - have) / rate * 1.2)))
        theta = source.sample(want, generator=rng).values
        data = generator.generate(theta, generator=rng)
        keep = data["ok"].clone()
        result.diverged += int((~keep).sum())
        if expects:
            observed = domain.observe(theta, data)
            for expect in expects:
                holds = expect.holds(theta, observed)
                result.rejected[expect.where] += int((keep & ~holds).sum())
                keep &= holds
        result.checked += want
        kept_theta.append(theta[keep])
        kept_data.append(_select(data, keep, shared))
        have += int(keep.sum())
    if have < n and result.checked >= MAX_ROUNDS * ROUND_LIMIT and have >= result.checked // 2:
        raise UsageError(f"{n:,} environments are more than one draw generates ({MAX_ROUNDS * ROUND_LIMIT:,} at "
                         f"most; {have:,} were kept); ask for fewer (a pool of a few thousand is plenty).")
    if have < n:
        counts = [f"the `expect` at {where} rejected {count:,}" for where, count in result.rejected.items()]
        if result.diverged:
            counts.append(f"{result.diverged:,} diverged")
        raise GmhfError(f"only {have:,} of {n:,} environments met the spec's `expect`s after {result.checked:,} "
                        f"generated ({'; '.join(counts) or 'none rejected'}); relax them or the spec's shifts.")
    values = torch.cat(kept_theta)[:n] if kept_theta else first.values
    result.theta = Theta(values, first.names, first.levels, first.integers)
    result.data = {k: v if k in shared else torch.cat([d[k] for d in kept_data])[:n]
                   for k, v in kept_data[0].items()} if kept_data else {}
    return result


def check_expects(guidance: Guidance, theta: Theta, *, seed: int | None = None,
                  **simulate_options: Any) -> Environments:
    """Generate data for the environments `theta` and count, per `expect`, those it would reject.

    Nothing is replaced (see `draw_from_spec` for that): `gmhf sample` reports these counts beside
    draws from the belief alone.
    """
    result = Environments(theta=theta, data={}, checked=len(theta.values),
                          rejected={e.where: 0 for e in guidance.expects})
    if not result.checked:
        return result
    result.data = SimulatorGenerator(guidance.domain, **simulate_options).generate(
        theta.values, generator=random_stream(seed))
    keep = result.data["ok"].clone()
    result.diverged = int((~keep).sum())
    observed = guidance.domain.observe(theta.values, result.data)
    for expect in guidance.expects:
        holds = expect.holds(theta.values, observed)
        result.rejected[expect.where] += int((keep & ~holds).sum())
        keep &= holds
    return result


def draw_from_spec(guidance: Guidance, n: int, *, seed: int | None = None,
                   **simulate_options: Any) -> Environments:
    """`n` environments of a spec: θ from its belief, data from its domain's simulator, its `expect`s kept."""
    return draw(guidance, SimulatorGenerator(guidance.domain, **simulate_options), guidance.domain, n,
                rng=random_stream(seed), expects=guidance.expects)
