"""What one `Guidance.sample` call may cost: memory for the result, candidates for the rejection loop.

Rejection sampling draws about n / acceptance candidates. They are drawn in rounds of at most
`CHUNK` rows, so memory stays bounded whatever the acceptance; the result itself (n × k float64)
must fit under `MAX_RESULT_BYTES`. A call that needs more than `WARN_CANDIDATES` candidates warns
first with the estimate; one that needs more than `MAX_CANDIDATES` is refused before it starts,
or as soon as the acceptance seen so far says it cannot finish.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from gmhf.errors import GmhfError, GmhfWarning, UsageError

__all__ = ["CANDIDATES_PER_SECOND", "CHUNK", "MAX_CANDIDATES", "MAX_RESULT_BYTES", "WARN_CANDIDATES", "check_cost",
           "check_result_size", "share_text"]

#: Candidate rows drawn per round of the rejection loop (2^20: 8 MiB per factor).
CHUNK = 2**20
#: Candidates after which a call warns (about a second of drawing and checking).
WARN_CANDIDATES = 10**7
#: Rough speed of the rejection loop on one CPU thread, for the warning's time estimate.
CANDIDATES_PER_SECOND = 10**7
#: Candidates beyond which a call is refused: the constraints leave too little to sample.
MAX_CANDIDATES = 10**9
#: The largest result, n × k × 8 bytes, one call returns (4 GiB).
MAX_RESULT_BYTES = 2**32


def share_text(fraction: float, probes: int | None = None) -> str:
    """A fraction as a percentage with the digits it needs: `12%`, `0.35%`, `0.0012%`.

    With `probes`, a fraction of zero reads "< 1 in 10,000 probe draws" (the probe saw none).
    """
    if fraction <= 0.0:
        return f"< 1 in {probes:,} probe draws" if probes else "0%"
    percent = fraction * 100
    if percent >= 10:
        return f"{percent:.0f}%" if percent < 99.5 or percent == 100 else f"{percent:.1f}%"
    return f"{percent:.2g}%" if percent >= 1e-4 else f"{percent:.1e}%"


def check_result_size(n: int, k: int) -> None:
    """Refuse a result of n × k float64 larger than `MAX_RESULT_BYTES`, before anything is drawn."""
    size = n * max(k, 1) * 8
    if size > MAX_RESULT_BYTES:
        raise UsageError(f"`n` = {n:,} environments of {k} factors need {size / 2**30:,.1f} GiB "
                         f"(n × k × 8 bytes), over the {MAX_RESULT_BYTES / 2**30:g} GiB one call may return; "
                         f"draw them in batches (several calls with smaller `n`).")


def check_cost(n: int, rate: float, name_rarest: Callable[[], str], *, seen: bool = False) -> None:
    """Warn when n / `rate` candidates is costly; refuse it beyond `MAX_CANDIDATES`.

    `name_rarest()` names the statement that accepts least (called only for a message); `seen` says
    the rate was measured while sampling rather than by the compile-time probe.
    """
    need = n / rate if rate > 0 else float("inf")
    if need <= WARN_CANDIDATES:
        return
    rarest = name_rarest()
    how = "seen so far" if seen else "estimated by the probe"
    if need > MAX_CANDIDATES:
        raise GmhfError(f"{rarest} accepts about {share_text(rate)} of draws ({how}): {n:,} environments "
                        f"would need about {_count(need)} candidates, over the {MAX_CANDIDATES:,} one call may "
                        f"draw. Relax the constraint, or shift the factors it reads toward where it holds.")
    if need > WARN_CANDIDATES and not seen:
        warnings.warn(f"{rarest} accepts about {share_text(rate)} of draws: {n:,} environments need about "
                      f"{_count(need)} candidates (roughly {need / CANDIDATES_PER_SECOND:,.0f} s)", GmhfWarning,
                      stacklevel=3)


def _count(x: float) -> str:
    return f"{x:,.0f}" if x < 1e15 else f"{x:.2e}"
