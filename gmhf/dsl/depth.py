"""A bound on how deeply a statement's expressions nest, so no recursive pass can overflow the stack.

The parser is iterative (LALR), but checking, formatting, interval arithmetic and the compiled torch
closures walk an expression recursively, a few Python frames per level. A `require` with thousands of
`+` terms, or a thousand nested parentheses, would end in `RecursionError` (or worse, a crash of the
interpreter if the limit were simply raised). Such a statement is refused where it is read instead,
as a spec error at the statement; no hand-written spec comes near the bound.
"""

from __future__ import annotations

from gmhf.dsl import ast
from gmhf.dsl.errors import Diagnostic

__all__ = ["MAX_DEPTH", "depth", "too_deep"]

#: The deepest expression accepted, in nested operations (each operator, call or negation is a level).
MAX_DEPTH = 100


def depth(node: ast.Node) -> int:
    """How many nodes deep the tree under `node` goes (spans not counted), without recursion."""
    deepest = 0
    stack: list[tuple[ast.Node, int]] = [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        for name in type(current).model_fields:
            value = getattr(current, name)
            for child in value if isinstance(value, tuple) else (value,):
                if isinstance(child, ast.Node) and not isinstance(child, ast.Span):
                    stack.append((child, level + 1))
    return deepest


def too_deep(stmt: ast.Node, path: str) -> Diagnostic | None:
    """A diagnostic at `stmt` when its expressions nest deeper than `MAX_DEPTH`, else None."""
    levels = depth(stmt) - 1  # the statement itself is not an expression level
    if levels <= MAX_DEPTH:
        return None
    return Diagnostic.at(path, getattr(stmt, "span", None),
                         f"expression nested too deeply: {levels} levels, at most {MAX_DEPTH}",
                         hint="each operator, call, minus or `not` is a level: split a long chain of terms, "
                              "or remove parentheses", statement=getattr(stmt, "keyword", None))
