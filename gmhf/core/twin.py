"""The cNODE twin of a domain's simulator, fitted on simulations of the domain's source.

The paper's generative digital twin: training data exists only where the source distribution
puts it, so the twin is fitted on source environments and then generates whatever θ it is asked
for, extrapolating where a target lies beyond the source. A domain opts in by naming its
`state_factors` (the initial state) and, for periodically forced systems, its `forcing_frequency`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gmhf.core.cnode import ConditionalNODE, FitReport
from gmhf.core.environments import draw
from gmhf.core.generator import SimulatorGenerator
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from gmhf.core.domain import Domain
    from gmhf.core.sources import ThetaSource

__all__ = ["fit_twin", "twin_of"]


def twin_of(domain: Domain, t: torch.Tensor, *, seed: int = 0, hidden: int = 64, depth: int = 2) -> ConditionalNODE:
    """An unfitted twin shaped for `domain`, on the output grid `t`."""
    if not domain.state_factors:
        raise UsageError(f"domain {domain.name!r} declares no `state_factors`, so it has no cNODE twin; "
                         f"use the simulator (--generator sim).")
    return ConditionalNODE(domain.space, domain.state_factors, t=t, forcing_frequency=domain.forcing_frequency,
                           hidden=hidden, depth=depth, seed=seed)


def fit_twin(domain: Domain, source: ThetaSource, *, samples: int, steps: int, seed: int,
             progress: bool = False) -> tuple[ConditionalNODE, FitReport]:
    """Simulate `samples` environments of `source` and fit a twin to their trajectories.

    Diverged simulations are left out (`draw` keeps only `ok` rows). Everything random (θ, the
    fit's split, batches and windows, the initial weights) follows from `seed`.
    """
    rng = torch.Generator().manual_seed(seed)
    environments = draw(source, SimulatorGenerator(domain), domain, samples, rng=rng)
    data = environments.data
    if "t" not in data:
        raise UsageError(f"domain {domain.name!r} returns no time grid `t`, so no cNODE twin can be fitted.")
    twin = twin_of(domain, data["t"], seed=seed)
    trajectories = torch.stack([data[name] for name in twin.components], -1)  # [n, t, d]
    report = twin.fit(trajectories, environments.theta.values, steps=steps, batch_size=64, lr=5e-3, window=10,
                      validate_every=25, patience=8, generator=rng, progress=progress)
    return twin, report
