"""Misspecification: when the answers say the spec cuts off part of the target.

The agent can only move π inside the spec's support, so a spec whose `shift F in lo .. hi` stops
short of the target shows one way: the experts accept environments at the edge and reject those
further in, and π piles up against that bound. The check compares π with q_H in a band at each end
of each flagged factor's support (the outer 5% of its range): where π holds at least `PILE` times
the mass q_H holds there and at least `ACCEPTS` accepted environments lie in the band, the answers
favour the edge itself, and the target probably extends beyond it. (The accepts keep the first
few answers, on which π leans hard, from raising an alarm alone.) The report names the bound and the statements that set it (`file:line`), so the expert
knows which line to widen. A target that only touches the bound from inside looks the same from
inside the support, hence "probably".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gmhf.core.belief import Belief
    from gmhf.core.guidance import Guidance
    from gmhf.core.sources import ThetaSource

__all__ = ["ACCEPTS", "BAND", "PILE", "BoundCheck", "Suspicion"]

#: The share of a factor's support range, at each end, that counts as "at the bound".
BAND = 0.05
#: How many times q_H's mass π must hold in that band to report it.
PILE = 3.0
#: Accepted environments there needed to report it.
ACCEPTS = 3
#: q_H draws the check is computed on (fixed, so a resumed run reports the same).
PROBE = 8192


@dataclass(frozen=True)
class Suspicion:
    """A bound of a flagged factor that the answers push against.

    Attributes:
        factor, side, bound: which end of whose support (`low` or `high`) and its value.
        pile: π's mass in the band at that end, as a multiple of q_H's mass there.
        statements: `file:line` of each statement that sets the factor's support.
    """

    factor: str
    side: Literal["low", "high"]
    bound: float
    pile: float
    statements: tuple[str, ...]

    def message(self) -> str:
        """One line for a person: what the answers suggest and where to change the spec."""
        where = f" (set at {', '.join(self.statements)})" if self.statements else ""
        direction = "below" if self.side == "low" else "above"
        return (f"probably misspecified: the answers favour {self.factor} at its {self.side} bound "
                f"{self.bound:.4g}{where}: π holds {self.pile:.1f}x the spec's mass there; the target may "
                f"extend {direction} it")

    def row(self) -> dict[str, object]:
        """The JSON form (a round's `misspecified` entry)."""
        return {"factor": self.factor, "side": self.side, "bound": self.bound, "pile": self.pile,
                "statements": list(self.statements)}


class BoundCheck:
    """The check for one belief: its probe drawn and scored once, so each round only scores π.

    Args:
        belief: q_H.
        components: the compiled specs behind `belief`, whose statements are named (default: none
            named; pass `[guidance]` for a single spec).
    """

    def __init__(self, belief: Belief, components: Sequence[Guidance] = ()) -> None:
        self.belief, self.components = belief, tuple(components)
        self.draws = belief.sample(PROBE, generator=torch.Generator().manual_seed(0)).values
        self.log_q = belief.log_prob(self.draws)

    def __call__(self, pi: ThetaSource, accepted: Tensor) -> list[Suspicion]:
        """The bounds of the belief's flagged real factors against which π piles up.

        Args:
            pi: the steered distribution (any `ThetaSource` with a `log_prob`).
            accepted: `[m, k]` the environments experts accepted so far.
        """
        belief, draws = self.belief, self.draws
        ratio = (pi.log_prob(draws) - self.log_q).exp()
        ratio = ratio / ratio.mean().clamp(min=1e-300)  # π/q_H, normalised on the probe
        found = []
        for name in belief.flagged:
            if belief.space[name].kind != "real":
                continue
            column = draws[:, belief.space.index(name)]
            low, high = float(column.min()), float(column.max())
            width = BAND * (high - low)
            if width <= 0:
                continue
            asked = accepted[:, belief.space.index(name)]
            for side, band, near in (("low", column <= low + width, asked <= low + width),
                                     ("high", column >= high - width, asked >= high - width)):
                pile = float(ratio[band].mean()) if band.any() else 0.0
                if pile >= PILE and int(near.sum()) >= ACCEPTS:
                    bound = low if side == "low" else high
                    found.append(Suspicion(name, side, _rounded(bound, width), pile,  # type: ignore[arg-type]
                                           _setters(self.components, name)))
        return found


def _rounded(bound: float, width: float) -> float:
    """The probe's extreme, to the precision the band allows (a draw never lands on the bound itself)."""
    digits = max(0, -int(torch.tensor(width).log10().floor()) + 1)
    return round(bound, digits)


def _setters(components: Sequence[Guidance], name: str) -> tuple[str, ...]:
    """`file:line` of the statements that shape a factor's support, in every spec given."""
    places: list[str] = []
    for guidance in components:
        plan = guidance.checked.factors.get(name)
        for located in plan.touched_by if plan is not None else ():
            if getattr(located.statement, "keyword", "") in ("shift", "prior") and located.where not in places:
                places.append(located.where)
    return tuple(places)
