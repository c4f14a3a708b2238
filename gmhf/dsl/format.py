"""Syntax tree -> canonical spec text: one statement a line, minimal parentheses, comments kept.

A statement spread over lines with a comment inside its brackets keeps its breaks, so no comment
leaves the line of the code it follows.

There is one format and no options (as with `terraform fmt`): `fmt(parse(text))` is what `gmhf fmt`
writes, `parse(fmt(ast))` gives the same tree back, and formatting twice changes nothing.
"""

from __future__ import annotations

import functools
import math
import re

from gmhf.dsl import ast
from gmhf.dsl.depth import MAX_DEPTH, depth

__all__ = ["format_expr", "format_spec", "format_statement"]

# Binding strength, loosest first; an operand printed where a tighter one is needed gets parentheses.
_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _NEG, _POWER, _ATOM = range(1, 10)
_BINARY = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "^": _POWER}
_NO_SPACE_BEFORE = {",", ")", "]", ":", "%"}
_NO_SPACE_AFTER = {"(", "["}
_TOKEN = re.compile(r'"[^"\n]*"|[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|\.\.|[<>=!]=|\S')
_WRAPPABLE = (ast.Name, ast.Number, ast.Neg, ast.Not, ast.BoolOp, ast.Compare, ast.Binary)
_INDENT = "    "


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


def format_expr(expr: ast.Expr | ast.NamedArg, need: int = 0, *, wrap: frozenset[int] = frozenset()) -> str:
    """Format an expression, parenthesised if it binds looser than `need` (or its `id` is in `wrap`)."""
    if isinstance(expr, ast.NamedArg):
        return f"{expr.name.id}: {format_expr(expr.value, wrap=wrap)}"
    own = _precedence(expr)
    if isinstance(expr, ast.Number):
        text = format_number(expr.value)
    elif isinstance(expr, ast.Name):
        text = expr.id
    elif isinstance(expr, ast.Call):
        text = f"{expr.func.id}({', '.join(format_expr(a, wrap=wrap) for a in expr.args)})"
    elif isinstance(expr, ast.Neg):
        inner = format_expr(expr.operand, _NEG, wrap=wrap)
        text = f"-({inner})" if inner.startswith("-") else f"-{inner}"
    elif isinstance(expr, ast.Not):
        text = f"not {format_expr(expr.operand, _NOT, wrap=wrap)}"
    elif isinstance(expr, ast.BoolOp):
        text = f" {expr.op} ".join(format_expr(o, own + 1, wrap=wrap) for o in expr.operands)
    elif isinstance(expr, ast.Compare):
        parts = [format_expr(expr.operands[0], _SUM, wrap=wrap)]
        for op, operand in zip(expr.ops, expr.operands[1:], strict=True):
            parts += [op, format_expr(operand, _SUM, wrap=wrap)]
        text = " ".join(parts)
    elif isinstance(expr, ast.Binary):
        if expr.op == "^":  # right-associative: `atom ^ unary`
            text = f"{format_expr(expr.left, _ATOM, wrap=wrap)} ^ {format_expr(expr.right, _NEG, wrap=wrap)}"
        else:
            text = f"{format_expr(expr.left, own, wrap=wrap)} {expr.op} {format_expr(expr.right, own + 1, wrap=wrap)}"
    else:
        raise TypeError(f"`expr` must be an expression node, got {type(expr).__name__}.")
    return f"({text})" if own < need or id(expr) in wrap else text


def format_statement(stmt: ast.Statement) -> str:
    """Format one statement on one line, without a terminator."""
    levels = depth(stmt) - 1
    if levels > MAX_DEPTH:  # formatting recurses once per level
        raise ValueError(f"`stmt` is nested too deeply to format: {levels} levels, at most {MAX_DEPTH}.")
    return _statement(stmt, frozenset())


