"""The one tree traversal, `ast.walk`, and `ast.names_in` built on it."""

from __future__ import annotations

import sys

from gmhf.dsl import ast
from gmhf.dsl.parse import parse


def _expr(text: str) -> ast.Expr:
    (stmt,) = parse(f"require {text}").statements
    assert isinstance(stmt, ast.Require)
    return stmt.expr


def test_walk_yields_parents_first_and_children_in_field_order() -> None:
    """Pre-order, left to right: the order a reader meets the nodes in the source."""
    expr = ast.Binary(op="+", left=ast.Name(id="a"), right=ast.Neg(operand=ast.Number(value=2)))
    kinds = [type(n).__name__ for n in ast.walk(expr)]
    assert kinds == ["Binary", "Name", "Neg", "Number"]


def test_walk_reaches_nodes_inside_tuples_and_spans() -> None:
    """Tuple fields (operands, args) are walked, and spans are nodes like any other."""
    expr = _expr("a < b < max(c, d)")
    assert [n.id for n in ast.walk(expr) if isinstance(n, ast.Name)] == ["a", "b", "max", "c", "d"]
    assert any(isinstance(n, ast.Span) for n in ast.walk(expr))


def test_names_in_skips_call_names_and_argument_labels_and_repeats() -> None:
    """Only names that refer to factors or observables, each once, in source order."""
    assert ast.names_in(_expr("b + abs(a) < f(a, w: b) + a")) == ("b", "a")


def test_walk_handles_nesting_deeper_than_the_recursion_limit() -> None:
    """The walk keeps its own stack: depth is bounded by memory, not by `sys.getrecursionlimit()`."""
    expr: ast.Expr = ast.Name(id="x")
    for _ in range(sys.getrecursionlimit() + 100):
        expr = ast.Neg.model_construct(kind="neg", operand=expr, span=None)
    assert ast.names_in(expr) == ("x",)
