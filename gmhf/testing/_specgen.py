"""Valid specs for a domain, drawn statement by statement so that every draw checks and loads.

Each factor gets one belief (none, `invariant`, an interval, an offset or scale, a prior, an interval
with a prior, a credible interval; levels for integer and categorical factors), with numbers inside
the physical bounds. Then, from the compiled marginals' medians: single-factor `require`s that keep
the median's side (at least half the mass), joint `require`s of the form `A <= median or B >= median`
(each rejects at most a quarter of the draws, so together they keep at least half), `prefer`s with
weights in [-3, 3], `expect`s over the domain's observables and an optional `trust`. Statements come
in a drawn order after `domain`: the language says order does not matter, so the specs test that.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from gmhf.dsl import ast

if TYPE_CHECKING:
    from gmhf.core.factors import Factor, FactorSpace
    from gmhf.core.registry import Registry

__all__ = ["draw_spec"]

_GRID = 20  # numbers are drawn on a 1/20 grid of a range, then rounded to 4 significant digits


def _num(x: float) -> ast.Expr:
    return ast.Number(value=x) if x >= 0 else ast.Neg(operand=ast.Number(value=-x))


def _name(name: str) -> ast.Name:
    return ast.Name(id=name)


def _nice(x: float) -> float:
    return float(f"{x:.4g}")


def _floor_nice(x: float) -> float:
    """`x` rounded down to three significant digits (amounts that must not exceed a room)."""
    if x <= 0:
        return 0.0
    unit = 10.0 ** (math.floor(math.log10(x)) - 2)
    return math.floor(x / unit) * unit


def _compare(left: ast.Expr, op: str, right: ast.Expr) -> ast.Compare:
    return ast.Compare(operands=(left, right), ops=(op,))  # type: ignore[arg-type]


class _Draws:
    """The draw function with the helpers every belief uses."""

    def __init__(self, draw: st.DrawFn, registry: Registry) -> None:
        self.draw = draw
        self.registry = registry

    def point(self, low: float, high: float, integer: bool = False) -> float:
        x = low + (high - low) * self.draw(st.integers(0, _GRID)) / _GRID
        if integer:
            return float(min(max(round(x), math.ceil(low)), math.floor(high)))
        nice = _nice(x)
        return nice if low <= nice <= high else x

    def interval(self, low: float, high: float, integer: bool = False) -> tuple[float, float]:
        if integer:
            a = self.draw(st.integers(math.ceil(low), math.floor(high) - 1))
            return float(a), float(self.draw(st.integers(a + 1, math.floor(high))))
        i = self.draw(st.integers(0, _GRID - 1))
        j = self.draw(st.integers(i + 1, _GRID))
        lo, hi = (low + (high - low) * k / _GRID for k in (i, j))
        nice = (_nice(lo), _nice(hi))
        return nice if low <= nice[0] < nice[1] <= high else (lo, hi)

    def source_support(self, factor: Factor) -> tuple[float, float]:
        kind = self.registry.distributions.get(factor.source.name)
        return kind.support(factor.source.args) if kind is not None else (-math.inf, math.inf)


def working_range(factor: Factor, d: _Draws) -> tuple[float, float] | None:
    """A finite range inside the physical bounds (and above an excluded bound), for drawing numbers."""
    s_low, s_high = d.source_support(factor)
    low = factor.low if math.isfinite(factor.low) else s_low
    high = factor.high if math.isfinite(factor.high) else s_high
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        return None
    if factor.low_open:
        low += (high - low) / 100
    if factor.kind == "integer" and math.floor(high) - math.ceil(low) < 1:
        return None
    return low, high


def _prior(d: _Draws, factor: Factor, low: float, high: float) -> ast.Statement | None:
    """A `prior F ~ dist(...)` whose centre lies in [low, high]."""
    integer = factor.kind == "integer"
    options = [n for n in (("normal",) if integer else ("normal", "uniform", "lognormal", "beta"))
               if n in d.registry.distributions]
    if high <= 0 and "lognormal" in options:
        options.remove("lognormal")
    if min(high, 1.0) - max(low, 0.0) < 0.2 and "beta" in options:
        options.remove("beta")
    if not options:
        return None
    family = d.draw(st.sampled_from(options))
    width = high - low
    if family == "normal":
        spread = d.draw(st.sampled_from((0.1, 0.25, 0.5, 1.0, 2.0)))
        args = (d.point(low, high, integer), _nice(max(width * spread, 1.0 if integer else 0.0)))
    elif family == "uniform":
        args = d.interval(low, high)
    elif family == "lognormal":
        centre = d.point(max(low, high / 100), high)
        args = (_nice(math.log(centre)), d.draw(st.sampled_from((0.05, 0.1, 0.25, 0.5))))
    else:
        shapes = st.sampled_from((0.5, 1.0, 2.0, 5.0))
        args = (d.draw(shapes), d.draw(shapes))
    call = ast.Call(func=_name(family), args=tuple(_num(a) for a in args))
    return ast.Prior(factor=_name(factor.name), dist=call)


def _between(d: _Draws, factor: Factor, low: float, high: float) -> ast.Statement:
    a, b = d.interval(low, high)
    percent = d.draw(st.sampled_from((90.0, 50.0, 80.0, 95.0, 99.0)) | st.integers(1, 99).map(float))
    return ast.PriorBetween(factor=_name(factor.name), low=_num(a), high=_num(b), percent=ast.Number(value=percent))


def _offset(d: _Draws, factor: Factor) -> ast.Statement | None:
    """`shift F by +d / -d / *k` keeping the moved source support inside the bounds (10% spare)."""
    s_low, s_high = d.source_support(factor)
    if not (math.isfinite(s_low) and math.isfinite(s_high)):
        return None
    options: list[tuple[str, float]] = []
    if math.isfinite(factor.high) and factor.high > s_high:
        options.append(("+", 0.9 * (factor.high - s_high)))
    if math.isfinite(factor.low) and s_low > factor.low:
        options.append(("-", 0.9 * (s_low - factor.low)))
    if s_low >= 0 and factor.low <= 0 and s_high > 0 and math.isfinite(factor.high):
        options.append(("*", 0.9 * factor.high / s_high))
    if not options:
        return None
    op, room = d.draw(st.sampled_from(options))
    amount = _floor_nice(room * d.draw(st.integers(1, 10)) / 10)
    if factor.kind == "integer" and op != "*":
        amount = float(math.floor(amount))
    if op == "*" and not amount > 0:
        return None
    return ast.ShiftBy(factor=_name(factor.name), op=op, amount=ast.Number(value=amount))  # type: ignore[arg-type]


def _numeric(d: _Draws, factor: Factor) -> list[ast.Statement]:
    name = _name(factor.name)
    integer = factor.kind == "integer"
    span = working_range(factor, d)
    roles = ["source", "invariant", "offset"] + (["interval", "prior", "interval_prior", "levels" if integer
                                                  else "between"] if span else [])
    role = d.draw(st.sampled_from(roles))
    if role == "invariant":
        return [ast.Invariant(factors=(name,))]
    if role == "offset":
        offset = _offset(d, factor)
        return [offset] if offset is not None else [ast.Invariant(factors=(name,))]
    if span is None or role == "source":
        return []
    low, high = span
    if role == "levels":
        s_low, s_high = d.source_support(factor)
        if factor.source.name != "uniform":  # listed values weigh by the source density: stay where it is positive
            low, high = max(low, s_low), min(high, s_high)
        pool = list(range(math.ceil(low), math.floor(high) + 1))
        values = d.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
        return [ast.ShiftLevels(factor=name, levels=tuple(ast.Number(value=float(v)) for v in sorted(values)))]
    if role == "between":
        return [_between(d, factor, low, high)]
    out: list[ast.Statement] = []
    if role == "interval_prior" or role == "interval":
        low, high = d.interval(low, high, integer)
        out.append(ast.ShiftIn(factor=name, low=_num(low), high=_num(high)))
    if role != "interval":
        prior = _prior(d, factor, low, high)
        out += [prior] if prior is not None else []
    return out


def _categorical(d: _Draws, factor: Factor) -> list[ast.Statement]:
    name = _name(factor.name)
    role = d.draw(st.sampled_from(("source", "invariant", "levels", "prior", "levels_prior")))
    if role == "source":
        return []
    if role == "invariant":
        return [ast.Invariant(factors=(name,))]
    levels = list(factor.levels)
    out: list[ast.Statement] = []
    if role != "prior":
        levels = d.draw(st.lists(st.sampled_from(levels), min_size=1, max_size=len(levels), unique=True))
        out.append(ast.ShiftLevels(factor=name, levels=tuple(_name(level) for level in levels)))
    if role != "levels" and "choice" in d.registry.distributions:
        weighted = d.draw(st.lists(st.sampled_from(levels), min_size=1, max_size=len(levels), unique=True))
        weights = [d.draw(st.sampled_from((1.0, 0.5, 2.0, 3.0))) for _ in weighted]
        call = ast.Call(func=_name("choice"), args=tuple(
            ast.NamedArg(name=_name(level), value=ast.Number(value=w)) for level, w in zip(weighted, weights, strict=True)))
        out.append(ast.Prior(factor=name, dist=call))
    return out


def _medians(statements: list[ast.Statement], registry: Registry) -> dict[str, tuple[float, float, float]]:
    """(low, median, high) of each numeric factor's believed marginal under `statements`."""
    from gmhf.core.guidance import marginal
    from gmhf.dsl.check import check
    from gmhf.testing._environments import median

    checked = check(ast.Spec(statements=tuple(statements)), registry)
    return {name: (plan.low, median(marginal(plan, registry)), plan.high)
            for name, plan in checked.factors.items() if plan.factor.kind != "categorical"}


