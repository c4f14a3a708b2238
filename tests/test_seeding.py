"""Random streams: gmhf draws from its own generators and never moves torch's global one."""

from __future__ import annotations

import pytest
import torch

import gmhf
from gmhf.core.cnode import ConditionalNODE
from gmhf.core.seeding import random_stream
from gmhf.domains.duffing import Duffing

SPEC = "domain duffing\n"


@pytest.mark.parametrize("seed", [None, 3])
def test_sampling_leaves_the_global_stream_alone(seed: int | None) -> None:
    """A user's `torch.manual_seed` sequence is the same with or without a `Guidance.sample` in between."""
    guidance = gmhf.load(SPEC)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    guidance.sample(5, seed=seed)
    assert torch.equal(torch.rand(3), expected)


def test_unseeded_samples_differ_and_seeded_ones_repeat() -> None:
    """Without a seed each call draws fresh entropy; with one the draw is reproducible."""
    guidance = gmhf.load(SPEC)
    assert not torch.equal(guidance.sample(5).values, guidance.sample(5).values)
    assert torch.equal(guidance.sample(5, seed=2).values, guidance.sample(5, seed=2).values)


def test_cnode_fit_without_a_generator_leaves_the_global_stream_alone() -> None:
    """The fit's default stream is seeded from entropy, not drawn from torch's global generator."""
    theta = gmhf.load(SPEC).sample(8, seed=0).values
    data = Duffing().simulate(theta, points=10, horizon=(0.0, 1.0))
    model = ConditionalNODE(Duffing().space, Duffing.state_factors, t=data["t"], forcing_frequency="omega",
                            hidden=4, seed=0)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    model.fit(torch.stack((data["x"], data["v"]), -1), theta, steps=2, batch_size=4, window=5, validate_every=1,
              progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_random_stream_refuses_a_non_int_seed() -> None:
    """A float seed is a mistake, not a seed."""
    with pytest.raises(gmhf.UsageError, match=r"`seed` must be an int or None, got 1.5."):
        random_stream(1.5)  # type: ignore[arg-type]
