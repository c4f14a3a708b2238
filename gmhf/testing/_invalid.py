"""Specs that must be rejected: a valid spec with one or two broken lines inserted somewhere.

Each kind of breakage is wrong whatever else the spec says (an interval past a finite bound, a
keyword that does not exist, `invariant F` next to `shift F by +0`, …), so every drawn text is
invalid by construction, not by luck, and a checker that accepts one has a bug.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from hypothesis import strategies as st

if TYPE_CHECKING:
    from gmhf.core.factors import FactorSpace
    from gmhf.core.registry import Registry

__all__ = ["INVALID_KINDS", "applies", "broken_lines"]

Breaker = Callable[[st.DrawFn, str, "FactorSpace", "Registry"], "list[str] | None"]


def _any(draw: st.DrawFn, space: FactorSpace) -> str:
    return draw(st.sampled_from(space.names))


def _bounded(space: FactorSpace) -> list[str]:
    return [f.name for f in space if f.kind != "categorical" and math.isfinite(f.high)]


def _number(x: float) -> str:
    return f"{x:g}" if x >= 0 else f"-{-x:g}"


def _unknown_keyword(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    keyword = draw(st.sampled_from(("sift", "shfit", "requir", "expects", "priors")))
    return None if keyword in registry.statements else [f"{keyword} {_any(draw, space)} in 0 .. 1"]


def _unknown_factor(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    name = _any(draw, space) + draw(st.sampled_from(("_x", "2", "_typo")))
    known = set(space.names) | {o.name for o in space.observables}
    return None if name in known else [f"shift {name} in 0 .. 1"]


def _empty_interval(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    return [f"shift {_any(draw, space)} in 2 .. {draw(st.sampled_from(('1', '2', '-1')))}"]


def _outside_bounds(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    names = _bounded(space)
    if not names:
        return None
    factor = space[draw(st.sampled_from(names))]
    return [f"shift {factor.name} in {_number(factor.high)} .. {_number(factor.high + 1)}"]


def _impossible_require(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    names = _bounded(space)
    if not names:
        return None
    factor = space[draw(st.sampled_from(names))]
    return [f"require {factor.name} > {_number(factor.high + 1)}"]


def _bad_trust(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    return [f"trust {draw(st.sampled_from(('0', '1.5', '2', '-0.5')))}"]


def _bad_percent(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    percent = draw(st.sampled_from(("0", "100", "150")))
    return [f"prior {_any(draw, space)} between 0 and 1 with {percent}%"]


def _bad_parameter(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    call = draw(st.sampled_from(("normal(1, 0)", "uniform(2, 1)", "normal(1)", "lognormal(0, -1)")))
    return [f"prior {_any(draw, space)} ~ {call}"]


def _unknown_distribution(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    name = draw(st.sampled_from(("normall", "gauss", "unifrom")))
    return None if name in registry.distributions else [f"prior {_any(draw, space)} ~ {name}(1, 2)"]


def _conflict(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    name = _any(draw, space)
    pair = draw(st.sampled_from(((f"invariant {name}", f"shift {name} by +0"),
                                 (f"prior {name} ~ normal(1, 1)", f"prior {name} ~ normal(2, 1)"))))
    return list(pair)


def _syntax(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    template = draw(st.sampled_from((
        "shift {f} in 1 2", "require {f} <", "prior {f} normal(1, 2)", "require ({f} > 1", "shift {f} = 3",
        "require {f} > .5", "trust", "domain", "require {f} >> 1", "shift {f} in [", "prefer {f} > 1 weight",
        'use "unclosed',
    )))
    return [template.format(f=_any(draw, space))]


def _observable_in_require(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    if not space.observables:
        return None
    return [f"require {draw(st.sampled_from(space.observables)).name} > 0"]


def _categorical_misuse(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    names = [f.name for f in space if f.kind == "categorical"]
    if not names:
        return None
    name = draw(st.sampled_from(names))
    return [draw(st.sampled_from((f"require {name} < 2", f"shift {name} in [no_such_level]")))]


def _second_domain(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry) -> list[str] | None:
    others = sorted(set(registry.domains) - {domain})
    return [f"domain {draw(st.sampled_from(others))}"] if others else None


_BREAKERS: dict[str, Breaker] = {
    "syntax": _syntax, "unknown_keyword": _unknown_keyword, "unknown_factor": _unknown_factor,
    "empty_interval": _empty_interval, "outside_bounds": _outside_bounds, "impossible_require": _impossible_require,
    "bad_trust": _bad_trust, "bad_percent": _bad_percent, "bad_parameter": _bad_parameter,
    "unknown_distribution": _unknown_distribution, "conflict": _conflict,
    "observable_in_require": _observable_in_require, "categorical_misuse": _categorical_misuse,
    "second_domain": _second_domain,
}
#: The kinds of breakage `invalid_spec_texts(kinds=...)` may pick from.
INVALID_KINDS = tuple(_BREAKERS)




def applies(kind: str, domain: str, space: FactorSpace, registry: Registry) -> bool:
    """Whether the domain has what a kind of breakage needs (a bounded factor, an observable, …)."""
    needs = {
        "outside_bounds": bool(_bounded(space)), "impossible_require": bool(_bounded(space)),
        "observable_in_require": bool(space.observables),
        "categorical_misuse": any(f.kind == "categorical" for f in space),
        "second_domain": bool(set(registry.domains) - {domain}),
    }
    return needs.get(kind, True)


def broken_lines(draw: st.DrawFn, kinds: tuple[str, ...], domain: str, space: FactorSpace,
                 registry: Registry) -> list[str]:
    """The lines of one breakage of a drawn kind, among those that apply to the domain."""
    usable = [k for k in kinds if applies(k, domain, space, registry)]
    if not usable:
        from hypothesis.errors import InvalidArgument

        raise InvalidArgument(f"none of the kinds {list(kinds)!r} applies to the domain `{domain}`.")
    for _ in range(8):  # a drawn name may collide with a registered one: draw again
        lines = _BREAKERS[draw(st.sampled_from(usable))](draw, domain, space, registry)
        if lines is not None:
            return lines
    from hypothesis import reject

    reject()
