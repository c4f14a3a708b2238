"""The meaning of each built-in statement, as checks that fill in the per-factor plan.

One `check_<keyword>` rule per statement node, found through `RULES` (node class -> rule);
`finalize` then settles each factor's believed distribution once every statement has been seen, so
the order of statements does not matter.
docs/language.md states the same rules for people.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING

from gmhf.dsl import ast
from gmhf.dsl.errors import did_you_mean
from gmhf.dsl.plan import CheckedSpec, Checker, FactorPlan, Located

if TYPE_CHECKING:
    from gmhf.core.factors import Factor

__all__ = ["MAX_PREFER_WEIGHT", "RULES", "Claims", "Rule", "between_normal", "finalize"]

#: The largest |weight| of a `prefer` (see `check_prefer`).
MAX_PREFER_WEIGHT = 700.0
#: Factor name -> the statement that claimed it (a shift or invariant) or gave its prior.
Claims = dict[str, Located]
#: A statement's rule: checks it and records its meaning in the spec's plan.
Rule = Callable[[Checker, Located, CheckedSpec, Claims, Claims], None]


def _claim(checker: Checker, item: Located, name: ast.Name, claims: Claims, priors: Claims) -> bool:
    """Record that `item` defines factor `name`; report a clash with an earlier statement."""
    earlier = claims.get(name.id)
    stmt = item.statement
    if earlier is not None:
        before = earlier.statement
        if isinstance(before, ast.Invariant) and isinstance(stmt, ast.Invariant):
            checker.conflict(item, name, f"`{name.id}` is declared invariant twice", earlier,
                             "first declared invariant here")
        elif isinstance(before, ast.Invariant) or isinstance(stmt, ast.Invariant):
            checker.conflict(item, name, f"`{name.id}` is both invariant and shifted", earlier,
                             f"`{name.id}` was {'declared invariant' if isinstance(before, ast.Invariant) else 'shifted'}"
                             " here")
        else:
            checker.conflict(item, name, f"`{name.id}` is shifted twice", earlier, "first shifted here")
        return False
    prior = priors.get(name.id)
    if prior is not None and isinstance(stmt, ast.Invariant | ast.ShiftBy):
        what = "invariant" if isinstance(stmt, ast.Invariant) else "shifted by an offset or scale"
        checker.conflict(item, name, f"`{name.id}` has a prior and is {what}", prior, "the prior is given here")
        return False
    claims[name.id] = item
    return True


def check_invariant(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims, priors: Claims) -> None:
    for name in item.statement.factors:  # type: ignore[union-attr]
        if checker.factor(item, name, spec.space) and _claim(checker, item, name, claims, priors):
            plan = spec.factors[name.id]
            plan.mode, plan.invariant = "invariant", True
            plan.touched_by.append(item)


def _shift_target(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims,
                  priors: Claims) -> FactorPlan | None:
    name = item.statement.factor  # type: ignore[union-attr]
    factor = checker.factor(item, name, spec.space)
    if factor is None or not _claim(checker, item, name, claims, priors):
        return None
    plan = spec.factors[name.id]
    plan.flagged = True
    plan.touched_by.append(item)
    return plan


def check_shift_in(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims, priors: Claims) -> None:
    stmt: ast.ShiftIn = item.statement  # type: ignore[assignment]
    factor = spec.space[stmt.factor.id] if stmt.factor.id in spec.space else None
    if factor is not None and factor.kind == "categorical":
        checker.error(item, stmt, f"an interval on the categorical factor `{factor.name}`",
                      hint=f"give levels instead: `shift {factor.name} in [{', '.join(factor.levels[:2])}]`")
        return
    low = checker.constant(item, stmt.low, spec.space)
    high = checker.constant(item, stmt.high, spec.space)
    if factor is not None and factor.low_open and low == factor.low:
        checker.error(item, stmt.low, f"`{factor.name}` excludes its bound {low:g} ({factor.bounds_text()})",
                      hint="start the interval just above it")
        return
    plan = _shift_target(checker, item, spec, claims, priors)
    if plan is None or low is None or high is None:
        return
    if not low < high:
        checker.error(item, stmt.low, f"empty interval: {low:g} .. {high:g} needs low < high")
        return
    if low < plan.factor.low or high > plan.factor.high:
        checker.error(item, stmt, f"support {low:g} .. {high:g} reaches outside the physical bounds "
                      f"{plan.factor.bounds_text()} of `{plan.factor.name}`")
        return
    plan.mode, plan.low, plan.high = "interval", low, high
    if plan.factor.name not in priors:  # a prior given earlier keeps its density, now truncated
        plan.dist = ("uniform", (low, high))


def check_shift_levels(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims, priors: Claims) -> None:
    stmt: ast.ShiftLevels = item.statement  # type: ignore[assignment]
    factor = spec.space[stmt.factor.id] if stmt.factor.id in spec.space else None
    if factor is not None and factor.kind == "real":
        checker.error(item, stmt, f"a level list on the real factor `{factor.name}`",
                      hint=f"give an interval instead: `shift {factor.name} in LOW .. HIGH`")
        return
    plan = _shift_target(checker, item, spec, claims, priors)
    if plan is None:
        return
    values: list[float] = []
    for level in stmt.levels:
        if plan.factor.kind == "categorical":
            if not isinstance(level, ast.Name) or level.id not in plan.factor.levels:
                text = level.id if isinstance(level, ast.Name) else str(level.value)
                checker.error(item, level, f"unknown level `{text}` of `{plan.factor.name}`",
                              did_you_mean(text, plan.factor.levels))
                continue
            value = float(plan.factor.levels.index(level.id))
        else:
            if not isinstance(level, ast.Number) or not level.value.is_integer():
                checker.error(item, level, f"levels of the integer factor `{plan.factor.name}` must be integers")
                continue
            value = level.value
            if not plan.factor.low <= value <= plan.factor.high:
                checker.error(item, level, f"level {value:g} is outside the physical bounds "
                              f"{plan.factor.bounds_text()} of `{plan.factor.name}`")
                continue
        if value in values:
            checker.error(item, level, "level listed twice")
        values.append(value)
    plan.mode, plan.levels = "levels", tuple(sorted(set(values)))


def check_shift_by(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims, priors: Claims) -> None:
    stmt: ast.ShiftBy = item.statement  # type: ignore[assignment]
    factor = spec.space[stmt.factor.id] if stmt.factor.id in spec.space else None
    if factor is not None and factor.kind == "categorical":
        checker.error(item, stmt, f"`by` needs a numeric factor; `{factor.name}` is categorical",
                      hint=f"give levels instead: `shift {factor.name} in [...]`")
        return
    plan = _shift_target(checker, item, spec, claims, priors)
    if plan is None:
        return
    amount = stmt.amount.value
    if not math.isfinite(amount):
        checker.error(item, stmt.amount, f"the amount must be a finite number, got {amount:g}",
                      hint="a literal beyond ±1.8e308 does not fit a float64")
        return
    if stmt.op == "*" and not amount > 0:
        checker.error(item, stmt.amount, f"a scale must be > 0, got {amount:g}")
        return
    offset = amount if stmt.op == "+" else -amount if stmt.op == "-" else 0.0
    scale = amount if stmt.op == "*" else 1.0
    kind = checker.registry.distributions.get(plan.factor.source.name)
    low, high = kind.support(plan.factor.source.args) if kind else (-math.inf, math.inf)
    low, high = offset + scale * low, offset + scale * high
    if (math.isfinite(low) and low < plan.factor.low) or (math.isfinite(high) and high > plan.factor.high):
        checker.error(item, stmt, f"the shifted source support {low:g} .. {high:g} reaches outside the physical "
                      f"bounds {plan.factor.bounds_text()} of `{plan.factor.name}`")
        return
    plan.mode = "offset" if stmt.op in "+-" else "scale"
    plan.offset, plan.scale = offset, scale
    plan.low, plan.high = max(plan.factor.low, low), min(plan.factor.high, high)


def _prior_target(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims,
                  priors: Claims) -> FactorPlan | None:
    name = item.statement.factor  # type: ignore[union-attr]
    if checker.factor(item, name, spec.space) is None:
        return None
    if name.id in priors:
        checker.conflict(item, name, f"`{name.id}` has two priors", priors[name.id], "the first prior is here")
        return None
    claim = claims.get(name.id)
    if claim is not None and isinstance(claim.statement, ast.Invariant | ast.ShiftBy):
        what = "invariant" if isinstance(claim.statement, ast.Invariant) else "shifted by an offset or scale"
        checker.conflict(item, name, f"`{name.id}` has a prior and is {what}", claim, "declared here")
        return None
    priors[name.id] = item
    plan = spec.factors[name.id]
    plan.flagged = True
    plan.touched_by.append(item)
    return plan


def check_prior(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims, priors: Claims) -> None:
    stmt: ast.Prior = item.statement  # type: ignore[assignment]
    call = stmt.dist
    kind = checker.registry.distributions.get(call.func.id)
    if kind is None:
        if call.func.id in checker.registry.functions:
            checker.error(item, call.func, f"`{call.func.id}` is a function, not a distribution",
                          did_you_mean(call.func.id, checker.registry.distributions))
        else:
            checker.error(item, call.func, f"unknown distribution `{call.func.id}`",
                          did_you_mean(call.func.id, checker.registry.distributions))
        return
    factor = spec.space[stmt.factor.id] if stmt.factor.id in spec.space else None
    if factor is not None and (factor.kind == "categorical") != kind.named:
        if kind.named:
            checker.error(item, call, f"`{kind.name}` is for categorical factors; `{factor.name}` is {factor.kind}")
        else:
            named = [k.name for k in checker.registry.distributions.values() if k.named]
            checker.error(item, call, f"the categorical factor `{factor.name}` needs a distribution over levels",
                          hint=f"use `{named[0] if named else 'choice'}(level: weight, ...)`")
        return
    if kind.named:
        args = _named_weights(checker, item, call, factor)
    else:
        args = _positional(checker, item, call, kind.params, spec)
    if args is None:
        return
    problem = kind.validate(args)
    if problem:
        checker.error(item, call, f"bad parameters for `{kind.name}`: {problem}")
        return
    plan = _prior_target(checker, item, spec, claims, priors)
    if plan is not None:
        plan.dist = (kind.name, args)
        plan.mode = plan.mode if plan.mode in ("interval", "levels") else "prior"


def _positional(checker: Checker, item: Located, call: ast.Call, params: tuple[str, ...],
                spec: CheckedSpec) -> tuple[float, ...] | None:
    if len(call.args) != len(params):
        checker.error(item, call, f"`{call.func.id}` takes {len(params)} argument{'s' if len(params) != 1 else ''} "
                      f"({', '.join(params)}), got {len(call.args)}")
        return None
    values = []
    for arg in call.args:
        if isinstance(arg, ast.NamedArg):
            checker.error(item, arg, f"`{call.func.id}` takes no named arguments")
            return None
        value = checker.constant(item, arg, spec.space)
        if value is None:
            return None
        values.append(value)
    return tuple(values)


def _named_weights(checker: Checker, item: Located, call: ast.Call, factor: object) -> tuple[float, ...] | None:
    levels: tuple[str, ...] = getattr(factor, "levels", ())
    weights = dict.fromkeys(levels, 0.0)
    seen: set[str] = set()
    ok = bool(call.args)
    if not call.args:
        checker.error(item, call, f"`{call.func.id}` needs `level: weight` arguments")
    for arg in call.args:
        if not isinstance(arg, ast.NamedArg):
            checker.error(item, arg, f"`{call.func.id}` takes `level: weight` arguments")
            ok = False
        elif arg.name.id in seen:
            checker.error(item, arg.name, f"level `{arg.name.id}` given twice")
            ok = False
        elif arg.name.id not in weights:
            checker.error(item, arg.name, f"unknown level `{arg.name.id}`", did_you_mean(arg.name.id, levels))
            ok = False
        elif not isinstance(arg.value, ast.Number):
            checker.error(item, arg.value, "a weight must be a number")
            ok = False
        else:
            weights[arg.name.id] = arg.value.value
            seen.add(arg.name.id)
    return tuple(weights.values()) if ok else None


def check_prior_between(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims, priors: Claims) -> None:
    stmt: ast.PriorBetween = item.statement  # type: ignore[assignment]
    factor = spec.space[stmt.factor.id] if stmt.factor.id in spec.space else None
    if factor is not None and factor.kind == "categorical":
        checker.error(item, stmt, f"`between` needs a numeric factor; `{factor.name}` is categorical")
        return
    low = checker.constant(item, stmt.low, spec.space)
    high = checker.constant(item, stmt.high, spec.space)
    percent = stmt.percent.value
    if not 0 < percent < 100:
        checker.error(item, stmt.percent, f"the percentage must be in (0, 100), got {percent:g}",
                      hint="90% is a common choice for a credible interval")
        return
    if low is None or high is None:
        return
    if not low < high:
        checker.error(item, stmt.low, f"empty interval: {low:g} and {high:g} needs the first below the second")
        return
    if factor is not None and not _between_within_bounds(checker, item, factor, low, high):
        return
    mu, sigma = between_normal(low, high, percent)
    if not math.isfinite(sigma):
        checker.error(item, stmt.percent, f"{percent:g}% is too small a share: the normal it implies is wider "
                      "than float64 can hold", hint="a belief this vague is no belief; drop the statement")
        return
    plan = _prior_target(checker, item, spec, claims, priors)
    if plan is not None:
        plan.dist = ("normal", (mu, sigma))
        plan.mode = plan.mode if plan.mode in ("interval", "levels") else "prior"


def _between_within_bounds(checker: Checker, item: Located, factor: Factor, low: float, high: float) -> bool:
    """A believed interval wholly outside the physical bounds is an error (often a units mistake);
    one more than half outside is a warning. False after an error."""
    inside = max(0.0, min(high, factor.high) - max(low, factor.low))
    where = f"{low:g} .. {high:g} lies {{}} the physical bounds {factor.bounds_text()} of `{factor.name}`"
    if inside == 0.0:
        checker.error(item, item.statement, where.format("outside"),
                      hint="check the units; a belief must overlap the values the factor can take")
        return False
    if inside < (high - low) / 2:
        checker.warn(item, item.statement, where.format("mostly outside") + f" ({inside / (high - low):.0%} inside)",
                     hint="the prior is truncated to the bounds, so its samples pile up at the bound")
    return True


def check_require(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims, priors: Claims) -> None:
    spec.requires.append(item)


def check_prefer(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims, priors: Claims) -> None:
    """`prefer E weight w` needs a finite |w| <= `MAX_PREFER_WEIGHT` (700).

    e^700 ≈ 1e304 is near the end of float64 (e^709.8 overflows). Odds that large are no longer a
    preference, and a bigger weight means "always": say so with `require E`.
    """
    weight = item.statement.weight  # type: ignore[union-attr]
    if not (math.isfinite(weight) and abs(weight) <= MAX_PREFER_WEIGHT):
        checker.error(item, item.statement, f"`prefer` weight must be between -{MAX_PREFER_WEIGHT:g} and "
                      f"{MAX_PREFER_WEIGHT:g}, got {weight:g}",
                      hint="e^700 ≈ 1e304 already makes the condition all but certain; for a hard rule "
                           "write `require` instead")
        return
    spec.prefers.append(item)


def check_expect(checker: Checker, item: Located, spec: CheckedSpec, claims: Claims, priors: Claims) -> None:
    spec.expects.append(item)


def between_normal(low: float, high: float, percent: float) -> tuple[float, float]:
    """The normal with `percent`% of its mass on [low, high], centred on it: (mu, sigma)."""
    z = statistics.NormalDist().inv_cdf(0.5 + percent / 200)
    if z <= 0.0:  # 0.5 + percent/200 rounded to 0.5: the first-order series is exact at this size
        z = percent / 200 * math.sqrt(2 * math.pi)
    return (low + high) / 2, (high - low) / (2 * z)


def finalize(checker: Checker, spec: CheckedSpec, priors: Claims) -> None:
    """Intersect each prior's support with the factor's bounds; an empty result is an error."""
    for name, item in priors.items():
        plan = spec.factors[name]
        if plan.factor.kind == "categorical":
            weights = plan.dist[1]
            if plan.levels is not None:
                weights = tuple(w if i in plan.levels else 0.0 for i, w in enumerate(weights))
            if not sum(weights) > 0:
                checker.error(item, item.statement, f"the prior gives no weight to the levels `{name}` may take")
            plan.dist = ("choice", weights)
            continue
        kind = checker.registry.distributions[plan.dist[0]]
        low, high = kind.support(plan.dist[1])
        if not max(low, plan.low) < min(high, plan.high):
            checker.error(item, item.statement, f"the prior's support [{low:g}, {high:g}] does not meet the "
                          f"allowed values [{plan.low:g}, {plan.high:g}] of `{name}`")
        else:
            plan.low, plan.high = max(low, plan.low), min(high, plan.high)
    for plan in spec.factors.values():
        source = checker.registry.distributions.get(plan.factor.source.name)
        if plan.mode in ("source", "invariant") and plan.factor.kind != "categorical" and source is not None:
            low, high = source.support(plan.factor.source.args)  # values live where the source puts mass
            plan.low, plan.high = max(plan.low, low), min(plan.high, high)
        if plan.factor.kind == "categorical" and plan.levels is not None and plan.factor.name not in priors:
            plan.dist = ("choice", tuple(1.0 if i in plan.levels else 0.0 for i in range(len(plan.factor.levels))))


#: The rule of each built-in statement node; `check` looks a statement's class up here. Statements
#: with no entry are handled by the driver: `domain`, `use` and `trust` before the rules run, and
#: plugin statements (`CustomStatement`) through the registry.
RULES: dict[type[ast.Node], Rule] = {
    ast.Invariant: check_invariant,
    ast.ShiftIn: check_shift_in,
    ast.ShiftLevels: check_shift_levels,
    ast.ShiftBy: check_shift_by,
    ast.Prior: check_prior,
    ast.PriorBetween: check_prior_between,
    ast.Require: check_require,
    ast.Prefer: check_prefer,
    ast.Expect: check_expect,
}
