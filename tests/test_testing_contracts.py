"""gmhf.testing.contracts: every built-in passes; deliberately broken plugins are caught, with the rule named."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

import gmhf
from gmhf.core import constraints as C
from gmhf.core import distributions as D
from gmhf.core.factors import Factor, FactorSpace, Observable
from gmhf.plugins.manager import PluginHost, build_host, using_plugins
from gmhf.testing.contracts import ContractError, check_distribution, check_domain, check_statement
from tests.plugins import extras, toy

# Example parameters per built-in distribution (two for beta: a bell and the U-shaped 0.5, 0.5).
DISTRIBUTIONS = {
    "uniform": [(1.0, 3.0)], "normal": [(0.0, 2.0)], "lognormal": [(0.0, 0.5)],
    "beta": [(2.0, 5.0), (0.5, 0.5)], "choice": [(1.0, 0.0, 2.0)],
}
# Example specs per built-in statement kind, every form of each.
STATEMENTS: dict[str, tuple[type[C.Constraint], list[str]]] = {
    "invariant": (C.Invariant, ["domain sinusoid\ninvariant phase, noise", "domain toy\ninvariant weather, cars"]),
    "shift": (C.Shift, ["domain sinusoid\nshift amplitude in 2 .. 4\nshift frequency by *1.2\nshift noise by +0.1",
                        "domain toy\nshift cars in [1, 3, 5]\nshift weather in [rain, fog]\nshift speed by -0.5"]),
    "prior": (C.Prior, ["domain sinusoid\nprior amplitude ~ normal(3, 1)\nprior noise between 0.1 and 0.2 with 90%",
                        "domain toy\nprior weather ~ choice(rain: 1, snow: 2)\nprior cars ~ normal(3, 2)"]),
    "require": (C.Require, ["domain sinusoid\nrequire amplitude < 2 * frequency\nrequire noise < 0.05",
                            "domain toy\nrequire weather != fog or cars > 3"]),
    "prefer": (C.Prefer, ["domain sinusoid\nprefer amplitude < 2 weight 2\nprefer noise < 0.05 weight -1"]),
    "expect": (C.Expect, ["domain sinusoid\nexpect max(abs(y)) < 3", "domain toy\nexpect peak < 2"]),
}


def _builtin(host: PluginHost, kind: str) -> set[str]:
    return {name for (k, name) in host.build().origins if k == kind}


def test_examples_cover_every_builtin() -> None:
    """The lists above name every built-in statement kind, distribution and domain, so none goes unchecked."""
    host = build_host(entry_points=[], env={})
    assert _builtin(host, "distributions") == set(DISTRIBUTIONS)
    assert _builtin(host, "statements") == set(STATEMENTS)
    assert _builtin(host, "domains") == {"sinusoid", "duffing", "scenes"}


@pytest.mark.parametrize("name, args", [(n, a) for n, examples in DISTRIBUTIONS.items() for a in examples] +
                         [("triangular", (0.0, 1.0, 3.0))])
def test_distributions_honour_the_contract(toy_plugins: PluginHost, name: str, args: tuple[float, ...]) -> None:
    """Each built-in distribution (and the test plugin's triangular) passes every rule."""
    check_distribution(toy_plugins.registry.distributions[name], args)


@pytest.mark.parametrize("keyword", sorted(STATEMENTS))
def test_statements_honour_the_contract(keyword: str) -> None:
    """Each built-in statement kind passes every rule on every form of the statement."""
    cls, specs = STATEMENTS[keyword]
    check_statement(cls, specs)


def test_plugin_statement_honours_the_contract() -> None:
    """The test plugin's `cap` keyword passes too (a CustomStatement with its own `check`)."""
    check_statement(extras.Cap, ["domain toy\ncap speed at 2\ncap cars at 4"])


@pytest.mark.parametrize("domain", ["sinusoid", "duffing", "scenes", "toy"])
def test_domains_honour_the_contract(domain: str) -> None:
    """The built-in domains (and the toy test domain) pass every rule."""
    check_domain(domain)


# ------------------------------------------------------------------ broken distributions


class _Leaky(D.Uniform):
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return super().sample(n, generator) * 1.05  # 5% of draws land past `high`


class _GlobalRandom(D.Uniform):
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.icdf(torch.rand(n, dtype=torch.float64))


class _FiniteOutside(D.Uniform):
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, -math.log(self.high - self.low), dtype=torch.float64)


class _BatchMean(D.Uniform):
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return super().log_prob(x) + 1e-3 * (x - x.mean())


class _Skewed(D.Uniform):
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.icdf(torch.rand(n, generator=generator, dtype=torch.float64) ** 2)


def _kind(cls: type, support: Callable[[tuple[float, ...]], tuple[float, float]] = lambda a: (a[0], a[1])) -> Any:
    return gmhf.DistributionKind(name=f"broken_{cls.__name__.lower()}", params=("low", "high"),
                                 factory=lambda a: cls(*a), support=support)


@pytest.mark.parametrize("kind, rule", [
    (_kind(_Leaky), "draws leave the support"),
    (_kind(_GlobalRandom), "global generator"),
    (_kind(_FiniteOutside), "outside the support must be -inf"),
    (_kind(_BatchMean), "rows one by one"),
    (_kind(_Skewed), "do not follow `cdf`: KS statistic"),
    (_kind(D.Uniform, support=lambda a: (0.0, 0.5)), "does not contain the distribution's [low, high]"),
], ids=lambda value: value if isinstance(value, str) else value.name)
def test_broken_distribution_is_caught(kind: Any, rule: str) -> None:
    """A distribution that breaks one rule fails the contract with that rule in the message."""
    with pytest.raises(ContractError, match=re.escape(rule)):
        check_distribution(kind, (0.0, 1.0))