def _truncation(d: _Draws, factor: Factor, low: float, m: float, high: float) -> ast.Statement | None:
    """`require F <= K` (or `>=`, or a chain) with the median inside what is kept."""
    integer = factor.kind == "integer"
    upper = d.point(m, high, integer) if not integer else float(math.ceil(d.point(m, high)))
    lower = d.point(low, m, integer) if not integer else float(math.floor(d.point(low, m)))
    upper, lower = max(upper, math.ceil(m) if integer else m), min(lower, math.floor(m) if integer else m)
    name = _name(factor.name)
    shape = d.draw(st.sampled_from(("upper", "lower", "chain")))
    if shape == "upper" and (integer or low < upper < high):
        return ast.Require(expr=_compare(name, "<=", _num(upper)) if d.draw(st.booleans())
                           else _compare(_num(upper), ">=", name))
    if shape == "lower" and (integer or low < lower < high):
        return ast.Require(expr=_compare(name, ">=", _num(lower)))
    if shape == "chain" and (integer or lower < upper):
        return ast.Require(expr=ast.Compare(operands=(_num(lower), name, _num(upper)), ops=("<=", "<=")))
    return None


def _half(d: _Draws, name: str, m: float) -> ast.Compare:
    """`F <= m` or `F >= m`: a condition holding for at least half the believed mass."""
    return _compare(_name(name), d.draw(st.sampled_from(("<=", ">="))), _num(float(f"{m:.6g}")))


