"""The expression compiler: expression trees -> batched torch functions over named columns.

A compiled expression takes an environment `{name: tensor}` (factors `[n]`, observables `[n, t]`)
and returns `[n]` values, or `[n]` booleans for conditions. A condition over arrays holds for an
environment when it holds at every point (`expect y < 3` means all of y).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gmhf.core.registry import resolve
from gmhf.dsl import ast
from gmhf.dsl.expressions import level_code

if TYPE_CHECKING:
    from gmhf.core.factors import FactorSpace
    from gmhf.core.registry import Registry

__all__ = ["compile_condition", "compile_expr"]

Env = dict[str, Tensor]
Fn = Callable[[Env], "Tensor | float"]
_COMPARE = {"<": torch.lt, "<=": torch.le, ">": torch.gt, ">=": torch.ge, "==": torch.eq, "!=": torch.ne}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "^": operator.pow}


def _align(a: Tensor | float, b: Tensor | float) -> tuple[Tensor | float, Tensor | float]:
    """Line a per-environment value `[n]` up with a per-point one `[n, t]`."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        while a.ndim < b.ndim:
            a = a.unsqueeze(-1)
        while b.ndim < a.ndim:
            b = b.unsqueeze(-1)
    return a, b


def _align_all(values: list[Tensor]) -> list[Tensor]:
    """Give every argument the same number of dimensions (per-environment values become columns)."""
    depth = max(v.ndim for v in values)
    return [v.reshape(v.shape + (1,) * (depth - v.ndim)) for v in values]


def compile_expr(expr: ast.Expr, space: FactorSpace, registry: Registry) -> Fn:
    """A function of the environment computing `expr` (already checked)."""
    if isinstance(expr, ast.Number):
        value = expr.value
        return lambda env: value
    if isinstance(expr, ast.Name):
        name = expr.id
        return lambda env: env[name]
    if isinstance(expr, ast.Neg):
        inner = compile_expr(expr.operand, space, registry)
        return lambda env: -inner(env)  # type: ignore[operator]
    if isinstance(expr, ast.Binary):
        op, left, right = _ARITH[expr.op], compile_expr(expr.left, space, registry), compile_expr(
            expr.right, space, registry)
        return lambda env: op(*_align(left(env), right(env)))  # type: ignore[arg-type]
    if isinstance(expr, ast.Call):
        fn = resolve(registry.functions[expr.func.id].torch)
        args = [compile_expr(a, space, registry) for a in expr.args if not isinstance(a, ast.NamedArg)]
        return lambda env: fn(*_align_all([_tensor(a(env), env) for a in args]))
    if isinstance(expr, ast.Not):
        inner = compile_expr(expr.operand, space, registry)
        return lambda env: ~_tensor(inner(env), env)
    if isinstance(expr, ast.BoolOp):
        parts = [compile_expr(o, space, registry) for o in expr.operands]
        combine = torch.logical_and if expr.op == "and" else torch.logical_or

        def boolean(env: Env) -> Tensor:
            out = _reduce_all(_tensor(parts[0](env), env))
            for part in parts[1:]:
                out = combine(out, _reduce_all(_tensor(part(env), env)))
            return out
        return boolean
    if isinstance(expr, ast.Compare):
        return _compile_compare(expr, space, registry)
    raise TypeError(f"not an expression: {expr!r}")


def _compile_compare(expr: ast.Compare, space: FactorSpace, registry: Registry) -> Fn:
    categorical = level_code(expr, space)
    if categorical is not None:
        factor, code, op = categorical
        cmp = _COMPARE[op]
        return lambda env: cmp(env[factor], float(code))
    operands = [compile_expr(o, space, registry) for o in expr.operands]
    ops = [_COMPARE[op] for op in expr.ops]

    def chain(env: Env) -> Tensor:
        values = [operand(env) for operand in operands]
        out: Tensor | None = None
        for cmp, left, right in zip(ops, values, values[1:], strict=False):
            a, b = _align(_tensor(left, env), _tensor(right, env))
            result = _reduce_all(cmp(a, b))  # type: ignore[arg-type]
            out = result if out is None else out & result
        assert out is not None
        return out
    return chain


def _tensor(value: Tensor | float, env: Env) -> Tensor:
    if isinstance(value, Tensor):
        return value
    reference = next(iter(env.values()))
    return torch.full((reference.shape[0],), value, dtype=torch.float64)


def _reduce_all(value: Tensor) -> Tensor:
    if value.dtype == torch.bool and value.ndim > 1:
        return value.reshape(value.shape[0], -1).all(-1)
    return value


def compile_condition(expr: ast.Expr, space: FactorSpace, registry: Registry) -> Callable[[Env], Tensor]:
    """A function of the environment returning `[n]` booleans."""
    fn = compile_expr(expr, space, registry)
    return lambda env: _reduce_all(_tensor(fn(env), env))
