"""Checks that need the whole registry, run once every plugin has registered.

A hook sees only what it registers, so two mistakes can only be caught afterwards: a domain whose
factor source names a distribution nobody registered (or gives it bad parameters), which would
otherwise pass `gmhf check` and crash `gmhf sample`; and a plugin statement whose syntax quotes a
word that some domain uses as a name (the basic lexer would turn every `amplitude` into that
word's token and break every spec of that domain). Each is refused and recorded against the
plugin that registered it; everything else keeps working.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gmhf.dsl.errors import did_you_mean

if TYPE_CHECKING:
    from gmhf.core.registry import Registry
    from gmhf.plugins.manager import PluginInfo

__all__ = ["refuse_broken"]

_QUOTED_WORD = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"')


def refuse_broken(registry: Registry, plugins: Mapping[str, PluginInfo]) -> None:
    """Drop broken domains, then statements whose words clash with a name, blaming their plugins."""
    for name, domain in list(registry.domains.items()):
        problem = _domain_problem(domain, registry)
        if problem is not None:
            _refuse(registry, plugins, "domains", name, f"gmhf_domains: domain `{name}`, {problem}")
    taken = _names_in_use(registry)
    for keyword, kind in list(registry.statements.items()):
        if kind.syntax is None:
            continue
        for word in [keyword, *_QUOTED_WORD.findall(kind.syntax)]:
            if word in taken:
                _refuse(registry, plugins, "statements", keyword,
                        f"gmhf_statements: the syntax of `{keyword}` makes `{word}` a reserved word, but it is "
                        f"{taken[word]}; registration refused")
                break


def _domain_problem(domain: Any, registry: Registry) -> str | None:
    """What is wrong with a domain's factor sources, or None."""
    try:
        factors = tuple(domain.space)
    except Exception as error:  # a cached `space` property may raise; that is the plugin's bug
        return f"`space` raised {type(error).__name__}: {error}"
    for factor in factors:
        source = factor.source
        kind = registry.distributions.get(source.name)
        where = f"factor `{factor.name}`: source"
        if kind is None:
            return f"{where} unknown distribution `{source.name}`; {did_you_mean(source.name, registry.distributions)}"
        categorical = factor.kind == "categorical"
        if kind.named != categorical:
            return f"{where} `{kind.name}` is {'only' if kind.named else 'not'} for categorical factors"
        args = tuple(w for _, w in source.weights) if categorical else source.args
        if not categorical and len(args) != len(kind.params):
            return (f"{where} `{kind.name}` takes {len(kind.params)} parameters ({', '.join(kind.params)}), "
                    f"got {len(args)}")
        try:
            message = kind.validate(args)
        except Exception as error:  # the distribution's plugin is at fault, but the domain cannot work
            message = f"its `validate` raised {type(error).__name__}: {error}"
        if message:
            return f"{where} bad parameters for `{kind.name}`: {message}"
    return None


def _names_in_use(registry: Registry) -> dict[str, str]:
    """Every name a spec may write, with what it is (for the message)."""
    taken: dict[str, str] = {name: "a function" for name in registry.functions}
    taken.update({name: "a distribution" for name in registry.distributions})
    for name, domain in registry.domains.items():
        taken[name] = "a domain"
        for factor in domain.space:
            taken.setdefault(factor.name, f"a factor of domain `{name}`")
            for level in factor.levels:
                taken.setdefault(level, f"a level of factor `{factor.name}` of domain `{name}`")
        for observable in domain.space.observables:
            taken.setdefault(observable.name, f"an observable of domain `{name}`")
    return taken


def _refuse(registry: Registry, plugins: Mapping[str, PluginInfo], kind: str, name: str, message: str) -> None:
    getattr(registry, kind).pop(name, None)
    owner = plugins.get(registry.origins.pop((kind, name), ""))
    if owner is None:
        return
    owner.errors.append(message)
    names = owner.registers.get(kind, [])
    if name in names:
        names.remove(name)
    if not names:
        owner.registers.pop(kind, None)
