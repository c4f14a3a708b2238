"""bench/dsl.py's measure 1: parse and check sinusoid specs of 1,000 and 10,000 statements."""

from __future__ import annotations

import random
from collections.abc import Callable

from dsl_measures import SEED, Goal, Measure, rate, timings  # bench/dsl_measures.py (run as a script)

from gmhf.api import check_text
from gmhf.dsl.parse import parse
from gmhf.plugins.manager import plugin_host

SINUSOID_HEADER = (
    "domain sinusoid",
    "invariant phase",
    "shift amplitude in 1 .. 8",
    "shift frequency by *1.25",
    "prior noise between 0.01 and 0.2 with 90%",
    "trust 0.9",
)
#: Realistic statements, all valid together (a factor is shifted only in the header, once).
SINUSOID_STATEMENTS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"require amplitude < {r.randint(2, 6)} * frequency + {r.randint(3, 9)}",
    lambda r: f"prefer noise < {r.choice((0.05, 0.1, 0.15))} weight {r.choice((0.5, 1, 2))}",
    lambda r: f"expect max(abs(y)) < {r.randint(12, 40)}",
    lambda r: f"require amplitude + 2 * noise < {r.randint(9, 12)}   # headroom for the sensor",
    lambda r: f"prefer amplitude > {r.randint(1, 3)} and frequency < {r.choice((1.3, 1.4))} "
              f"weight -{r.choice((0.2, 0.5))}",
    lambda r: f"require noise < {r.choice((0.4, 0.5, 0.6))}",
    lambda r: f"expect min(y) > -{r.randint(12, 40)}",
)


def sinusoid_spec(statements: int) -> str:
    """A valid sinusoid spec of exactly `statements` statements, the same for the same size."""
    rng = random.Random(SEED)
    body = [SINUSOID_STATEMENTS[i % len(SINUSOID_STATEMENTS)](rng)
            for i in range(statements - len(SINUSOID_HEADER))]
    return "\n".join([*SINUSOID_HEADER, *body]) + "\n"


def language_measures() -> list[Measure]:
    """Parse+check at 1,000 and 10,000 statements (the ratio exposes superlinear work), and parse alone."""
    small, big = sinusoid_spec(1_000), sinusoid_spec(10_000)
    extensions = plugin_host().registry.extensions()
    unit = "statements/s"
    scaling = rate("parse+check, 1,000 statements (scaling reference)", 1_000, unit, None,
                   timings(lambda: check_text(small, path="bench-1k.guide"), repeats=5))
    # The 1,000-statement runs warmed the parser and the registry: no 10,000-statement warm-up.
    checked = rate("parse+check, 10,000 statements", 10_000, unit, Goal(">=", 30_000),
                   timings(lambda: check_text(big, path="bench-10k.guide"), warmup=False))
    parsed = rate("parse only, 10,000 statements", 10_000, unit, None,
                  timings(lambda: parse(big, path="bench-10k.guide", extensions=extensions), warmup=False))
    explain_split(scaling, checked, parsed)
    return [scaling, checked, parsed]


def explain_split(scaling: Measure, checked: Measure, parsed: Measure) -> None:
    """Notes that say where parse+check time goes: parsing vs checking, and how it scales with size."""
    check_rate = checked.median or checked.bound  # a bound when the run was stopped
    if check_rate and parsed.median:
        share = check_rate / parsed.median
        parsed.note = f"parsing is {'at most ' if checked.bound else ''}{share:.0%} of parse+check time"
    slowdown = scaling.median / check_rate if check_rate and scaling.median else 0.0
    if slowdown > 1.5 or (slowdown and not checked.bound):  # a bound near 1x says nothing
        scaling.note = (f"{'at least ' if checked.bound else ''}{slowdown:.1f}x faster per statement than at "
                        "10,000 statements" + (": work grows faster than the spec" if slowdown > 1.5 else ""))

