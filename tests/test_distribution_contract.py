"""Every built-in distribution honours `check_distribution` where it is hard: ordinary parameters, the
edges of the documented ranges, far tails, narrow supports, small beta shapes; specs over a real, an
integer and a categorical factor, under a one-factor `require` and a `by` shift, sample what scipy
says; a distribution with a density off by a constant or a sampler that cuts its tail is rejected.

Every statistical rule runs at level 1e-3 with a fixed seed: 20,000 draws give a KS critical value
of 0.0138 and let a chi-square see a 1% tail go missing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats

import gmhf
from gmhf.core import distributions as D
from gmhf.plugins.manager import PluginHost, build_host
from gmhf.testing.contracts import ContractError, check_distribution

N = 20_000
KS_CRITICAL = 1.95 / math.sqrt(N)  # the 0.1% critical value
E = math.e

# (name, args, truncations checked besides the whole support, the central half and far tails)
ORDINARY = [
    ("uniform", (1.0, 3.0), ()), ("normal", (0.0, 1.0), ()), ("normal", (50.0, 10.0), ()),
    ("lognormal", (0.0, 0.5), ()), ("lognormal", (-2.0, 1.0), ()), ("beta", (2.0, 5.0), ()),
    ("beta", (0.5, 0.5), ()), ("choice", (1.0, 0.0, 2.0), ()), ("choice", (4.0, 2.0, 1.0, 1.0), ()),
]
RANGE_EDGES = [
    ("uniform", (0.0, 1e-9), ()), ("uniform", (-1e300, 1e300), ()), ("uniform", (1e6, 1e6 + 1e-3), ()),
    ("normal", (1.0, 1e-9), ()), ("normal", (0.0, 1e6), ()),
    ("lognormal", (0.0, 1e-3), ()), ("lognormal", (0.0, 3.0), ()),
    ("beta", (1.0, 1.0), ()), ("beta", (1e6, 1e6), ()),
    ("choice", (1.0,), ()), ("choice", (1e-9, 1.0), ()), ("choice", tuple(float(k + 1) for k in range(50)), ()),
]
FAR_TAILS = [
    ("normal", (0.0, 1.0), ((10.0, 11.0), (30.0, 31.0), (-11.0, -10.0), (-31.0, -30.0))),
    ("normal", (50.0, 10.0), ((150.0, 160.0), (350.0, 360.0))),
    ("lognormal", (0.0, 1.0), ((E**10, E**11), (E**30, E**31))),
    ("beta", (2.0, 2.0), ((0.0, 1e-6), (1 - 1e-6, 1.0))),
    ("beta", (2.0, 50.0), ((0.5, 1.0),)),
]
NARROW = [
    ("normal", (0.0, 1.0), ((-5e-10, 5e-10),)), ("normal", (50.0, 10.0), ((50 - 5e-10, 50 + 5e-10),)),
    ("uniform", (1.0, 3.0), ((2.0, 2.0 + 1e-9),)), ("lognormal", (0.0, 0.5), ((1.0, 1.0 + 1e-9),)),
    ("beta", (2.0, 5.0), ((0.2, 0.2 + 1e-9),)),
]
SMALL_SHAPES = [("beta", (0.2, 2.0), ()), ("beta", (0.01, 1.0), ()), ("beta", (2.0, 0.2), ())]
TABLE = [*ORDINARY, *RANGE_EDGES, *FAR_TAILS, *NARROW, *SMALL_SHAPES]


def _id(case: tuple[str, tuple[float, ...], tuple[tuple[float, float], ...]]) -> str:
    name, args, cuts = case
    text = f"{name}({', '.join(f'{a:g}' for a in args[:4])}{', …' if len(args) > 4 else ''})"
    return text + "".join(f"[{a:.10g},{b:.10g}]" for a, b in cuts)


def test_table_covers_every_builtin_distribution() -> None:
    """The table names every distribution the builtin plugin registers, so none goes unchecked."""
    host = build_host(entry_points=[], env={})
    builtin = {name for (kind, name), plugin in host.build().origins.items() if kind == "distributions"
               and plugin == "builtin"}
    assert builtin == {name for name, _, _ in TABLE}


@pytest.mark.parametrize("case", TABLE, ids=_id)
def test_builtin_distribution_honours_the_contract(toy_plugins: PluginHost, case: Any) -> None:
    """`check_distribution` passes: whole, central half, far tails and the listed truncations."""
    name, args, cuts = case
    check_distribution(toy_plugins.registry.distributions[name], args, samples=N, truncations=cuts)


# ------------------------------------------------------------------ against scipy


def _scipy(name: str, args: tuple[float, ...]) -> Any:
    a, b = args
    return {"uniform": lambda: stats.uniform(a, b - a), "normal": lambda: stats.norm(a, b),
            "lognormal": lambda: stats.lognorm(b, scale=math.exp(a)), "beta": lambda: stats.beta(a, b)}[name]()


def _truncated_cdf(ref: Any, low: float, high: float) -> Any:
    """scipy's CDF of `ref` on [low, high], through the survival function in an upper tail."""
    if ref.cdf(low) > 0.5:
        s_low, s_high = ref.sf(low), ref.sf(high)
        return lambda x: (s_low - ref.sf(x)) / (s_low - s_high)
    f_low, f_high = ref.cdf(low), ref.cdf(high)
    return lambda x: (ref.cdf(x) - f_low) / (f_high - f_low)


