"""bench/dsl.py's measures 2-4: compile and sample specs on factor-only test domains, registered as a plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from dsl_measures import SEED, Goal, Measure, duration, rate, timings  # bench/dsl_measures.py (run as a script)

import gmhf
from gmhf.api import check_text
from gmhf.core.domain import Domain
from gmhf.core.factors import Factor, FactorSpace
from gmhf.plugins.hookspecs import hookimpl
from gmhf.plugins.manager import using_plugins


class BenchDomain(Domain):
    """Factors only: compiling and sampling a spec never simulates, so this domain cannot."""

    name = "bench"
    description = "benchmark domain: real factors f0, f1, ... on [0, 10], source uniform(1, 5)"
    space = FactorSpace(factors=(Factor.real("f0", 0.0, 10.0, source=("uniform", 1.0, 5.0)),))

    def simulate(self, theta: torch.Tensor, *, generator: torch.Generator | None = None, **options: Any) -> Any:
        """Not needed by the benchmark."""
        raise NotImplementedError("the benchmark domain has no simulator")

    def observe(self, theta: torch.Tensor, data: Any) -> dict[str, torch.Tensor]:
        """Not needed by the benchmark."""
        raise NotImplementedError("the benchmark domain has no observables")


def bench_domain(name: str, factors: int) -> Domain:
    """A `BenchDomain` called `name` with real factors f0 … f{factors-1}."""
    space = FactorSpace(factors=tuple(Factor.real(f"f{i}", 0.0, 10.0, source=("uniform", 1.0, 5.0))
                                      for i in range(factors)))
    return type(f"BenchDomain{factors}", (BenchDomain,), {"name": name, "space": space})()


class BenchPlugin:
    """Registers the benchmark domains through the hook, exactly as an installed plugin would."""

    def __init__(self, *domains: Domain) -> None:
        self.domains = domains

    @hookimpl
    def gmhf_domains(self, register: Callable[..., None]) -> None:
        """The benchmark domains."""
        for domain in self.domains:
            register(domain)


SMALL_SPEC = """\
domain bench5
shift f0 in 2 .. 6
prior f1 ~ normal(4, 1)
shift f2 by +0.5
prior f3 between 2 and 4 with 90%
require f0 < 2 * f1
require f2 + f3 < 8
"""


def big_spec(factors: int = 200, requires: int = 40) -> str:
    """Shifts and priors on three factors in four, and `requires` joint requires over disjoint pairs."""
    lines = [f"domain bench{factors}"]
    for i in range(factors):
        lines.append((f"shift f{i} in 2 .. 6", f"prior f{i} ~ normal(3, 1)", f"shift f{i} by *1.2", "")[i % 4])
    lines += [f"require f{2 * j} < 3 * f{2 * j + 1} + 1" for j in range(requires)]
    return "\n".join(line for line in lines if line) + "\n"


def guidance_measures(label: str, text: str, compile_goal: Goal, n: int, sample_goal: Goal) -> list[Measure]:
    """Compile time (text -> Guidance, including the 10,000-draw probe) and sampling throughput."""
    compiled = duration(f"compile {label}", "ms", compile_goal, timings(lambda: gmhf.load(text)))
    front = duration("parse+check", "ms", None, timings(lambda: check_text(text)))
    if front.median is not None and compiled.median:
        compiled.note = f"parse+check alone {front.median:.2f} ms ({front.median / compiled.median:.0%})"
    guidance = gmhf.load(text)
    sampled = rate(f"sample {label}, n={n:,}", n, "samples/s", sample_goal,
                   timings(lambda: guidance.sample(n, seed=SEED)))
    sampled.note = f"joint acceptance rate {guidance.explain()['acceptance_rate']:.2f} (compile-time probe)"
    return [compiled, sampled]


def compile_and_sample_measures() -> list[Measure]:
    """Measures 2-4, on two benchmark domains registered through a local plugin."""
    plugin = BenchPlugin(bench_domain("bench5", 5), bench_domain("bench200", 200))
    with using_plugins(plugin):
        small = guidance_measures("5 factors/2 requires", SMALL_SPEC, Goal("<=", 3), 100_000, Goal(">=", 1e6))
        big = guidance_measures("200 factors/40 requires", big_spec(), Goal("<=", 50), 20_000, Goal(">=", 1e5))
    return [small[0], big[0], small[1], big[1]]

