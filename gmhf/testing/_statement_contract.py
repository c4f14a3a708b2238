"""The rules `check_statement` applies to each compiled statement of a kind."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core.distributions import DTYPE
from gmhf.dsl import ast
from gmhf.testing._violations import Violations, is_vector, same

if TYPE_CHECKING:
    from gmhf.core.constraints import Constraint
    from gmhf.core.guidance import Guidance

__all__ = ["check_statement_examples"]

#: Rows compared one by one with their batch results.
ONE_BY_ONE = 24


def broad(guidance: Guidance, n: int, generator: torch.Generator) -> Tensor:
    """θ `[n, k]` spread over each factor's physical bounds (or its source support), most of them rejected."""
    columns = []
    for factor in guidance.space:
        if factor.kind == "categorical":
            columns.append(torch.randint(len(factor.levels), (n,), generator=generator).to(DTYPE))
            continue
        marginal = guidance.marginals[factor.name]
        low = factor.low if math.isfinite(factor.low) else min(marginal.low, -10.0)
        high = factor.high if math.isfinite(factor.high) else max(marginal.high, 10.0)
        low, high = (low if math.isfinite(low) else -10.0), (high if math.isfinite(high) else 10.0)
        x = low + (high - low) * torch.rand(n, generator=generator, dtype=DTYPE)
        columns.append(x.round() if factor.kind == "integer" else x)
    return torch.stack(columns, 1)


def _registered(cls: type[Constraint], v: Violations) -> bool:
    from gmhf.plugins.manager import plugin_host

    keyword = getattr(cls, "keyword", None)
    kind = plugin_host().registry.statements.get(keyword) if isinstance(keyword, str) else None
    if not v.require(kind is not None, f"its keyword {keyword!r} is not registered in the current plugin host; "
                     "check it inside `using_plugins(your_plugin)` or with the `gmhf_plugins` fixture"):
        return False
    assert kind is not None
    return v.require(kind.load() is cls, f"`{keyword}` is registered to {kind.load()!r}, not to {cls!r}")


def _batched(module: Constraint, theta: Tensor, where: str, v: Violations) -> None:
    n = theta.shape[0]
    accepted, weight = module.accepts(theta), module.log_weight(theta)
    if not v.require(is_vector(accepted, n) and accepted.dtype == torch.bool,
                     f"{where}: `accepts(theta [{n}, k])` must return a bool tensor [{n}], got {accepted!r:.80}"):
        return
    if not v.require(is_vector(weight, n) and weight.is_floating_point(),
                     f"{where}: `log_weight(theta [{n}, k])` must return a float tensor [{n}], got {weight!r:.80}"):
        return
    v.require(bool(torch.isfinite(weight[accepted]).all()), f"{where}: `log_weight` is not finite on accepted rows")
    expected = weight.masked_fill(~accepted, -torch.inf)
    v.require(same(module.log_prob(theta), expected), f"{where}: `log_prob` must be `log_weight` where accepted "
              "and -inf elsewhere")
    rows = range(min(n, ONE_BY_ONE))
    alone = torch.cat([module.accepts(theta[i:i + 1]) for i in rows])
    v.require(torch.equal(alone, accepted[:len(alone)]), lambda: f"{where}: `accepts` of a row alone differs from "
              f"its batch result at θ = {theta[int((alone != accepted[:len(alone)]).nonzero()[0])].tolist()}")
    alone_w = torch.cat([module.log_weight(theta[i:i + 1]) for i in rows])
    v.require(same(alone_w, weight[:len(alone_w)], rtol=1e-12), f"{where}: `log_weight` of a row alone differs "
              "from its batch result")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    v.require(torch.equal(module.accepts(theta[order]), accepted[order])
              and same(module.log_weight(theta[order]), weight[order], rtol=1e-12),
              f"{where}: results depend on the order of the rows (a batched method must not mix rows)")
    v.require(torch.equal(module.accepts(theta), accepted), f"{where}: `accepts` gives a different answer the "
              "second time on the same batch")


def _bounds(module: Any, target: Tensor, theta: Tensor, where: str, v: Violations) -> None:
    """A hard kind accepts what the spec samples; a soft kind stays below its declared bound."""
    if module.hard:
        rejected = ~module.accepts(target)
        if bool(rejected.any()):
            v.require(False, f"{where}: rejects environments the spec samples, e.g. θ = {target[rejected][0].tolist()}")
        return
    ceiling = module.max_log_weight()
    over = module.log_weight(theta) > ceiling + 1e-9
    if bool(over.any()):
        v.require(False, f"{where}: `log_weight` exceeds `max_log_weight()` = {ceiling:g} (sampling would be "
                  f"wrong), e.g. at θ = {theta[over][0].tolist()}")


