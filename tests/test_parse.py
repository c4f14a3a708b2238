"""Parser plumbing: every grammar rule has a transformer method; spans; plugin rules."""

from __future__ import annotations

from gmhf.dsl import ast
from gmhf.dsl.parse import _ToAst, build_parser, parse


def test_every_named_rule_has_a_transformer_method() -> None:
    """Each rule or alias the grammar produces (other than Lark's helpers) maps to a _ToAst method."""
    parser = build_parser()
    names = {str(rule.alias or rule.origin.name) for rule in parser.rules}
    public = {n for n in names if not n.startswith("_") and not n.startswith("__")}
    inlined = {"expr", "and_expr", "not_expr", "comparison", "sum", "product", "unary", "power", "atom", "argument"}
    missing = sorted(n for n in public - inlined if not hasattr(_ToAst, n))
    assert missing == []


def test_spans_cover_whole_statements_and_calls() -> None:
    """A statement's span runs from its keyword to its last character, closing brackets included."""
    spec = parse('domain sinusoid\nprior noise ~ normal(1, 2)\nshift weather in [rain, snow]\ntrust 0.5')
    spans = [(s.span.line, s.span.column, s.span.end_line, s.span.end_column) for s in spec.statements]
    assert spans == [(1, 1, 1, 16), (2, 1, 2, 27), (3, 1, 3, 30), (4, 1, 4, 10)]
    prior = spec.statements[1]
    assert isinstance(prior, ast.Prior) and prior.dist.span is not None and prior.dist.span.column == 15


def test_parsed_nodes_equal_validated_ones() -> None:
    """Nodes the parser builds without validation equal nodes built by the validating constructor."""
    (stmt,) = parse("require 2 < x").statements
    built = ast.Require(expr=ast.Compare(operands=(ast.Number(value=2), ast.Name(id="x")), ops=("<",)))
    assert ast.strip_spans(stmt) == built
