"""Random streams: every draw in gmhf comes from an explicit torch.Generator, never torch's global one."""

from __future__ import annotations

import hashlib

import torch

from gmhf.errors import UsageError

__all__ = ["named_seed", "named_stream", "random_stream", "spawn_seed", "torch_seed"]


def random_stream(seed: int | None = None) -> torch.Generator:
    """A generator seeded with `seed`, or from the operating system's entropy when None.

    Any int is a seed, negative and beyond 64 bits included: it is hashed (`torch_seed`) to the
    63-bit seed torch takes, so seeds that agree modulo 2^32 or 2^64 still give distinct streams.
    Seeding from entropy (`Generator.seed`) leaves torch's global stream untouched, so a user's own
    `torch.manual_seed` sequence stays reproducible around an unseeded gmhf call.
    """
    generator = torch.Generator()
    if seed is None:
        generator.seed()
        return generator
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"`seed` must be an int or None, got {seed!r}.")
    return generator.manual_seed(torch_seed(seed))


def torch_seed(seed: int) -> int:
    """The 63-bit torch seed of an arbitrary int: the first 8 bytes of SHA-256 of its two's-complement bytes."""
    data = seed.to_bytes(seed.bit_length() // 8 + 1, "little", signed=True)
    return int.from_bytes(hashlib.sha256(b"gmhf-seed:" + data).digest()[:8], "little") & (2**63 - 1)


def spawn_seed(generator: torch.Generator) -> int:
    """A seed for a child stream, drawn from `generator` (so the child is reproducible from the parent)."""
    return int(torch.randint(0, 2**62, (), generator=generator))


def named_seed(*parts: object) -> int:
    """A 63-bit seed named by its parts (a run's seed, a purpose, a round, a question id …).

    The same parts always give the same seed and different parts unrelated ones, so a stream can be
    rebuilt from its name alone, whatever ran before it (a resumed run replays rounds this way).
    """
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def named_stream(*parts: object) -> torch.Generator:
    """A generator seeded with `named_seed(*parts)`."""
    return torch.Generator().manual_seed(named_seed(*parts))