def _statement(stmt: ast.Statement, wrap: frozenset[int]) -> str:
    """`format_statement`, with the expressions whose `id` is in `wrap` parenthesised."""
    expr = functools.partial(format_expr, wrap=wrap)
    if isinstance(stmt, ast.Domain):
        return f"domain {stmt.name.id}"
    if isinstance(stmt, ast.Use):
        return f'use "{stmt.path}"'
    if isinstance(stmt, ast.Invariant):
        return "invariant " + ", ".join(f.id for f in stmt.factors)
    if isinstance(stmt, ast.ShiftIn):
        return f"shift {stmt.factor.id} in {expr(stmt.low, _SUM)} .. {expr(stmt.high, _SUM)}"
    if isinstance(stmt, ast.ShiftLevels):
        return f"shift {stmt.factor.id} in [{', '.join(expr(level) for level in stmt.levels)}]"
    if isinstance(stmt, ast.ShiftBy):
        return f"shift {stmt.factor.id} by {stmt.op}{format_number(stmt.amount.value)}"
    if isinstance(stmt, ast.Prior):
        return f"prior {stmt.factor.id} ~ {expr(stmt.dist)}"
    if isinstance(stmt, ast.PriorBetween):
        low, high = expr(stmt.low, _SUM), expr(stmt.high, _SUM)
        return f"prior {stmt.factor.id} between {low} and {high} with {format_number(stmt.percent.value)}%"
    if isinstance(stmt, ast.Require):
        return f"require {expr(stmt.expr)}"
    if isinstance(stmt, ast.Prefer):
        sign = "-" if stmt.weight < 0 else ""
        return f"prefer {expr(stmt.expr)} weight {sign}{format_number(abs(stmt.weight))}"
    if isinstance(stmt, ast.Expect):
        return f"expect {expr(stmt.expr)}"
    if isinstance(stmt, ast.Trust):
        return f"trust {format_number(stmt.value.value)}"
    if isinstance(stmt, ast.CustomStatement):
        return _format_custom(stmt, wrap)
    raise TypeError(f"`stmt` must be a statement node, got {type(stmt).__name__}.")


def _format_custom(stmt: ast.CustomStatement, wrap: frozenset[int]) -> str:
    text = stmt.keyword
    previous = stmt.keyword
    for part in stmt.parts:
        piece = part.text if isinstance(part, ast.Word) else format_expr(part, _SUM, wrap=wrap)
        glue = "" if piece in _NO_SPACE_BEFORE or previous in _NO_SPACE_AFTER else " "
        text += glue + piece
        previous = piece
    return text


def format_spec(spec: ast.Spec) -> str:
    """Format a whole file: statements one a line, comments where they were, single blank lines kept.

    A statement that spans lines with a comment inside its brackets keeps its line breaks, so each
    comment stays on the line of the code it follows (see `_layout`).
    """
    statements = list(spec.statements)
    trailing: dict[int, list[str]] = {}
    inner: dict[int, dict[int, str]] = {}  # statement index -> {source line: comment} for `_layout`
    events: list[tuple[tuple[int, int], int, str | int]] = []  # (start, end line, comment or statement index)
    inside: dict[int, int] = {}  # source line -> statement that continues past it
    last_on_line: dict[int, int] = {}
    for index, stmt in enumerate(statements):
        key = (stmt.span.line, stmt.span.column) if stmt.span else (0, index)
        events.append((key, stmt.span.end_line if stmt.span else 0, index))
        if stmt.span is not None:
            last_on_line[stmt.span.end_line] = index
            inside.update(dict.fromkeys(range(stmt.span.line, stmt.span.end_line), index))
    for comment in spec.comments:
        span = comment.span
        if span is None:
            continue
        owner = last_on_line.get(span.line)
        owner_span = statements[owner].span if owner is not None else None
        if span.line in inside:
            inner.setdefault(inside[span.line], {})[span.line] = comment.text
        elif owner is not None and owner_span is not None and \
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
        elif item in inner:
            lines.extend(_layout(statements[item], inner[item], trailing.get(item, [])))
        else:
            text = format_statement(statements[item])
            for note in trailing.get(item, []):
                text += "  " + note.rstrip()
            lines.append(text)
        previous_end = max(end_line, previous_end or 0) if line != 0 else previous_end
    return "\n".join(lines) + "\n" if lines else ""