def _condition(d: _Draws, medians: dict[str, tuple[float, float, float]], space: FactorSpace,
               single: bool) -> ast.Expr | None:
    """A condition failing for at most a quarter of the draws (a half when `single`)."""
    numeric = sorted(medians)
    categorical = [f for f in space if f.kind == "categorical"]
    if not numeric:
        return None
    a = d.draw(st.sampled_from(numeric))
    shape = d.draw(st.sampled_from(("or", "not_and", "min", "categorical", "single")))
    others = [n for n in numeric if n != a]
    if shape == "single" and single:
        return _half(d, a, medians[a][1])
    if shape == "categorical" and categorical:
        factor = d.draw(st.sampled_from(categorical))
        level = _name(d.draw(st.sampled_from(factor.levels)))
        return ast.BoolOp(op="or", operands=(_compare(_name(factor.name), "!=", level), _half(d, a, medians[a][1])))
    if not others:
        return _half(d, a, medians[a][1]) if single else None
    b = d.draw(st.sampled_from(others))
    left, right = _half(d, a, medians[a][1]), _half(d, b, medians[b][1])
    if shape == "not_and":
        flip = {"<=": ">", ">=": "<"}
        return ast.Not(operand=ast.BoolOp(op="and", operands=tuple(  # type: ignore[arg-type]
            _compare(c.operands[0], flip[c.ops[0]], c.operands[1]) for c in (left, right))))
    if shape == "min":  # min(A - mA, mB - B) <= 0, the same as A <= mA or B >= mB
        gaps = tuple(ast.Binary(op="-", left=c.operands[0], right=c.operands[1]) if c.ops[0] == "<="
                     else ast.Binary(op="-", left=c.operands[1], right=c.operands[0]) for c in (left, right))
        return _compare(ast.Call(func=_name("min"), args=gaps), "<=", ast.Number(value=0.0))
    return ast.BoolOp(op="or", operands=(left, right))


