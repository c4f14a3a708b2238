"""Checking expressions against a factor space: names, calls, types, constants and intervals.

Shared by the checker (which reports mistakes and proves `require`s impossible by interval
arithmetic) and the compiler (which needs the same name resolution to build torch code).
Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gmhf.dsl import ast, intervals
from gmhf.dsl.errors import Diagnostic, did_you_mean
from gmhf.dsl.intervals import ANY, Interval, Truth

if TYPE_CHECKING:
    from gmhf.core.factors import FactorSpace
    from gmhf.core.registry import Registry

__all__ = ["ExprContext", "constant", "level_code", "single_factor_bounds"]

Where = Literal["require", "prefer", "expect", "constant"]
_ORDER_OPS = ("<", "<=", ">", ">=")


@dataclass
class ExprContext:
    """What names mean where an expression appears, and where to put diagnostics."""

    space: FactorSpace
    registry: Registry
    path: str
    where: Where
    supports: dict[str, Interval] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, node: Any, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic.at(self.path, node.span, message, hint=hint, statement=self.where))

    # ------------------------------------------------------------------ type checking
    def check(self, expr: ast.Expr) -> str:
        """Report unknown names and misuse; return "bool", "num" or "?" (already reported)."""
        if isinstance(expr, ast.Number):
            return "num"
        if isinstance(expr, ast.Name):
            return self._check_name(expr)
        if isinstance(expr, ast.Neg):
            return self._expect_num(expr.operand)
        if isinstance(expr, ast.Binary):
            left, right = self._expect_num(expr.left), self._expect_num(expr.right)
            if "?" in (left, right):
                return "?"
            return self._check_power(expr) if expr.op == "^" else "num"
        if isinstance(expr, ast.Not):
            return self._expect_bool(expr.operand)
        if isinstance(expr, ast.BoolOp):
            kinds = [self._expect_bool(o) for o in expr.operands]
            return "bool" if "?" not in kinds else "?"
        if isinstance(expr, ast.Compare):
            return self._check_compare(expr)
        if isinstance(expr, ast.Call):
            return self._check_call(expr)
        raise TypeError(f"not an expression: {expr!r}")

    def _expect_num(self, expr: ast.Expr) -> str:
        kind = self.check(expr)
        if kind == "bool":
            self.error(expr, "a condition cannot be used as a number")
            return "?"
        return kind

    def _check_power(self, expr: ast.Binary) -> str:
        base, exponent = _const_value(expr.left), _const_value(expr.right)
        if base is not None and exponent is not None and base < 0 and not exponent.is_integer():
            self.error(expr, f"a negative base to a non-integer power has no real value: ({base:g})^{exponent:g}",
                       hint="use an integer exponent, or a base that is not negative")
            return "?"
        return "num"

    def _expect_bool(self, expr: ast.Expr) -> str:
        kind = self.check(expr)
        if kind == "num":
            self.error(expr, "expected a condition, got a number", hint="compare it: `x < 1`")
            return "?"
        return kind

    def _check_name(self, name: ast.Name) -> str:
        if name.id in self.space:
            if self.where == "constant":
                self.error(name, f"expected a number here, got the factor `{name.id}`")
                return "?"
            if self.space[name.id].kind == "categorical":
                levels = self.space[name.id].levels
                self.error(name, f"categorical factor `{name.id}` can only be compared with one of its levels",
                           hint=f"write `{name.id} == {levels[0]}`")
                return "?"
            return "num"
        observable = self.space.observable(name.id)
        if observable is not None:
            if self.where == "expect":
                return "num"
            self.error(name, f"`{name.id}` is an observable of generated data; only `expect` may use it")
            return "?"
        pool = list(self.space.names) + ([o.name for o in self.space.observables] if self.where == "expect" else [])
        what = "name" if self.where == "expect" else "factor"
        self.error(name, f"unknown {what} `{name.id}`", did_you_mean(name.id, pool))
        return "?"

    def _check_compare(self, expr: ast.Compare) -> str:
        ok = True
        for i, operand in enumerate(expr.operands):
            if isinstance(operand, ast.Name) and self._categorical_partner(expr, i) is not None:
                continue
            ok &= self._expect_num(operand) != "?"
        return "bool" if ok else "?"

    def _categorical_partner(self, expr: ast.Compare, i: int, report: bool = True) -> str | None:
        """If operand i is a categorical factor or one of its levels in `F == level`, the factor's name."""
        if len(expr.operands) != 2 or expr.ops[0] not in ("==", "!="):
            return None
        this, other = expr.operands[i], expr.operands[1 - i]
        if not isinstance(this, ast.Name) or not isinstance(other, ast.Name):
            return None
        for factor_name, level_name in ((this.id, other.id), (other.id, this.id)):
            if factor_name in self.space and self.space[factor_name].kind == "categorical":
                factor = self.space[factor_name]
                if report and i == 0 and level_name not in factor.levels and level_name not in self.space:
                    node = other if factor_name == this.id else this
                    self.error(node, f"unknown level `{level_name}` of `{factor_name}`",
                               did_you_mean(level_name, factor.levels))
                return factor_name
        return None

    def _check_call(self, call: ast.Call) -> str:
        name = call.func.id
        kind = self.registry.functions.get(name)
        if kind is None:
            if name in self.registry.distributions:
                self.error(call.func, f"`{name}` is a distribution, not a function",
                           hint=f"use it in a prior: `prior F ~ {name}(...)`")
            else:
                self.error(call.func, f"unknown function `{name}`", did_you_mean(name, self.registry.functions))
            return "?"
        n = len(call.args)
        if not kind.min_args <= n <= kind.max_args:
            want = str(kind.min_args) if kind.min_args == kind.max_args else f"{kind.min_args} to {kind.max_args}"
            self.error(call, f"`{name}` takes {want} argument{'s' if want != '1' else ''}, got {n}")
            return "?"
        ok = True
        for arg in call.args:
            if isinstance(arg, ast.NamedArg):
                self.error(arg, f"`{name}` takes no named arguments")
                ok = False
            else:
                ok &= self._expect_num(arg) != "?"
        return "num" if ok else "?"

    # ------------------------------------------------------------------ intervals
    def interval(self, expr: ast.Expr) -> Interval:
        """Bounds on the values of a (type-correct) numeric expression over the supports."""
        if isinstance(expr, ast.Number):
            return (expr.value, expr.value)
        if isinstance(expr, ast.Name):
            return self.supports.get(expr.id, ANY)
        if isinstance(expr, ast.Neg):
            return intervals.neg(self.interval(expr.operand))
        if isinstance(expr, ast.Binary):
            op: Callable[[Interval, Interval], Interval] = {
                "+": intervals.add, "-": intervals.sub, "*": intervals.mul, "/": intervals.div,
                "^": intervals.power}[expr.op]
            return op(self.interval(expr.left), self.interval(expr.right))
        if isinstance(expr, ast.Call):
            kind = self.registry.functions.get(expr.func.id)
            if kind is None or kind.interval is None:
                return ANY
            try:
                result = kind.interval(*(self.interval(a) for a in expr.args))  # type: ignore[arg-type]
                return (float(result[0]), float(result[1]))
            except Exception:  # a plugin's interval rule must not break checking
                return ANY
        return ANY

    def truth(self, expr: ast.Expr) -> Truth:
        """Whether a condition holds for all, none or some of the supports."""
        if isinstance(expr, ast.Not):
            return ~self.truth(expr.operand)
        if isinstance(expr, ast.BoolOp):
            result = self.truth(expr.operands[0])
            for operand in expr.operands[1:]:
                result = (result & self.truth(operand)) if expr.op == "and" else (result | self.truth(operand))
            return result
        if isinstance(expr, ast.Compare):
            if self._categorical_partner(expr, 0, report=False) is not None:
                return Truth.MAYBE
            result = Truth.TRUE
            for op, left, right in zip(expr.ops, expr.operands, expr.operands[1:], strict=False):
                result = result & intervals.compare(op, self.interval(left), self.interval(right))
            return result
        return Truth.MAYBE