def _ks(draws: torch.Tensor, cdf: Any) -> float:
    x = draws.sort().values.numpy()
    u = torch.as_tensor(cdf(x), dtype=torch.float64)
    below = torch.as_tensor(cdf(np.nextafter(x, -np.inf)), dtype=torch.float64)  # float64 rounding makes atoms
    n = len(x)
    steps = torch.arange(1, n + 1, dtype=torch.float64) / n
    return float(torch.maximum(steps - u, below - (steps - 1 / n)).max())


@pytest.mark.parametrize("case", [c for c in TABLE if c[0] != "choice"], ids=_id)
def test_builtin_distribution_matches_scipy(toy_plugins: PluginHost, case: Any) -> None:
    """Draws, whole and truncated, pass a KS test against scipy's CDF; log_prob equals scipy's logpdf."""
    name, args, cuts = case
    dist = toy_plugins.registry.distributions[name].build(args)
    ref = _scipy(name, args)
    for low, high in ((dist.low, dist.high), *cuts):
        view = D.truncate(dist, low, high)
        draws = view.sample(N, torch.Generator().manual_seed(1))
        ks = _ks(draws, _truncated_cdf(ref, max(low, dist.low), min(high, dist.high)))
        assert ks <= KS_CRITICAL, f"{name}{args} on [{low:g}, {high:g}]: KS {ks:.4f} > {KS_CRITICAL:.4f}"
        x = draws[:: N // 64]
        expected = torch.as_tensor(ref.logpdf(x.numpy()), dtype=torch.float64)
        if (low, high) != (dist.low, dist.high):
            expected = expected - math.log(float(view.mass))
        assert torch.allclose(view.log_prob(x), expected, rtol=1e-6, atol=1e-6), f"{name}{args} on [{low:g}, {high:g}]"


# Specs on the toy domain: speed real [0, 10] ~ uniform(1, 3); mass real [0, 100] ~ normal(50, 10);
# cars integer [0, 20] ~ uniform(0, 10); weather categorical (clear, rain, snow, fog) weighted 4, 2, 1, 1.
REAL_SPECS = [
    ("prior mass ~ normal(50, 10)\nrequire mass > 75", "mass", stats.norm(50, 10), (75.0, 100.0)),
    ("require mass > 95", "mass", stats.norm(50, 10), (95.0, 100.0)),
    ("prior mass ~ normal(10, 1)\nrequire mass > 40", "mass", stats.norm(10, 1), (40.0, 100.0)),
    ("shift mass by +20\nrequire mass < 60", "mass", stats.norm(70, 10), (0.0, 60.0)),
    ("shift mass by *1.5\nrequire 60 < mass < 90", "mass", stats.norm(75, 15), (60.0, 90.0)),
    ("shift speed by *2\nrequire speed > 5", "speed", stats.uniform(2, 4), (5.0, 6.0)),
    ("shift speed by +0.5\nrequire speed <= 2", "speed", stats.uniform(1.5, 2), (1.5, 2.0)),
    ("prior speed ~ lognormal(0, 0.5)\nrequire speed > 3", "speed", stats.lognorm(0.5), (3.0, 10.0)),
    ("prior speed ~ beta(0.2, 2)\nrequire speed < 0.001", "speed", stats.beta(0.2, 2), (0.0, 0.001)),
]
DISCRETE_SPECS = [
    ("prior cars ~ normal(3, 2)\nrequire cars >= 2", "cars",
     {k: stats.norm(3, 2).pdf(k) for k in range(2, 21)}),
    ("shift cars by +4\nrequire cars <= 8", "cars", dict.fromkeys(range(4, 9), 1.0)),
    ("shift cars by *1.5\nrequire cars > 3", "cars", dict.fromkeys(range(4, 16), 1.0)),
    ("prior cars ~ lognormal(1, 0.5)\nrequire cars < 6", "cars", {k: stats.lognorm(0.5, scale=E).pdf(k)
                                                                  for k in range(1, 6)}),
    ("require weather != fog", "weather", {0: 4.0, 1: 2.0, 2: 1.0}),
    ("prior weather ~ choice(rain: 1, snow: 2, fog: 3)\nrequire weather != fog", "weather", {1: 1.0, 2: 2.0}),
    ("shift weather in [rain, snow, fog]\nrequire weather != rain", "weather", {2: 1.0, 3: 1.0}),
]


@pytest.mark.parametrize("text, factor, ref, bounds", REAL_SPECS, ids=[s[0].replace("\n", "; ") for s in REAL_SPECS])
def test_spec_real_factor_matches_scipy(text: str, factor: str, ref: Any, bounds: tuple[float, float]) -> None:
    """A real factor under a one-factor `require` (and a prior or a `by` shift) is scipy's truncated law."""
    theta = gmhf.load(f"domain toy\n{text}\n").sample(N, seed=0)
    draws = theta.values[:, theta.names.index(factor)]
    assert bool(((draws >= bounds[0]) & (draws <= bounds[1])).all())
    ks = _ks(draws, _truncated_cdf(ref, *bounds))
    assert ks <= KS_CRITICAL, f"KS {ks:.4f} > {KS_CRITICAL:.4f}"


@pytest.mark.parametrize("text, factor, weights", DISCRETE_SPECS,
                         ids=[s[0].replace("\n", "; ") for s in DISCRETE_SPECS])
def test_spec_discrete_factor_matches_scipy(text: str, factor: str, weights: dict[int, float]) -> None:
    """An integer or categorical factor under a one-factor `require` has the expected frequencies (chi-square)."""
    theta = gmhf.load(f"domain toy\n{text}\n").sample(N, seed=0)
    draws = theta.values[:, theta.names.index(factor)]
    values = sorted(weights)
    assert set(draws.unique().tolist()) <= set(map(float, values))
    observed = [int((draws == v).sum()) for v in values]
    total = sum(weights.values())
    expected = [N * weights[v] / total for v in values]
    if len(values) > 1:
        assert stats.chisquare(observed, expected).pvalue >= 1e-3, (observed, expected)


# ------------------------------------------------------------------ wrong distributions are rejected


class _Wrapped:
    """A distribution that forwards everything to `base` except what a subclass overrides."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.low, self.high = base.low, base.high

    def __getattr__(self, name: str) -> Any:
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.base.sample(n, generator)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.log_prob(x)


class _OffByLog2(_Wrapped):
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.log_prob(x) + math.log(2)


class _CutTail(_Wrapped):
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.base.icdf(0.99 * torch.rand(n, generator=generator, dtype=torch.float64))


def _broken(host: PluginHost, wrapper: type, base: str) -> gmhf.DistributionKind:
    kind = host.registry.distributions[base]
    return gmhf.DistributionKind(name=f"{wrapper.__name__.strip('_').lower()}_{base}", params=kind.params,
                                 factory=lambda a: wrapper(kind.build(a)), support=kind.support)


@pytest.mark.parametrize("base, args", [("normal", (0.0, 1.0)), ("triangular", (0.0, 1.0, 3.0))])
@pytest.mark.parametrize("wrapper, rule", [(_OffByLog2, "integrates to 2"), (_CutTail, "in its tails")],
                         ids=["density-off-by-log-2", "upper-tail-cut-at-99%"])
def test_wrong_distribution_is_rejected(toy_plugins: PluginHost, base: str, args: tuple[float, ...],
                                        wrapper: type, rule: str) -> None:
    """A density off by log 2, or a sampler cutting its upper 1%, fails `check_distribution` by that rule."""
    with pytest.raises(ContractError, match=rule):
        check_distribution(_broken(toy_plugins, wrapper, base), args, samples=N)
