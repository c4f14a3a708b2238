"""Hypothesis strategies for syntactically valid guidance syntax trees.

Every node is built with its normal (validating) constructor and carries no span. The trees are
valid for the grammar, not for any domain: names are arbitrary identifiers, calls name no
registered function. `format_spec` of a drawn spec must parse back to the same tree.

The public strategies are thin `@composite` wrappers, so their repr is how they were called
(`expressions(max_depth=3)`); the trees are drawn from private strategies built once per depth.
"""

from __future__ import annotations

import functools
from typing import Literal

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from gmhf.dsl import ast
from gmhf.dsl.parse import BUILTIN_KEYWORDS

__all__ = [
    "RESERVED_WORDS", "calls", "expressions", "identifiers", "names", "numbers", "spec_asts", "statements",
]

#: Words the lexer never reads as a NAME: statement keywords and the grammar's other words.
RESERVED_WORDS = frozenset(BUILTIN_KEYWORDS) | {"in", "by", "between", "and", "with", "weight", "or", "not"}

# Floats whose text is easy to get wrong: extremes, subnormals, integers past 2**53, short decimals.
_AWKWARD_FLOATS = (
    0.0, 1.0, 0.1, 0.5, 1e-300, 1e300, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
    1e16, 1e16 + 2, 9007199254740993.0, 123456789.125, 1.5e-7, 100.0,
)
_COMPARE_OPS: tuple[Literal["<", "<=", ">", ">=", "==", "!="], ...] = ("<", "<=", ">", ">=", "==", "!=")
_BINARY_OPS: tuple[Literal["+", "-", "*", "/", "^"], ...] = ("+", "-", "*", "/", "^")
_NO_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(f"`{name}` must be a non-negative int, got {value!r}.")


def identifiers() -> st.SearchStrategy[str]:
    """Identifiers the lexer reads as NAME: never a reserved word."""
    return st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
        lambda s: s not in RESERVED_WORDS)


def names() -> st.SearchStrategy[ast.Name]:
    """`Name` nodes."""
    return st.builds(ast.Name, id=identifiers())


def numbers() -> st.SearchStrategy[ast.Number]:
    """`Number` nodes: finite floats >= 0, with extra weight on awkward ones (1e-300, 1e300, ...)."""
    values = st.one_of(
        st.sampled_from(_AWKWARD_FLOATS),
        st.integers(min_value=0, max_value=10**6).map(float),
        st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
    )
    return st.builds(ast.Number, value=values)


@st.composite
def expressions(draw: st.DrawFn, *, max_depth: int = 3, min_depth: int = 0) -> ast.Expr:
    """Expression trees of every node type, nested at most `max_depth` levels above a leaf.

    The top `min_depth` levels are never leaves, which makes operators meet operators often: nested
    same-operator `BoolOp`s, comparison chains with mixed operators and calls with named arguments
    all appear, and the formatter must parenthesise them so they read back unchanged.
    """
    _check_count("max_depth", max_depth)
    _check_count("min_depth", min_depth)
    if min_depth > max_depth:
        raise InvalidArgument(f"`min_depth` must be at most `max_depth`, got {min_depth} > {max_depth}.")
    return draw(_expressions(max_depth, min_depth))


@st.composite
def calls(draw: st.DrawFn, *, max_depth: int = 2, min_args: int = 0) -> ast.Call:
    """`Call` nodes with `min_args` to 3 arguments (positional or `name: value`), `max_depth` deep."""
    _check_count("max_depth", max_depth)
    _check_count("min_args", min_args)
    if min_args > 3:
        raise InvalidArgument(f"`min_args` must be at most 3, got {min_args}.")
    return draw(_calls(max_depth, min_args))


@st.composite
def statements(draw: st.DrawFn, *, max_depth: int = 3) -> ast.Statement:
    """One statement of any built-in kind, its expressions nested at most `max_depth` levels."""
    _check_count("max_depth", max_depth)
    return draw(_statements(max_depth))


@st.composite
def spec_asts(draw: st.DrawFn, *, max_statements: int = 6, max_depth: int = 3) -> tuple[ast.Statement, ...]:
    """A spec's statements: a tuple of up to `max_statements` statements (possibly none)."""
    _check_count("max_statements", max_statements)
    _check_count("max_depth", max_depth)
    return tuple(draw(st.lists(statements(max_depth=max_depth), max_size=max_statements)))


# ------------------------------------------------------------------ built once per depth
# Children are drawn through the public composites, so a failure's repr stays one short line.


@functools.cache
def _expressions(depth: int, min_depth: int) -> st.SearchStrategy[ast.Expr]:
    leaves = st.one_of(numbers(), names())
    if depth == 0:
        return leaves
    sub = expressions(max_depth=depth - 1, min_depth=max(0, min_depth - 1))
    return st.one_of(
        *([leaves] if min_depth == 0 else []),
        st.builds(ast.Neg, operand=sub),
        st.builds(ast.Not, operand=sub),
        st.builds(ast.Binary, op=st.sampled_from(_BINARY_OPS), left=sub, right=sub),
        _compares(sub),
        st.builds(ast.BoolOp, op=st.sampled_from(("and", "or")),
                  operands=st.lists(sub, min_size=2, max_size=4).map(tuple)),
        calls(max_depth=depth - 1, min_args=0 if min_depth == 0 else 1),
    )


@st.composite
def _compares(draw: st.DrawFn, sub: st.SearchStrategy[ast.Expr]) -> ast.Compare:
    ops = draw(st.lists(st.sampled_from(_COMPARE_OPS), min_size=1, max_size=3))
    operands = draw(st.lists(sub, min_size=len(ops) + 1, max_size=len(ops) + 1))
    return ast.Compare(operands=tuple(operands), ops=tuple(ops))


@functools.cache
def _calls(depth: int, min_args: int) -> st.SearchStrategy[ast.Call]:
    arg = expressions(max_depth=depth)
    named = st.builds(ast.NamedArg, name=names(), value=arg)
    args = st.lists(st.one_of(arg, named), min_size=min_args, max_size=3).map(tuple)
    return st.builds(ast.Call, func=names(), args=args)


@functools.cache
def _statements(depth: int) -> st.SearchStrategy[ast.Statement]:
    expr = expressions(max_depth=depth)
    weights = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from((-1.0, -1e-300, 1e300))
    paths = st.text(st.characters(exclude_characters='"\n', exclude_categories=_NO_SURROGATES), max_size=12)
    levels = st.lists(st.one_of(names(), numbers()), min_size=1, max_size=4).map(tuple)
    return st.one_of(
        st.builds(ast.Domain, name=names()),
        st.builds(ast.Use, path=paths),
        st.builds(ast.Invariant, factors=st.lists(names(), min_size=1, max_size=4).map(tuple)),
        st.builds(ast.ShiftIn, factor=names(), low=expr, high=expr),
        st.builds(ast.ShiftLevels, factor=names(), levels=levels),
        st.builds(ast.ShiftBy, factor=names(), op=st.sampled_from(("+", "-", "*")), amount=numbers()),
        st.builds(ast.Prior, factor=names(), dist=calls(max_depth=max(0, depth - 1))),
        st.builds(ast.PriorBetween, factor=names(), low=expr, high=expr, percent=numbers()),
        st.builds(ast.Require, expr=expr),
        st.builds(ast.Prefer, expr=expr, weight=weights),
        st.builds(ast.Expect, expr=expr),
        st.builds(ast.Trust, value=numbers()),
    )
