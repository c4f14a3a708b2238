"""Syntax tree -> canonical spec text: one statement a line, minimal parentheses, comments kept.

There is one format and no options (as with `terraform fmt`): `fmt(parse(text))` is what `gmhf fmt`
writes, `parse(fmt(ast))` gives the same tree back, and formatting twice changes nothing.
"""

from __future__ import annotations

import math

from gmhf.dsl import ast
from gmhf.dsl.depth import MAX_DEPTH, depth

__all__ = ["format_expr", "format_spec", "format_statement"]

# Binding strength, loosest first; an operand printed where a tighter one is needed gets parentheses.
_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _NEG, _POWER, _ATOM = range(1, 10)
_BINARY = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "^": _POWER}
_NO_SPACE_BEFORE = {",", ")", "]", ":", "%"}
_NO_SPACE_AFTER = {"(", "["}


def format_number(value: float) -> str:
    """Shortest text that reads back as the same float; integers without a point."""
    if value == math.inf:  # a literal too large for a float, such as `1e400`, parses as inf
        return "1e309"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _precedence(expr: ast.Expr) -> int:
    if isinstance(expr, ast.BoolOp):
        return _OR if expr.op == "or" else _AND
    if isinstance(expr, ast.Not):
        return _NOT
    if isinstance(expr, ast.Compare):
        return _COMPARE
    if isinstance(expr, ast.Binary):
        return _BINARY[expr.op]
    if isinstance(expr, ast.Neg):
        return _NEG
    return _ATOM


def format_expr(expr: ast.Expr | ast.NamedArg, need: int = 0) -> str:
    """Format an expression, parenthesised if it binds looser than `need`."""
    if isinstance(expr, ast.NamedArg):
        return f"{expr.name.id}: {format_expr(expr.value)}"
    own = _precedence(expr)
    if isinstance(expr, ast.Number):
        text = format_number(expr.value)
    elif isinstance(expr, ast.Name):
        text = expr.id
    elif isinstance(expr, ast.Call):
        text = f"{expr.func.id}({', '.join(format_expr(a) for a in expr.args)})"
    elif isinstance(expr, ast.Neg):
        inner = format_expr(expr.operand, _NEG)
        text = f"-({inner})" if inner.startswith("-") else f"-{inner}"
    elif isinstance(expr, ast.Not):
        text = f"not {format_expr(expr.operand, _NOT)}"
    elif isinstance(expr, ast.BoolOp):
        text = f" {expr.op} ".join(format_expr(o, own + 1) for o in expr.operands)
    elif isinstance(expr, ast.Compare):
        parts = [format_expr(expr.operands[0], _SUM)]
        for op, operand in zip(expr.ops, expr.operands[1:], strict=True):
            parts += [op, format_expr(operand, _SUM)]
        text = " ".join(parts)
    elif isinstance(expr, ast.Binary):
        if expr.op == "^":  # right-associative: `atom ^ unary`
            text = f"{format_expr(expr.left, _ATOM)} ^ {format_expr(expr.right, _NEG)}"
        else:
            text = f"{format_expr(expr.left, own)} {expr.op} {format_expr(expr.right, own + 1)}"
    else:
        raise TypeError(f"`expr` must be an expression node, got {type(expr).__name__}.")
    return f"({text})" if own < need else text


def format_statement(stmt: ast.Statement) -> str:
    """Format one statement on one line, without a terminator."""
    levels = depth(stmt) - 1
    if levels > MAX_DEPTH:  # formatting recurses once per level
        raise ValueError(f"`stmt` is nested too deeply to format: {levels} levels, at most {MAX_DEPTH}.")
    if isinstance(stmt, ast.Domain):
        return f"domain {stmt.name.id}"
    if isinstance(stmt, ast.Use):
        return f'use "{stmt.path}"'
    if isinstance(stmt, ast.Invariant):
        return "invariant " + ", ".join(f.id for f in stmt.factors)
    if isinstance(stmt, ast.ShiftIn):
        return f"shift {stmt.factor.id} in {format_expr(stmt.low, _SUM)} .. {format_expr(stmt.high, _SUM)}"
    if isinstance(stmt, ast.ShiftLevels):
        return f"shift {stmt.factor.id} in [{', '.join(format_expr(level) for level in stmt.levels)}]"
    if isinstance(stmt, ast.ShiftBy):
        return f"shift {stmt.factor.id} by {stmt.op}{format_number(stmt.amount.value)}"
    if isinstance(stmt, ast.Prior):
        return f"prior {stmt.factor.id} ~ {format_expr(stmt.dist)}"
    if isinstance(stmt, ast.PriorBetween):
        low, high = format_expr(stmt.low, _SUM), format_expr(stmt.high, _SUM)
        return f"prior {stmt.factor.id} between {low} and {high} with {format_number(stmt.percent.value)}%"
    if isinstance(stmt, ast.Require):
        return f"require {format_expr(stmt.expr)}"
    if isinstance(stmt, ast.Prefer):
        sign = "-" if stmt.weight < 0 else ""
        return f"prefer {format_expr(stmt.expr)} weight {sign}{format_number(abs(stmt.weight))}"
    if isinstance(stmt, ast.Expect):
        return f"expect {format_expr(stmt.expr)}"
    if isinstance(stmt, ast.Trust):
        return f"trust {format_number(stmt.value.value)}"
    if isinstance(stmt, ast.CustomStatement):
        return _format_custom(stmt)
    raise TypeError(f"`stmt` must be a statement node, got {type(stmt).__name__}.")


def _format_custom(stmt: ast.CustomStatement) -> str:
    text = stmt.keyword
    previous = stmt.keyword
    for part in stmt.parts:
        piece = part.text if isinstance(part, ast.Word) else format_expr(part, _SUM)
        glue = "" if piece in _NO_SPACE_BEFORE or previous in _NO_SPACE_AFTER else " "
        text += glue + piece
        previous = piece
    return text


def format_spec(spec: ast.Spec) -> str:
    """Format a whole file: statements one a line, comments where they were, single blank lines kept."""
    statements = list(spec.statements)
    trailing: dict[int, list[str]] = {}
    events: list[tuple[tuple[int, int], int, str | int]] = []  # (start, end line, comment or statement index)
    for index, stmt in enumerate(statements):
        key = (stmt.span.line, stmt.span.column) if stmt.span else (0, index)
        events.append((key, stmt.span.end_line if stmt.span else 0, index))
    last_on_line: dict[int, int] = {}
    for index, stmt in enumerate(statements):
        if stmt.span is not None:
            last_on_line[stmt.span.end_line] = index
    for comment in spec.comments:
        span = comment.span
        if span is None:
            continue
        owner = last_on_line.get(span.line)
        owner_span = statements[owner].span if owner is not None else None
        if owner is not None and owner_span is not None and \
                (owner_span.end_line, owner_span.end_column) <= (span.line, span.column):
            trailing.setdefault(owner, []).append(comment.text)
        else:
            events.append(((span.line, span.column), span.line, comment.text))
    events.sort(key=lambda event: event[0])
    lines: list[str] = []
    previous_end: int | None = None
    for (line, _), end_line, item in events:
        if previous_end is not None and line > previous_end + 1 and line != 0 and lines:
            lines.append("")
        if isinstance(item, str):
            lines.append(item.rstrip())
        else:
            text = format_statement(statements[item])
            for note in trailing.get(item, []):
                text += "  " + note.rstrip()
            lines.append(text)
        previous_end = max(end_line, previous_end or 0) if line != 0 else previous_end
    return "\n".join(lines) + "\n" if lines else ""
