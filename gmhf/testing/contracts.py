"""The contracts gmhf relies on, as checks a plugin author calls from their own tests.

    from gmhf.plugins.manager import using_plugins
    from gmhf.testing.contracts import check_distribution, check_domain, check_statement
    import my_plugin

    def test_my_plugin_honours_the_contracts():
        with using_plugins(my_plugin):
            check_distribution(my_plugin.TRIANGULAR, (0.0, 1.0, 3.0))
            check_statement(my_plugin.Near, ["domain sinusoid\\nnear amplitude to 3 within 0.5"])
            check_domain("pendulum")

Each check runs every rule and raises one `ContractError` listing all that broke, each with an
example. The rules: samples inside the support; `log_prob` finite inside and `-inf` outside; batch
results equal one-by-one results (and do not depend on the other rows); the same seed gives the same
result and the global torch generator is left alone; text goes through `gmhf fmt` and back unchanged.
Statistical rules use fixed seeds and state their tolerance, so a check passes or fails the same way
every run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core.distributions import DTYPE
from gmhf.core.registry import DistributionKind, resolve
from gmhf.testing._distribution_contract import check_views
from gmhf.testing._domain_contract import check_domain_rules
from gmhf.testing._statement_contract import check_statement_examples
from gmhf.testing._violations import ContractError, Violations, is_vector, same

if TYPE_CHECKING:
    from gmhf.core.constraints import Constraint
    from gmhf.core.domain import Domain

__all__ = ["ContractError", "check_distribution", "check_domain", "check_statement"]


# ------------------------------------------------------------------ distributions


def check_distribution(factory: DistributionKind | Callable[..., Any] | str, args: Sequence[float], *,
                       samples: int = 20_000, seed: int = 0,
                       truncations: Sequence[tuple[float, float]] = ()) -> None:
    """Check a distribution plugin on one set of parameters, whole and truncated.

    The statistical rules (KS and a tail-weighted chi-square against `cdf`, ∫ exp(log_prob) = 1 by
    quadrature, draws against the density's mass between their quantiles, value frequencies of a
    discrete distribution, no collapse to few values) run at level 1e-3 with fixed seeds on the
    whole support, on the central half of the draws, on a far tail of each unbounded end, and on
    each of `truncations`, truncated as a spec truncates (`gmhf.core.distributions.truncate`).
    Needs scipy (quadrature, chi-square quantiles).

    Args:
        factory: a `DistributionKind` (its `validate` and `support` are checked too), its factory
            (`args -> distribution`), or a `"module:function"` string.
        args: example parameters, as a spec would give them (level weights for a `named` kind).
        samples: how many draws each view uses.
        seed: the seed of those draws.
        truncations: more (low, high) intervals to check the distribution truncated to: a thin
            slice, a tail 30σ out, a corner where the density is singular.

    Raises:
        ContractError: every broken rule, with an example.
    """
    # Long: a list of rules, each one `require` with its message, checked in order.
    args = tuple(float(a) for a in args)
    kind = factory if isinstance(factory, DistributionKind) else None
    label = kind.name if kind is not None else getattr(factory, "__qualname__", str(factory))
    v = Violations(f"distribution `{label}{args}`")
    if kind is not None and kind.validate(args) is not None:
        raise ContractError(v.subject, [f"the example parameters are invalid: {kind.validate(args)}"])
    dist = kind.build(args) if kind is not None else resolve(factory)(args)
    low, high = getattr(dist, "low", None), getattr(dist, "high", None)
    if not v.require(isinstance(low, int | float) and isinstance(high, int | float) and low <= high,
                     f"needs float attributes `low` <= `high`, got {low!r} and {high!r}"):
        v.done()
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if kind is not None:
        s_low, s_high = kind.support(args)
        v.require(s_low <= low and high <= s_high, f"`support(args)` = ({s_low:g}, {s_high:g}) does not contain "
                  f"the distribution's [low, high] = [{low:g}, {high:g}]; `gmhf check` would reason from the wrong range")
    state = torch.get_rng_state()
    draws = dist.sample(samples, torch.Generator().manual_seed(seed))
    v.require(torch.equal(state, torch.get_rng_state()), "`sample` used torch's global generator; draw every "
              "random number from the `generator` argument")
    if not v.require(is_vector(draws, samples) and draws.dtype == DTYPE,
                     f"`sample({samples}, generator)` must return a float64 tensor [{samples}], got {draws!r:.80}"):
        v.done()
    outside = ~((draws >= low) & (draws <= high))
    v.require(not bool(outside.any()), lambda: f"{int(outside.sum())} of {samples} draws leave the support "
              f"[{low:g}, {high:g}], e.g. {float(draws[outside][0]):.6g}")
    v.require(torch.equal(draws, dist.sample(samples, torch.Generator().manual_seed(seed))),
              f"two draws with seed {seed} differ: sampling is not deterministic under a seed")
    inside = draws[~outside]
    logp = dist.log_prob(inside)
    bad = ~torch.isfinite(logp) if isinstance(logp, Tensor) else torch.ones(1, dtype=torch.bool)
    v.require(is_vector(logp, len(inside)) and not bool(bad.any()), lambda: "`log_prob` must be finite at "
              f"draws inside the support, e.g. at {float(inside[bad][0]):.6g} it is {float(logp[bad][0])}")
    beyond = [x for x in (low - 1 - abs(low), high + 1 + abs(high)) if math.isfinite(x)]
    if beyond:
        out = dist.log_prob(torch.tensor(beyond, dtype=DTYPE))
        v.require(bool((out == -math.inf).all()), f"`log_prob` outside the support must be -inf, got "
                  f"{out.tolist()} at {beyond}")
    points = torch.cat([inside[:16], torch.tensor(beyond, dtype=DTYPE)])
    batch = dist.log_prob(points)
    single = torch.cat([dist.log_prob(points[i:i + 1]) for i in range(len(points))])
    v.require(same(batch, single, rtol=1e-12), "`log_prob` of a batch differs from `log_prob` of its rows one by "
              "one; a batched method must treat rows independently")
    v.require(same(dist.log_prob(points.flip(0)), batch.flip(0), rtol=1e-12),
              "`log_prob` of a row depends on the other rows of the batch")
    if len(inside) == samples and not bool(bad.any()):
        check_views(dist, draws, truncations, samples, seed, v)
    v.done()


# ------------------------------------------------------------------ statements and domains


def check_statement(cls: type[Constraint], specs: Sequence[str], *, domain: str | None = None,
                    samples: int = 512, seed: int = 0) -> None:
    """Check a statement kind (a `Constraint` subclass) on example specs that use its keyword.

    The keyword must be registered in the current plugin host (use `using_plugins(your_plugin)` or
    the `gmhf_plugins` fixture). For every statement of the keyword in every example: the module has
    no parameters; `accepts` and `log_weight` give one result per row, equal one by one and under
    any order of rows; `log_prob` is `log_weight` where accepted and `-inf` elsewhere; a hard kind
    accepts every environment the spec samples; a soft kind stays below `max_log_weight()`; an
    `expect`-like kind's `holds` is batch-independent on simulated data; the statement and the whole
    spec go through `gmhf fmt` and back, and the formatted spec compiles to the same constraints.

    Raises:
        ContractError: every broken rule, with an example.
    """
    v = Violations(f"statement kind {getattr(cls, '__name__', cls)!r}")
    check_statement_examples(cls, list(specs), domain, samples, seed, v)
    v.done()


def check_domain(domain: Domain | str, *, samples: int = 64, seed: int = 0) -> None:
    """Check a registered domain (an instance or its name).

    Rules: its name, factors and observables are usable in specs (identifiers, not reserved words)
    and `domain NAME` with every factor and observable round-trips through `gmhf fmt`; every source
    is a registered distribution with valid parameters and mass inside the physical bounds; source
    samples stay inside the bounds with finite `log_prob`, and a value past a bound gets `-inf`;
    `simulate` is deterministic under a seed and leaves the global generator alone; `observe` gives
    every declared observable, `[n]` for scalars and `[n, t]` for arrays, finite where the data is
    `ok`; a row's data does not depend on the other rows (checked on `simulate` when it is
    deterministic, else on `observe`); `view(theta, data, index)` returns PNG bytes, or raises
    `UsageError` when the domain cannot be drawn (any other exception is a finding); `truth_spec()`
    returns None or the text of a spec that checks, compiles and starts `domain NAME` with this
    domain's name.

    Raises:
        ContractError: every broken rule, with an example.
    """
    name = domain if isinstance(domain, str) else getattr(domain, "name", repr(domain))
    v = Violations(f"domain {name!r}")
    check_domain_rules(domain, samples, seed, v)
    v.done()