# ------------------------------------------------------------------ broken statements


class _Fickle(extras.Cap):
    """Rejects rows above the batch's median: its answer for a row depends on the other rows."""

    keyword = "fickle"

    def accepts(self, theta: torch.Tensor) -> torch.Tensor:
        return theta[:, self.column] <= theta[:, self.column].median()


class _Greedy(extras.Cap):
    """A soft kind whose weight (2) exceeds its declared bound (0): sampling would be wrong."""

    keyword = "greedy"
    hard = False

    def accepts(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.ones(theta.shape[0], dtype=torch.bool)

    def log_weight(self, theta: torch.Tensor) -> torch.Tensor:
        return 2.0 * (theta[:, self.column] <= self.limit).to(theta.dtype)


class _Learning(extras.Cap):
    """Holds its limit as a trainable parameter."""

    keyword = "learning"

    def __init__(self, column: int, limit: float, *, where: str = "", factor: str = "") -> None:
        super().__init__(column, limit, where=where, factor=factor)
        del self.limit
        self.limit = torch.nn.Parameter(torch.tensor(limit, dtype=torch.float64))


class _Nowhere(extras.Cap):
    """Forgets to pass `where=` on."""

    keyword = "nowhere"

    @classmethod
    def from_statement(cls, located: Any, context: C.CompileContext) -> C.Constraint:
        name, _, limit = located.statement.parts
        return cls(context.column(name.id), limit.value, factor=name.id)


class _Register:
    def __init__(self, *classes: type) -> None:
        self.classes = classes

    @gmhf.hookimpl
    def gmhf_statements(self, register: Callable[..., None]) -> None:
        for cls in self.classes:
            register(cls)


@pytest.mark.parametrize("cls, rule", [
    (_Fickle, "alone differs from its batch result"), (_Greedy, "exceeds `max_log_weight()`"),
    (_Learning, "has parameters"), (_Nowhere, "pass `where=located.where`"),
], ids=lambda value: value if isinstance(value, str) else value.__name__)
def test_broken_statement_is_caught(cls: type[C.Constraint], rule: str) -> None:
    """A statement kind that breaks one rule fails the contract with that rule in the message."""
    with using_plugins(toy, _Register(cls)), pytest.raises(ContractError, match=re.escape(rule)):
        check_statement(cls, [f"domain toy\n{cls.keyword} speed at 2"])


def test_unregistered_statement_is_reported() -> None:
    """Checking a kind whose keyword the host does not know says how to register it."""
    with pytest.raises(ContractError, match="not registered in the current plugin host"):
        check_statement(_Fickle, ["domain toy\nfickle speed at 2"])


# ------------------------------------------------------------------ broken domains


class _Broken(toy.Toy):
    """The toy domain with one flaw, chosen by `flaw`."""

    def __init__(self, name: str, flaw: str) -> None:
        self.name, self.flaw = name, flaw  # type: ignore[misc]
        if flaw == "reserved":
            self.space = FactorSpace(factors=(Factor.real("weight", 0, 1, source=("uniform", 0, 1)),),
                                     observables=(Observable(name="trace"), Observable(name="peak", shape="scalar")))

    def simulate(self, theta: Any, *, generator: Any = None, **options: Any) -> Any:
        data = super().simulate(theta, generator=generator)
        if self.flaw == "global_random":
            data["trace"] = data["trace"] + torch.rand(data["trace"].shape, dtype=theta.dtype)
        if self.flaw == "batch_scaled":
            data["trace"] = data["trace"] / theta[:, :1].max()
        return data

    def observe(self, theta: Any, data: Any) -> dict[str, Any]:
        observed = super().observe(theta, data)
        return {"trace": observed["trace"]} if self.flaw == "missing" else observed


class _Domains:
    def __init__(self, domain: gmhf.Domain) -> None:
        self.domain = domain

    @gmhf.hookimpl
    def gmhf_domains(self, register: Callable[..., None]) -> None:
        register(self.domain)


@pytest.mark.parametrize("flaw, rule", [
    ("missing", "exactly the declared observables"), ("global_random", "global generator"),
    ("batch_scaled", "row 0 simulated alone differs"), ("reserved", "cannot be written in a spec"),
])
def test_broken_domain_is_caught(flaw: str, rule: str) -> None:
    """A domain that breaks one rule fails the contract with that rule in the message."""
    domain = _Broken(f"broken_{flaw}", flaw)
    with using_plugins(_Domains(domain)), pytest.raises(ContractError, match=rule):
        check_domain(domain)


def test_unregistered_domain_is_reported() -> None:
    """A Domain instance the host does not know is reported, not checked against a namesake."""
    with pytest.raises(ContractError, match="not registered"):
        check_domain(_Broken("toy", "missing"))


def test_contract_error_lists_every_violation() -> None:
    """All broken rules are reported together, each on its own line."""
    with pytest.raises(ContractError) as raised:
        check_distribution(_kind(_Leaky), (0.0, 1.0))
    assert raised.value.violations and str(raised.value).startswith("distribution `broken__leaky(0.0, 1.0)`")
    assert str(raised.value).count("\n  - ") == len(raised.value.violations)