def _holds(module: Any, guidance: Guidance, theta: Tensor, where: str, seed: int, v: Violations) -> None:
    """`holds(theta, observables)` of `expect`-like kinds, on simulated data."""
    data = guidance.domain.simulate(theta, generator=torch.Generator().manual_seed(seed))
    observed = guidance.domain.observe(theta, data)
    held = module.holds(theta, observed)
    n = theta.shape[0]
    if not v.require(is_vector(held, n) and held.dtype == torch.bool,
                     f"{where}: `holds` must return a bool tensor [{n}], got {held!r:.80}"):
        return
    rows = range(min(n, ONE_BY_ONE))
    alone = torch.cat([module.holds(theta[i:i + 1], {k: o[i:i + 1] for k, o in observed.items()}) for i in rows])
    v.require(torch.equal(alone, held[:len(alone)]), f"{where}: `holds` of a row alone differs from its batch result")


def _round_trip(text: str, domain: str | None, guidance: Guidance, theta: Tensor, v: Violations) -> None:
    import gmhf
    from gmhf.api import parse
    from gmhf.dsl.format import format_spec, format_statement
    from gmhf.dsl.parse import parse as parse_text
    from gmhf.plugins.manager import plugin_host

    spec = parse(text)
    formatted = format_spec(spec)
    v.require(ast.strip_spans(parse(formatted)) == ast.strip_spans(spec),
              f"`gmhf fmt` changes the meaning of the example:\n{formatted}")
    extensions = plugin_host().registry.extensions()
    for located in guidance.checked.statements:
        line = format_statement(located.statement)
        again = parse_text(line, extensions=extensions).statements
        v.require(len(again) == 1 and ast.strip_spans(again[0]) == ast.strip_spans(located.statement),
                  f"{located.where}: `{line}` does not parse back to the same statement")
    reloaded = gmhf.load(formatted, domain=domain)
    v.require(torch.equal(reloaded.accepts(theta), guidance.accepts(theta))
              and same(reloaded.log_prob(theta), guidance.log_prob(theta), rtol=1e-12),
              "the formatted spec (or the same text compiled again) accepts or scores environments differently")


def check_statement_examples(cls: type[Constraint], specs: list[str], domain: str | None, samples: int,
                             seed: int, v: Violations) -> None:
    """Apply every rule to each statement of `cls.keyword` in each example spec."""
    import gmhf
    from gmhf.dsl.errors import SpecError

    if not v.require(bool(specs), "needs at least one example spec") or not _registered(cls, v):
        return
    keyword = cls.keyword
    for text in specs:
        try:
            guidance = gmhf.load(text, domain=domain)
        except SpecError as error:
            v.require(False, f"the example does not load:\n{error}")
            continue
        located = [loc for loc in guidance.checked.statements if getattr(loc.statement, "keyword", None) == keyword]
        if not v.require(bool(located), f"the example has no `{keyword}` statement:\n{text}"):
            continue
        generator = torch.Generator().manual_seed(seed)
        target = guidance.sample(samples // 2, generator=generator).values
        theta = torch.cat([target, broad(guidance, samples - samples // 2, generator)]).to(DTYPE)
        modules: dict[str, Any] = {str(getattr(m, "where", "")): m for m in guidance.constraints}
        for loc in located:
            module: Any = modules.get(loc.where)
            if not v.require(module is not None, f"{loc.where}: no module has `where={loc.where!r}`; pass "
                             "`where=located.where` from `from_statement`"):
                continue
            v.require(not list(module.parameters()), f"{loc.where}: the module has parameters; keep tensors as "
                      "buffers (a spec is a belief; learning belongs to the steerer)")
            if isinstance(loc.statement, ast.CustomStatement):
                problems = cls.check(loc.statement, guidance.space)
                v.require(isinstance(problems, list) and not problems,
                          f"{loc.where}: `check` reports {problems!r} on a spec that loads")
            _batched(module, theta, loc.where, v)
            _bounds(module, target, theta, loc.where, v)
            if callable(getattr(module, "holds", None)):
                _holds(module, guidance, target, loc.where, seed, v)
        _round_trip(text, domain, guidance, theta, v)
