"""gmhf's own statements, distributions, functions and learners, registered like any plugin's.

Heavy parts are named by path ("module:attribute") and imported on first use, so loading this
plugin (which `gmhf check` does) imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from gmhf.core.parameters import beta_problem, location_scale_problem
from gmhf.core.registry import DistributionKind, FunctionKind
from gmhf.dsl import intervals
from gmhf.dsl.intervals import Interval
from gmhf.plugins.hookspecs import hookimpl

_CONSTRAINTS = "gmhf.core.constraints"
_DISTRIBUTIONS = "gmhf.core.distributions"
_FUNCTIONS = "gmhf.core.functions"
INF = math.inf


@hookimpl
def gmhf_statements(register: Callable[..., None]) -> None:
    """The built-in keywords; their syntax is in grammars/guidance.lark."""
    for keyword, cls, description in (
        ("invariant", "Invariant", "target = source for these factors; the steerer never moves them"),
        ("shift", "Shift", "the believed target support, levels, offset or scale of a factor"),
        ("prior", "Prior", "the belief density of a factor"),
        ("require", "Require", "a hard constraint: truncation for one factor, rejection for several"),
        ("prefer", "Prefer", "a soft constraint: density times exp(weight) where it holds"),
        ("expect", "Expect", "a constraint on generated data over the domain's observables"),
    ):
        register(f"{_CONSTRAINTS}:{cls}", keyword=keyword, description=description)


def _ordered(args: tuple[float, ...]) -> str | None:
    return None if args[0] < args[1] else f"needs low < high, got {args[0]:g} and {args[1]:g}"


def _choice(args: tuple[float, ...]) -> str | None:
    if any(not w >= 0 for w in args) or not sum(args) > 0:
        return "weights must be >= 0 and not all 0"
    return None


@hookimpl
def gmhf_distributions(register: Callable[..., None]) -> None:
    """uniform, normal, lognormal, beta and choice."""
    unbounded: Callable[[tuple[float, ...]], Interval] = lambda a: (-INF, INF)  # noqa: E731
    for kind in (
        DistributionKind("uniform", ("low", "high"), f"{_DISTRIBUTIONS}:uniform", _ordered,
                         lambda a: (a[0], a[1]), description="uniform on [low, high]"),
        DistributionKind("normal", ("mu", "sigma"), f"{_DISTRIBUTIONS}:normal", location_scale_problem,
                         unbounded, description="normal with mean mu and standard deviation sigma"),
        DistributionKind("lognormal", ("mu", "sigma"), f"{_DISTRIBUTIONS}:lognormal", location_scale_problem,
                         lambda a: (0.0, INF), description="exp of normal(mu, sigma)"),
        DistributionKind("beta", ("a", "b"), f"{_DISTRIBUTIONS}:beta", beta_problem,
                         lambda a: (0.0, 1.0), description="beta(a, b) on [0, 1]"),
        DistributionKind("choice", (), f"{_DISTRIBUTIONS}:choice", _choice, unbounded, named=True,
                         description="levels with weights: choice(rain: 0.7, snow: 0.3)"),
    ):
        register(kind)


def _abs(a: Interval) -> Interval:
    if a[0] >= 0:
        return a
    if a[1] <= 0:
        return (-a[1], -a[0])
    return (0.0, max(-a[0], a[1]))


def _bounded_trig(a: Interval) -> Interval:
    return (-1.0, 1.0)


def _extreme(pick: Callable[..., float]) -> Callable[..., Interval]:
    def apply(*args: Interval) -> Interval:
        return (pick(a[0] for a in args), pick(a[1] for a in args))
    return apply


@hookimpl
def gmhf_functions(register: Callable[..., None]) -> None:
    """abs, min, max, exp, log, sqrt, sin, cos."""
    for kind in (
        FunctionKind("abs", 1, 1, "torch:abs", _abs, description="absolute value"),
        FunctionKind("min", 1, 16, f"{_FUNCTIONS}:minimum", _extreme(min), reduces=True,
                     description="min of one array (reduced) or of several values (elementwise)"),
        FunctionKind("max", 1, 16, f"{_FUNCTIONS}:maximum", _extreme(max), reduces=True,
                     description="max of one array (reduced) or of several values (elementwise)"),
        FunctionKind("exp", 1, 1, "torch:exp", intervals.monotone(math.exp), description="e to the x"),
        FunctionKind("log", 1, 1, "torch:log", intervals.monotone(math.log), description="natural logarithm"),
        FunctionKind("sqrt", 1, 1, "torch:sqrt", intervals.monotone(math.sqrt), description="square root"),
        FunctionKind("sin", 1, 1, "torch:sin", _bounded_trig, description="sine (radians)"),
        FunctionKind("cos", 1, 1, "torch:cos", _bounded_trig, description="cosine (radians)"),
    ):
        register(kind)


@hookimpl
def gmhf_learners(register: Callable[..., None]) -> None:
    """MAML, first-order MAML, ANIL, Reptile and ProtoNet (imported when first used)."""
    for name, cls in (("maml", "MAML"), ("fomaml", "FirstOrderMAML"), ("anil", "ANIL"), ("reptile", "Reptile"),
                      ("protonet", "ProtoNet")):
        register(name, f"gmhf.core.learners:{cls}")


@hookimpl
def gmhf_experts(register: Callable[..., None]) -> None:
    """`simulated:P` (knows the truth; for experiments) and `terminal` (a person at a prompt)."""
    register("simulated", "gmhf.experts.simulated:SimulatedExpert")
    register("terminal", "gmhf.experts.terminal:TerminalExpert")