def _expect(d: _Draws, space: FactorSpace) -> ast.Statement | None:
    if not space.observables:
        return None
    observable = d.draw(st.sampled_from(space.observables))
    limit = ast.Number(value=d.draw(st.sampled_from((10.0, 1.0, 3.0, 100.0, 1e6))))
    value: ast.Expr = _name(observable.name)
    if observable.shape == "array":
        value = ast.Call(func=_name("max"), args=(ast.Call(func=_name("abs"), args=(value,)),))
    return ast.Expect(expr=_compare(value, "<", limit))


def draw_spec(draw: st.DrawFn, domain: str, space: FactorSpace, registry: Registry, *, max_requires: int,
              max_prefers: int, max_expects: int) -> ast.Spec:
    """One valid spec for `domain` (see the module docstring for what it may hold)."""
    d = _Draws(draw, registry)
    body: list[ast.Statement] = []
    for factor in space:
        body += _categorical(d, factor) if factor.kind == "categorical" else _numeric(d, factor)
    head: list[ast.Statement] = [ast.Domain(name=_name(domain))]
    medians = _medians(head + body, registry)
    if medians and max_requires:
        for name in draw(st.lists(st.sampled_from(sorted(medians)), max_size=max_requires, unique=True)):
            truncation = _truncation(d, space[name], *medians[name])
            body += [truncation] if truncation is not None else []
        medians = _medians(head + body, registry)
    conditions: list[Any] = []
    for _ in range(draw(st.integers(0, max_requires))):
        conditions.append(("require", _condition(d, medians, space, single=False)))
    for _ in range(draw(st.integers(0, max_prefers))):
        conditions.append(("prefer", _condition(d, medians, space, single=True)))
    for keyword, condition in conditions:
        if condition is not None and keyword == "require":
            body.append(ast.Require(expr=condition))
        elif condition is not None:
            weight = draw(st.sampled_from((1.0, -1.0, 2.0, 0.5, -3.0, 3.0)))
            body.append(ast.Prefer(expr=condition, weight=weight))
    for _ in range(draw(st.integers(0, max_expects))):
        expect = _expect(d, space)
        body += [expect] if expect is not None else []
    if draw(st.booleans()):
        body.append(ast.Trust(value=ast.Number(value=draw(st.integers(1, 100)) / 100)))
    return ast.Spec(statements=(*head, *draw(st.permutations(body))))
