"""Random streams: every draw in gmhf comes from an explicit torch.Generator, never torch's global one."""

from __future__ import annotations

import torch

from gmhf.errors import UsageError

__all__ = ["random_stream", "spawn_seed"]


def random_stream(seed: int | None = None) -> torch.Generator:
    """A generator seeded with `seed`, or from the operating system's entropy when None.

    Seeding from entropy (`Generator.seed`) leaves torch's global stream untouched, so a user's own
    `torch.manual_seed` sequence stays reproducible around an unseeded gmhf call.
    """
    generator = torch.Generator()
    if seed is None:
        generator.seed()
        return generator
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"`seed` must be an int or None, got {seed!r}.")
    return generator.manual_seed(seed)


def spawn_seed(generator: torch.Generator) -> int:
    """A seed for a child stream, drawn from `generator` (so the child is reproducible from the parent)."""
    return int(torch.randint(0, 2**62, (), generator=generator))
