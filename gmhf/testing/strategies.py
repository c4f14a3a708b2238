"""Hypothesis strategies: environments a spec believes in, valid specs for a domain, broken ones.

    from hypothesis import given
    from gmhf.testing.strategies import from_guidance

    @given(from_guidance("specs/target.guide"))
    def test_controller_is_stable(theta):        # theta: {"amplitude": 4.2, ..., "weather": "rain"}
        assert my_controller(theta).stable

`from_guidance` draws only environments the spec accepts (inside every support and every
`require`), and shrinks a failure toward the source: the counterexample it reports is the one
nearest the training distribution. `specs(domain)` and `spec_texts(domain)` draw specs that check
and load; `invalid_spec_texts(domain)` draws specs that must be rejected. Options are keyword-only
and validated when the strategy is first drawn from, as Hypothesis' own strategies are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from gmhf.dsl import ast
from gmhf.testing._draws import Record, count
from gmhf.testing._draws import from_guidance as draw_environments
from gmhf.testing._invalid import INVALID_KINDS

if TYPE_CHECKING:
    from gmhf.core.domain import Domain
    from gmhf.core.guidance import Guidance
    from gmhf.core.theta import Theta

__all__ = ["INVALID_KINDS", "from_guidance", "invalid_spec_texts", "spec_texts", "specs"]


@overload
def from_guidance(guidance: Guidance | str | os.PathLike[str], *, batch: None = None,
                  domain: str | None = None) -> st.SearchStrategy[Record]: ...


@overload
def from_guidance(guidance: Guidance | str | os.PathLike[str], *, batch: int,
                  domain: str | None = None) -> st.SearchStrategy[Theta]: ...


def from_guidance(guidance: Guidance | str | os.PathLike[str], *, batch: int | None = None,
                  domain: str | None = None) -> st.SearchStrategy[Record] | st.SearchStrategy[Theta]:
    """Environments θ the spec believes possible, shrinking toward the source.

    Each factor is drawn as a coordinate whose 0 is the source median (moved to the nearest value
    the spec allows), and whose distance from 0 is the believed probability mass in between; rows
    the spec's `require`s reject are drawn again. So every drawn θ passes `guidance.accepts`, the
    values cover the whole believed support (ends included), and a failing example shrinks to the
    environment nearest the training distribution that still fails.

    Args:
        guidance: a compiled spec (`gmhf.load(...)`), or a spec path or text, loaded once.
        batch: None for one environment as a dict (`{"amplitude": 4.2, "weather": "rain"}`, as
            `gmhf sample --json` prints), or a size: a `Theta` of that many rows.
        domain: the domain of a spec path or text that has no `domain` statement.

    Example:
        >>> @given(from_guidance(gmhf.load("specs/target.guide"), batch=16))
        ... def test_model_bounded(theta):
        ...     assert model(theta.values).abs().max() < 10
    """
    return draw_environments(guidance, batch=batch, domain=domain)  # type: ignore[no-any-return]


def _host_domain(domain: object) -> tuple[str, Any, Any]:
    from gmhf.core.domain import Domain
    from gmhf.dsl.errors import did_you_mean
    from gmhf.plugins.manager import plugin_host

    registry = plugin_host().registry
    name = domain.name if isinstance(domain, Domain) else domain
    if not isinstance(name, str) or name not in registry.domains:
        hint = did_you_mean(name, registry.domains) if isinstance(name, str) else None
        raise InvalidArgument(f"`domain` must name a registered domain, got {domain!r}"
                              + (f"; {hint}" if hint else "."))
    return name, registry.domains[name].space, registry


@st.composite
def specs(draw: st.DrawFn, domain: str | Domain, *, max_requires: int = 2, max_prefers: int = 2,
          max_expects: int = 2) -> ast.Spec:
    """Spec syntax trees that pass `gmhf check` and load for `domain` (a name or a registered Domain).

    Every factor gets a belief (possibly none), then up to `max_requires` single-factor and as many
    joint `require`s, `max_prefers` `prefer`s, `max_expects` `expect`s and maybe `trust`, in a drawn
    order after `domain`. Only built-in statement kinds and distributions are used. Shrinks toward
    `domain NAME` alone. Draws compile marginals (torch) to place `require` bounds where mass is.
    """
    name, space, registry = _host_domain(domain)
    limits = {k: count(k, v) for k, v in (("max_requires", max_requires), ("max_prefers", max_prefers),
                                           ("max_expects", max_expects))}
    from gmhf.testing._specgen import draw_spec

    return draw_spec(draw, name, space, registry, **limits)


@st.composite
def spec_texts(draw: st.DrawFn, domain: str | Domain, *, max_requires: int = 2, max_prefers: int = 2,
               max_expects: int = 2) -> str:
    """The canonical text (`gmhf fmt`) of `specs(domain, ...)`: text that checks, loads and is formatted."""
    from gmhf.dsl.format import format_spec

    return format_spec(draw(specs(domain, max_requires=max_requires, max_prefers=max_prefers,
                                  max_expects=max_expects)))


@st.composite
def invalid_spec_texts(draw: st.DrawFn, domain: str | Domain, *, kinds: Sequence[str] | None = None) -> str:
    """Spec texts for `domain` that `gmhf check` must reject: a valid spec with broken lines inserted.

    `kinds` picks the breakages (names in `INVALID_KINDS`: `"syntax"`, `"unknown_factor"`,
    `"conflict"`, `"outside_bounds"`, …); by default, any that applies to the domain.
    """
    name, space, registry = _host_domain(domain)
    chosen = INVALID_KINDS if kinds is None else tuple(kinds) if not isinstance(kinds, str) else (kinds,)
    unknown = sorted(set(chosen) - set(INVALID_KINDS))
    if unknown or not chosen:
        raise InvalidArgument(f"`kinds` must be a non-empty selection of {list(INVALID_KINDS)!r}, got {kinds!r}.")
    from gmhf.testing._invalid import applies, broken_lines

    if not any(applies(k, name, space, registry) for k in chosen):
        raise InvalidArgument(f"none of the kinds {list(chosen)!r} applies to the domain `{name}`.")
    base = draw(spec_texts(domain, max_requires=1, max_prefers=1, max_expects=1)).splitlines()
    broken = broken_lines(draw, chosen, name, space, registry)
    at = draw(st.integers(0, len(base)))
    return "\n".join(base[:at] + broken + base[at:]) + "\n"