def _layout(stmt: ast.Statement, comments: dict[int, str], trailing: list[str]) -> list[str]:
    """A statement whose comments sit inside its brackets, broken where the source broke it.

    Each name or number stays on its source line; the operators and punctuation after it follow it,
    and what comes after the last one goes to the statement's last line. A break that would fall
    outside brackets gets parentheses around the smallest expression holding it (the tree is the
    same), or, where none can take them, the two lines are joined.
    """
    format_statement(stmt)  # the depth check
    span = stmt.span
    assert span is not None  # only parsed statements hold comments
    leaves = sorted((n for n in ast.walk(stmt) if isinstance(n, (ast.Name, ast.Number)) and n.span is not None),
                    key=lambda n: (n.span.line, n.span.column) if n.span else (0, 0))
    wrap: set[int] = set()
    joined: dict[int, int] = {}
    while True:
        text = _statement(stmt, frozenset(wrap))
        tokens = [(m.start(), m.group()) for m in _TOKEN.finditer(text)]
        rows, owners = _token_rows(tokens, leaves, span)
        rows = [_resolve(joined, row) for row in rows]
        at = _break_outside_brackets(tokens, rows)
        if at is None:
            break
        before = [o for o in owners[:at] if o is not None]
        after = [o for o in owners[at:] if o is not None]
        node = _enclosing(stmt, before[-1], after[0]) if before and after else None
        if node is None or id(node) in wrap:
            joined[rows[at]] = rows[at - 1]
        else:
            wrap.add(id(node))
    firsts = [i for i in range(len(tokens)) if i == 0 or rows[i] != rows[i - 1]]
    out = {rows[i]: text[tokens[i][0]:tokens[j][0] if j < len(tokens) else None].rstrip()
           for i, j in zip(firsts, [*firsts[1:], len(tokens)], strict=True)}
    notes = [(_resolve(joined, line), note.rstrip()) for line, note in sorted(comments.items())]
    return _with_comments(stmt, out, notes + [(_resolve(joined, span.end_line), note.rstrip()) for note in trailing])


def _with_comments(stmt: ast.Statement, out: dict[int, str], notes: list[tuple[int, str]]) -> list[str]:
    """The lines of code `out` (by source line) with each comment after the code of its line."""
    order = list(out)
    extra: dict[int, list[str]] = {}  # comments on lines without code, before the line of code they precede
    after_all: list[str] = []
    last: list[str] = []  # comments that end up after the whole statement
    for row, note in notes:
        if row == order[-1]:
            last.append(note)
        elif row in out:
            out[row] += "  " + note
        elif row > order[-1]:
            after_all.append(note)
        else:
            extra.setdefault(min(r for r in order if r > row), []).append(_INDENT + note)
    if not extra and len(notes) == len(last) + len(after_all):  # no comment left inside: one line, as on reparse
        return ["".join([format_statement(stmt), *("  " + note for note in last)]), *after_all]
    out[order[-1]] += "".join("  " + note for note in last)
    result: list[str] = []
    for k, row in enumerate(order):
        result += extra.get(row, [])
        result.append((_INDENT if k and out[row][0] not in ")]" else "") + out[row])
    return result + after_all


def _token_rows(tokens: list[tuple[int, str]], leaves: list[ast.Name | ast.Number],
                span: ast.Span) -> tuple[list[int], list[ast.Name | ast.Number | None]]:
    """The source line of each token of the one-line text, and the leaf each token is (or None)."""
    rows: list[int] = []
    owners: list[ast.Name | ast.Number | None] = []
    row, k = span.line, 0
    for _, token in tokens:
        leaf = leaves[k] if k < len(leaves) else None
        if leaf is not None and leaf.span is not None and token == _leaf_text(leaf):
            row, k = leaf.span.line, k + 1
            owners.append(leaf)
        else:
            if k == len(leaves) and leaves:
                row = span.end_line
            owners.append(None)
        rows.append(row)
    return rows, owners


def _leaf_text(leaf: ast.Name | ast.Number) -> str:
    return leaf.id if isinstance(leaf, ast.Name) else format_number(leaf.value)


def _resolve(joined: dict[int, int], row: int) -> int:
    while row in joined:
        row = joined[row]
    return row


def _break_outside_brackets(tokens: list[tuple[int, str]], rows: list[int]) -> int | None:
    """The first token that starts a new line while no bracket is open, if any."""
    level = 0
    for i, (_, token) in enumerate(tokens):
        if i and rows[i] != rows[i - 1] and level == 0:
            return i
        level += (token in "([") - (token in ")]")
    return None


def _enclosing(stmt: ast.Statement, first: ast.Name | ast.Number, last: ast.Name | ast.Number) -> ast.Node | None:
    """The innermost expression that may take parentheses and holds both leaves."""
    if first.span is None or last.span is None:
        return None
    start, end = (first.span.line, first.span.column), (last.span.end_line, last.span.end_column)
    found = None
    for node in ast.walk(stmt):
        span = getattr(node, "span", None)
        if isinstance(node, _WRAPPABLE) and span is not None and \
                (span.line, span.column) <= start and end <= (span.end_line, span.end_column):
            found = node
    return found