def constant(expr: ast.Expr, context: ExprContext) -> float | None:
    """Evaluate a constant expression (no names); report and return None otherwise."""
    before = len(context.diagnostics)
    saved, context.where = context.where, "constant"
    try:
        if context.check(expr) == "bool":
            context.error(expr, "expected a number, got a condition")
        if len(context.diagnostics) > before:
            return None
        low, high = context.interval(expr)
    finally:
        context.where = saved
    if low != high or not math.isfinite(low):
        context.error(expr, "expected a finite number here")
        return None
    return low


def level_code(expr: ast.Compare, space: FactorSpace) -> tuple[str, int, str] | None:
    """For `F == level` / `level != F` on a categorical F: (factor, level code, op)."""
    if len(expr.operands) != 2 or expr.ops[0] not in ("==", "!="):
        return None
    a, b = expr.operands
    if not isinstance(a, ast.Name) or not isinstance(b, ast.Name):
        return None
    for factor_name, level in ((a.id, b.id), (b.id, a.id)):
        if factor_name in space and space[factor_name].kind == "categorical" and level in space[factor_name].levels:
            return factor_name, space[factor_name].levels.index(level), expr.ops[0]
    return None


def single_factor_bounds(expr: ast.Expr, space: FactorSpace) -> tuple[str, float, float] | None:
    """If `expr` is a comparison chain bounding one real or integer factor by constants, those bounds.

    `0.1 < delta < 0.5` gives ("delta", 0.1, 0.5); for integer factors strict bounds become the
    nearest integers inside them. Anything else (two factors, `==`, `and`) gives None.
    """
    if not isinstance(expr, ast.Compare) or any(op not in _ORDER_OPS for op in expr.ops):
        return None
    names = [o for o in expr.operands if _mentions_names(o)]
    if len(names) != 1 or not isinstance(names[0], ast.Name) or names[0].id not in space:
        return None
    factor = space[names[0].id]
    if factor.kind == "categorical":
        return None
    low, high = -math.inf, math.inf
    for op, left, right in zip(expr.ops, expr.operands, expr.operands[1:], strict=False):
        direction: str = op
        if left is names[0]:
            value = _const_value(right)
        elif right is names[0]:
            value, direction = _const_value(left), {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
        else:  # a link between two constants (`x < 5 < 3`) is left to rejection and the static check
            return None
        if value is None:
            return None
        strict = direction in ("<", ">")
        if factor.kind == "integer":
            if direction in ("<", "<="):
                value = (math.ceil(value) - 1) if strict and float(value).is_integer() else math.floor(value)
            else:
                value = (math.floor(value) + 1) if strict and float(value).is_integer() else math.ceil(value)
        if direction in ("<", "<="):
            high = min(high, value)
        else:
            low = max(low, value)
    return factor.name, low, high


def _mentions_names(expr: ast.Expr) -> bool:
    if isinstance(expr, ast.Name):
        return True
    if isinstance(expr, ast.Number):
        return False
    children = [getattr(expr, f) for f in ("operand", "left", "right") if hasattr(expr, f)]
    children += list(getattr(expr, "operands", ())) + [a for a in getattr(expr, "args", ()) if not isinstance(
        a, ast.NamedArg)]
    return any(_mentions_names(c) for c in children)


def _const_value(expr: ast.Expr) -> float | None:
    if isinstance(expr, ast.Number):
        return expr.value
    if isinstance(expr, ast.Neg):
        inner = _const_value(expr.operand)
        return None if inner is None else -inner
    if isinstance(expr, ast.Binary):
        left, right = _const_value(expr.left), _const_value(expr.right)
        if left is None or right is None:
            return None
        if expr.op == "^":  # exact for a negative base and an integer exponent; None where not real
            return intervals.power_value(left, right)
        if expr.op == "/":
            return left / right if right else None
        value = {"+": left + right, "-": left - right, "*": left * right}[expr.op]
        return None if math.isnan(value) else value
    return None
