"""`fmt` and `parse` are inverses: parse(fmt(ast)) == ast, and fmt is idempotent, comments included."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from gmhf.dsl import ast
from gmhf.dsl.format import format_spec
from gmhf.dsl.parse import parse
from tests.strategies import expressions, spec_asts

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted((ROOT / "tests" / "specs" / "valid").glob("*.guide")) + sorted(
    (ROOT / "examples" / "specs").glob("*.guide"))

# Fixed and database-less, so CI runs the same examples every time.
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                         suppress_health_check=[HealthCheck.too_slow])


def fmt(text: str) -> str:
    return format_spec(parse(text))


def _statements(spec: ast.Spec) -> tuple[ast.Node, ...]:
    return ast.strip_spans(spec).statements  # type: ignore[attr-defined, no-any-return]


@DETERMINISTIC
@given(spec_asts())
def test_parse_of_format_is_the_same_tree(statements: tuple[ast.Statement, ...]) -> None:
    """parse(format_spec(ast)) has the same statements as ast, spans aside."""
    spec = ast.Spec(statements=statements)
    assert _statements(parse(format_spec(spec))) == _statements(spec)


@DETERMINISTIC
@given(expressions(max_depth=4, min_depth=2))
def test_deep_expressions_round_trip(expr: ast.Expr) -> None:
    """An expression with operators nested in operators reads back unchanged from its formatted text."""
    spec = ast.Spec(statements=(ast.Require(expr=expr),))
    assert _statements(parse(format_spec(spec))) == _statements(spec)


# Every operator node, as a function of its operand slots.
_X, _Y, _Z = (ast.Name(id=n) for n in "xyz")
OPERATORS: dict[str, tuple[int, Callable[..., ast.Expr]]] = {
    "-a": (1, lambda a: ast.Neg(operand=a)),
    "not a": (1, lambda a: ast.Not(operand=a)),
    **{f"a {op} b": (2, lambda a, b, op=op: ast.Binary(op=op, left=a, right=b)) for op in "+-*/^"},
    "a < b": (2, lambda a, b: ast.Compare(operands=(a, b), ops=("<",))),
    "a == b != c": (3, lambda a, b, c: ast.Compare(operands=(a, b, c), ops=("==", "!="))),
    "a and b": (2, lambda a, b: ast.BoolOp(op="and", operands=(a, b))),
    "a or b": (2, lambda a, b: ast.BoolOp(op="or", operands=(a, b))),
    "f(a, k: b)": (2, lambda a, b: ast.Call(func=ast.Name(id="f"), args=(
        a, ast.NamedArg(name=ast.Name(id="k"), value=b)))),
}
# Every place a statement puts an expression.
CONTEXTS: dict[str, Callable[[ast.Expr], ast.Statement]] = {
    "require": lambda e: ast.Require(expr=e),
    "prefer": lambda e: ast.Prefer(expr=e, weight=-2.0),
    "expect": lambda e: ast.Expect(expr=e),
    "shift low": lambda e: ast.ShiftIn(factor=_X, low=e, high=_Y),
    "shift high": lambda e: ast.ShiftIn(factor=_X, low=_Y, high=e),
    "between low": lambda e: ast.PriorBetween(factor=_X, low=e, high=_Y, percent=ast.Number(value=90)),
    "between high": lambda e: ast.PriorBetween(factor=_X, low=_Y, high=e, percent=ast.Number(value=90)),
    "prior": lambda e: ast.Prior(factor=_X, dist=ast.Call(func=ast.Name(id="normal"), args=(e,))),
}


def _nestings() -> Iterator[tuple[str, ast.Expr]]:
    leaves = (_X, _Y, _Z)
    for outer, (arity, build_outer) in OPERATORS.items():
        for slot in range(arity):
            for inner, (inner_arity, build_inner) in OPERATORS.items():
                args: list[ast.Expr] = list(leaves[:arity])
                args[slot] = build_inner(*leaves[:inner_arity])
                yield f"{inner} in slot {slot} of {outer}", build_outer(*args)


def test_every_operator_pair_round_trips_in_every_context() -> None:
    """Each operator nested in each operand slot of each other one survives fmt, wherever it stands."""
    failures = []
    for name, expr in _nestings():
        for where, build in CONTEXTS.items():
            spec = ast.Spec(statements=(build(expr),))
            text = format_spec(spec)
            if _statements(parse(text)) != _statements(spec):
                failures.append(f"{name}, in {where}: {text!r}")
    assert not failures, "\n".join(failures)


@DETERMINISTIC
@given(spec_asts())
def test_format_is_idempotent(statements: tuple[ast.Statement, ...]) -> None:
    """Formatting already formatted text changes nothing."""
    text = format_spec(ast.Spec(statements=statements))
    assert fmt(text) == text


def test_dotdot_needs_no_spaces() -> None:
    """`1..2` lexes as 1, `..`, 2 and means the same as `1 .. 2`."""
    tight, spaced = parse("shift x in 1..2"), parse("shift x in 1 .. 2")
    assert _statements(tight) == _statements(spaced)
    assert _statements(tight) == (ast.ShiftIn(factor=ast.Name(id="x"), low=ast.Number(value=1.0),
                                              high=ast.Number(value=2.0)),)


def test_overflowing_literal_round_trips() -> None:
    """A literal too large for a float (it reads as inf) is written back as one, `1e309`."""
    text = "trust 1e400\nshift x in [1E999, 2]\n"
    assert fmt(text) == "trust 1e309\nshift x in [1e309, 2]\n"
    assert _statements(parse(fmt(text))) == _statements(parse(text))


def test_power_binds_tighter_than_unary_minus() -> None:
    """`-x^2` is `-(x^2)`, not `(-x)^2`."""
    (stmt,) = _statements(parse("require -x^2 < 0"))
    left = stmt.expr.operands[0]  # type: ignore[attr-defined]
    assert left == ast.Neg(operand=ast.Binary(op="^", left=ast.Name(id="x"), right=ast.Number(value=2.0)))


def test_needed_parentheses_are_kept() -> None:
    """`a - (b - c)` keeps its parentheses; `(a - b) - c` loses them."""
    assert fmt("require a - (b - c) > 0") == "require a - (b - c) > 0\n"
    assert fmt("require (a - b) - c > 0") == "require a - b - c > 0\n"


def test_comments_are_kept() -> None:
    """Own-line comments stay on their own line, trailing ones after their statement (two spaces)."""
    text = "# leading\ndomain d   # trailing\n  # indented own line\ntrust 1\n"
    assert fmt(text) == "# leading\ndomain d  # trailing\n# indented own line\ntrust 1\n"


def test_blank_lines_collapse_to_one() -> None:
    """Runs of blank lines become one; leading and trailing blank lines go."""
    assert fmt("\n\ndomain d\n\n\n\ntrust 1\n\n\n") == "domain d\n\ntrust 1\n"


def test_semicolons_become_line_ends() -> None:
    """`;`-separated statements go on their own lines."""
    assert fmt("domain d; trust 1;; require x > 0") == "domain d\ntrust 1\nrequire x > 0\n"


def test_multiline_call_joins_one_line() -> None:
    """A `choice(...)` spread over lines is formatted on one line."""
    text = "prior weather ~ choice(\n    rain: 0.7,\n    snow: 0.3\n)\n"
    assert fmt(text) == "prior weather ~ choice(rain: 0.7, snow: 0.3)\n"


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_formatted_golden_file_is_a_fixed_point(path: Path) -> None:
    """fmt of a formatted valid spec is that text again, and keeps the tree."""
    text = path.read_text(encoding="utf-8")
    once = fmt(text)
    assert fmt(once) == once
    assert _statements(parse(once)) == _statements(parse(text))
