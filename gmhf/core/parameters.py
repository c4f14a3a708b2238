"""The parameter ranges over which the built-in distributions sample exactly (no torch: `gmhf check` uses them).

Each `*_problem(args)` returns the spec checker's message for parameters outside the range, or None.
docs/language.md ("Distributions and their parameter ranges") states the same ranges for spec authors.
"""

from __future__ import annotations

import math

__all__ = ["BETA_SHAPES", "beta_problem", "location_scale_problem", "require"]

#: beta(a, b) is sampled exactly (inverse incomplete beta) for shapes in this closed range. Below 0.01 a
#: shape puts a visible share of the mass below the smallest float64 (beta(0.001, 1): 47 % below 5e-324),
#: which no float64 sampler can draw, so the range stops there.
BETA_SHAPES = (1e-2, 1e6)


def location_scale_problem(args: tuple[float, ...]) -> str | None:
    """normal(mu, sigma) and lognormal(mu, sigma): mu finite, sigma > 0 and finite."""
    mu, sigma = args[0], args[1]
    if not sigma > 0:
        return f"`sigma` must be > 0, got {sigma:g}"
    if not math.isfinite(sigma):
        return f"`sigma` must be finite, got {sigma:g}"
    if not math.isfinite(mu):
        return f"`mu` must be finite, got {mu:g}"
    return None


def beta_problem(args: tuple[float, ...]) -> str | None:
    """beta(a, b): both shapes within `BETA_SHAPES`."""
    low, high = BETA_SHAPES
    for name, value in zip(("a", "b"), args, strict=False):
        if not low <= value <= high:
            return f"`{name}` must be in [{low:g}, {high:g}] (where beta samples exactly), got {value:g}"
    return None


def require(kind: str, problem: str | None) -> None:
    """Raise `ValueError` naming `kind` when `problem` is a message (a Python caller skipped the checker)."""
    if problem is not None:
        raise ValueError(f"bad parameters for `{kind}`: {problem}.")
