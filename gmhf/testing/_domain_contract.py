"""The rules `check_domain` applies: names, sources, sampling, simulation, observation, view and truth."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core.distributions import DTYPE
from gmhf.testing._violations import Violations, is_vector, same

if TYPE_CHECKING:
    from gmhf.core.domain import Domain
    from gmhf.core.factors import FactorSpace
    from gmhf.core.registry import Registry

__all__ = ["check_domain_rules"]

#: Rows simulated alone and compared with their batch results (each is one simulator call).
ONE_BY_ONE = 3
#: Environments simulated for the `view` rule, and the first bytes of every PNG file.
VIEW_ROWS = 2
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _resolve(domain: Domain | str, v: Violations) -> tuple[Domain, Registry] | None:
    from gmhf.plugins.manager import plugin_host

    registry = plugin_host().registry
    name = domain if isinstance(domain, str) else getattr(domain, "name", None)
    found = registry.domains.get(name) if isinstance(name, str) else None
    if not v.require(found is not None and (isinstance(domain, str) or found is domain),
                     f"{domain!r} is not registered in the current plugin host; check it inside "
                     "`using_plugins(your_plugin)` or with the `gmhf_plugins` fixture"):
        return None
    assert found is not None
    return found, registry


def _names(domain: Domain, space: FactorSpace, registry: Registry, v: Violations) -> None:
    from gmhf.api import check_text
    from gmhf.dsl.errors import SpecError
    from gmhf.dsl.format import format_spec
    from gmhf.dsl.parse import BUILTIN_KEYWORDS, RESERVED_WORDS, parse

    reserved = set(BUILTIN_KEYWORDS) | set(RESERVED_WORDS) | set(registry.statements)
    for what, name in [("domain", domain.name), *(("factor", f.name) for f in space),
                       *(("observable", o.name) for o in space.observables)]:
        v.require(name.isidentifier() and name not in reserved, f"the {what} name {name!r} cannot be written in a "
                  "spec: it must be an identifier and not a reserved word")
    lines = [f"domain {domain.name}", "invariant " + ", ".join(space.names)]
    lines += [f"expect max(abs({o.name})) >= 0" for o in space.observables]
    text = "\n".join(lines) + "\n"
    try:
        v.require(format_spec(parse(text, extensions=registry.extensions())) == text,
                  f"`gmhf fmt` does not keep this spec as it is:\n{text}")
        check_text(text, path="contract.guide")
    except SpecError as error:
        v.require(False, f"a spec naming every factor and observable does not check:\n{error}")


def _sources(space: FactorSpace, registry: Registry, v: Violations) -> None:
    for factor in space:
        source = factor.source
        kind = registry.distributions.get(source.name)
        if not v.require(kind is not None, f"the source `{source}` of `{factor.name}` is not a registered distribution"):
            continue
        assert kind is not None
        if factor.kind == "categorical":
            v.require(tuple(k for k, _ in source.weights) == factor.levels,
                      f"the source weights of `{factor.name}` must name its levels in order")
            continue
        problem = kind.validate(source.args)
        v.require(problem is None, f"the source `{source}` of `{factor.name}` has bad parameters: {problem}")
        low, high = kind.support(source.args)
        v.require(max(low, factor.low) < min(high, factor.high), f"the source `{source}` of `{factor.name}` puts "
                  f"no mass inside its physical bounds {factor.bounds_text()}")


def _inside(theta: Tensor, space: FactorSpace, v: Violations) -> None:
    for i, factor in enumerate(space):
        x = theta[:, i]
        if factor.kind == "categorical":
            ok = (x == x.round()) & (x >= 0) & (x < len(factor.levels))
        else:
            ok = ((x > factor.low) if factor.low_open else (x >= factor.low)) & (x <= factor.high)
            ok &= (x == x.round()) if factor.kind == "integer" else torch.ones_like(ok)
        if not bool(ok.all()):
            v.require(False, f"source samples of `{factor.name}` leave {factor.bounds_text()}, "
                      f"e.g. {float(x[~ok][0]):g}")


def _rows(data: Mapping[str, Any], rows: slice, shared: tuple[str, ...]) -> dict[str, Any]:
    return {k: t if k in shared or not isinstance(t, Tensor) else t[rows] for k, t in data.items()}


def _observed(domain: Domain, theta: Tensor, data: Mapping[str, Any], v: Violations) -> dict[str, Tensor] | None:
    space, n = domain.space, theta.shape[0]
    observed = domain.observe(theta, data)
    declared = {o.name for o in space.observables}
    if not v.require(isinstance(observed, Mapping) and set(observed) == declared,
                     f"`observe` must return exactly the declared observables {sorted(declared)}, got "
                     f"{sorted(observed) if isinstance(observed, Mapping) else observed!r}"):
        return None
    ok = data.get("ok", torch.ones(n, dtype=torch.bool))
    v.require(is_vector(ok, n) and ok.dtype == torch.bool, f"`ok` in the data must be a bool tensor [{n}]")
    for o in space.observables:
        value = observed[o.name]
        shape_ok = is_vector(value, n) if o.shape == "scalar" else isinstance(value, Tensor) and value.ndim == 2 \
            and value.shape[0] == n
        if v.require(shape_ok, f"observable `{o.name}` ({o.shape}) must be [{n}]" + ("" if o.shape == "scalar"
                     else ", t]") + f", got {getattr(value, 'shape', value)!r}") and is_vector(ok, n):
            v.require(bool(torch.isfinite(value[ok]).all()), f"observable `{o.name}` is not finite where `ok` is true")
    return dict(observed)


def _simulation(domain: Domain, theta: Tensor, seed: int, v: Violations) -> None:
    def run(batch: Tensor, s: int) -> Any:
        return domain.simulate(batch, generator=torch.Generator().manual_seed(s))

    state = torch.get_rng_state()
    data = run(theta, seed)
    v.require(torch.equal(state, torch.get_rng_state()), "`simulate` used torch's global generator; draw every random "
              "number from the `generator` argument")
    if not v.require(isinstance(data, Mapping), f"`simulate` must return a dict of tensors, got {type(data).__name__}"):
        return
    tensors = {k: t for k, t in data.items() if isinstance(t, Tensor)}
    again = run(theta, seed)
    v.require(all(same(t, again[k]) for k, t in tensors.items()), f"two simulations with seed {seed} differ: "
              "`simulate` is not deterministic under a seed")
    observed = _observed(domain, theta, data, v)
    if observed is None:
        return
    shared = tuple(getattr(domain, "shared", ()))
    other = run(theta, seed + 1)
    deterministic = all(same(t, other[k]) for k, t in tensors.items())
    for i in range(min(ONE_BY_ONE, theta.shape[0])):
        rows = slice(i, i + 1)
        if deterministic:  # the data itself must not depend on the rest of the batch
            alone = run(theta[rows], seed)
            mine = _rows(tensors, rows, shared)
            v.require(all(same(t, alone[k], rtol=1e-9, atol=1e-12) for k, t in mine.items()),
                      f"row {i} simulated alone differs from its batch result: a row's data depends on the others")
        single = domain.observe(theta[rows], _rows(data, rows, shared))
        v.require(all(same(observed[k][rows], single[k], rtol=1e-9, atol=1e-12) for k in observed),
                  f"`observe` of row {i} alone differs from its batch result")


def _truth(domain: Domain, v: Violations) -> None:
    from gmhf.api import check_text
    from gmhf.core.guidance import compile_checked
    from gmhf.errors import GmhfError
    from gmhf.plugins.manager import plugin_host

    text = domain.truth_spec()
    if text is None or not v.require(isinstance(text, str), "`truth_spec()` must return a spec's text or None, "
                                     f"got {type(text).__name__}"):
        return
    try:
        checked = check_text(text, path=f"<{domain.name} truth_spec()>")
        compile_checked(checked, plugin_host().registry)
    except GmhfError as error:
        v.require(False, f"`truth_spec()` does not load as a spec:\n{error}")
        return
    v.require(checked.domain == domain.name, f"`truth_spec()` is a spec of domain {checked.domain!r}; it must "
              f"start `domain {domain.name}`")


def _view(domain: Domain, theta: Tensor, seed: int, v: Violations) -> None:
    from gmhf.errors import UsageError

    data = domain.simulate(theta, generator=torch.Generator().manual_seed(seed))
    try:
        picture = domain.view(theta, data, theta.shape[0] - 1)
    except UsageError:  # the domain says it cannot be drawn
        return
    except Exception as error:  # noqa: BLE001 - a broken view is a finding, not a crash of the check
        v.require(False, f"`view(theta, data, {theta.shape[0] - 1})` raised {type(error).__name__}: {error}")
        return
    v.require(isinstance(picture, bytes) and picture.startswith(PNG_SIGNATURE),
              lambda: f"`view(theta, data, index)` must return PNG bytes (starting {PNG_SIGNATURE!r}) or raise "
              f"`UsageError` if the domain cannot be drawn, got {picture[:16] if isinstance(picture, bytes) else picture!r}")


def check_domain_rules(domain: Domain | str, samples: int, seed: int, v: Violations) -> None:
    """Apply every rule of `check_domain`."""
    import gmhf

    resolved = _resolve(domain, v)
    if resolved is None:
        return
    found, registry = resolved
    space = found.space
    _names(found, space, registry, v)
    _sources(space, registry, v)
    if v.found:  # the rest needs a loadable spec
        return
    source = gmhf.load(f"domain {found.name}")
    theta = source.sample(samples, seed=seed).values
    _inside(theta, space, v)
    logp = source.log_prob(theta)
    v.require(bool(torch.isfinite(logp).all()), "the source density is not finite at its own samples")
    for i, factor in enumerate(space):
        if factor.kind != "categorical" and math.isfinite(factor.high):
            past = theta[:1].clone()
            past[0, i] = factor.high + 1 + abs(factor.high)
            v.require(float(source.log_prob(past)[0]) == -math.inf and not bool(source.accepts(past)[0]),
                      f"a value of `{factor.name}` past its bound {factor.high:g} is accepted by the source")
    _truth(found, v)
    _simulation(found, theta.to(DTYPE), seed, v)
    _view(found, theta[:VIEW_ROWS].to(DTYPE), seed, v)
