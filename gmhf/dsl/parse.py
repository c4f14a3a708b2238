"""Spec text -> syntax tree, with every syntax error of a file reported at once.

The grammar lives in `gmhf/grammars/guidance.lark`. A plugin statement adds one rule to it at parser
build time (`%extend statement: custom__<keyword>`), so new keywords need no edit of the file; parsers
are cached per set of plugin rules. When a file does not parse, it is cut into statements and each is
parsed on its own, so one typo does not hide the next.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedInput

from gmhf.dsl import ast
from gmhf.dsl.depth import too_deep
from gmhf.dsl.errors import Diagnostic, SpecError
from gmhf.dsl.recover import diagnose, split_statements

__all__ = ["BUILTIN_KEYWORDS", "RESERVED_WORDS", "build_parser", "parse", "parse_partial"]

#: Statement keywords the grammar file defines.
BUILTIN_KEYWORDS = (
    "domain", "use", "invariant", "shift", "prior", "require", "prefer", "expect", "trust",
)
#: Words of the grammar that are not statement keywords (also reserved: no plugin may take them).
RESERVED_WORDS = ("in", "by", "between", "and", "with", "weight", "or", "not")
_COMMENT_OR_STRING = re.compile(r'"[^"\n]*"|#[^\n]*')


def _custom_rule(keyword: str) -> str:
    return f"custom__{keyword}"


@functools.lru_cache(maxsize=16)
def _parser(extensions: tuple[tuple[str, str], ...]) -> Lark:
    grammar = resources.files("gmhf.grammars").joinpath("guidance.lark").read_text(encoding="utf-8")
    for keyword, syntax in extensions:
        rule = _custom_rule(keyword)
        grammar += f'\n!{rule}: "{keyword}" {syntax}\n%extend statement: {rule}\n'
    # cache=True keeps the LALR tables in the temp folder, keyed by the grammar's hash: it halves
    # the start-up of `gmhf check`.
    return Lark(grammar, parser="lalr", lexer="basic", postlex=_BracketNewlines(), transformer=_ToAst(),
                cache=True)


def build_parser(extensions: tuple[tuple[str, str], ...] = ()) -> Lark:
    """The (cached) parser for the grammar plus these plugin statements; raises Lark's GrammarError."""
    return _parser(tuple(sorted(extensions)))


class _BracketNewlines:
    """Drop line ends inside brackets, so a long `choice(...)` may span lines."""

    always_accept = ()

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif token.type == "_NL" and depth:
                continue
            yield token


def _make(cls: type[ast.Node], fields: dict[str, Any]) -> Any:
    """Build a node from already-valid fields, skipping validation (what `model_construct` does, faster).

    Every field is given, so the instance equals one built by the validating constructor.
    """
    node = object.__new__(cls)
    object.__setattr__(node, "__dict__", fields)
    object.__setattr__(node, "__pydantic_fields_set__", set(fields))
    object.__setattr__(node, "__pydantic_extra__", None)
    object.__setattr__(node, "__pydantic_private__", None)
    return node


def _token_span(token: Token) -> ast.Span:
    return _make(ast.Span, {"line": token.line, "column": token.column, "end_line": token.end_line,
                            "end_column": token.end_column})


def _span(first: Any, last: Any) -> ast.Span:
    """From the start of `first` to the end of `last` (tokens or nodes)."""
    a = getattr(first, "span", None) or first
    b = getattr(last, "span", None) or last
    return _make(ast.Span, {"line": a.line, "column": a.column, "end_line": b.end_line,
                            "end_column": b.end_column})


def _name(token: Token) -> ast.Name:
    return _make(ast.Name, {"kind": "name", "id": str(token), "span": _token_span(token)})


def _number(token: Token) -> ast.Number:
    return _make(ast.Number, {"kind": "number", "value": float(token), "span": _token_span(token)})


def _values(children: list[Any]) -> list[Any]:
    """Children without punctuation and keyword tokens (names and numbers stay)."""
    return [c for c in children if not isinstance(c, Token) or c.type in ("NAME", "NUMBER", "STRING")]


class _ToAst(Transformer[Token, Any]):
    """One method per aliased rule of the grammar (a test checks none is missing).

    It runs inside the LALR parser (no intermediate tree), so spans come from the first and last
    child: statement keywords and closing brackets are named terminals for that reason.
    """

    # statements --------------------------------------------------------------------------
    def start(self, children: list[Any]) -> list[Any]:
        return [c for c in children if not isinstance(c, Token)]

    def statement(self, children: list[Any]) -> Any:
        return children[0]

    def domain(self, children: list[Any]) -> ast.Domain:
        return _make(ast.Domain, {"keyword": "domain", "name": _name(children[1]),
                                  "span": _span(children[0], children[1])})

    def use(self, children: list[Any]) -> ast.Use:
        return _make(ast.Use, {"keyword": "use", "path": str(children[1])[1:-1],
                               "span": _span(children[0], children[1])})

    def invariant(self, children: list[Any]) -> ast.Invariant:
        names = tuple(_name(c) for c in children if c.type == "NAME")
        return _make(ast.Invariant, {"keyword": "invariant", "factors": names,
                                     "span": _span(children[0], children[-1])})

    def shift_in(self, children: list[Any]) -> ast.ShiftIn:
        factor, low, high = _values(children)
        return _make(ast.ShiftIn, {"keyword": "shift", "factor": _name(factor), "low": low, "high": high,
                                   "span": _span(children[0], children[-1])})

    def shift_levels(self, children: list[Any]) -> ast.ShiftLevels:
        factor, *levels = _values(children)
        return _make(ast.ShiftLevels, {"keyword": "shift", "factor": _name(factor), "levels": tuple(levels),
                                       "span": _span(children[0], children[-1])})

    def level(self, children: list[Any]) -> ast.Name | ast.Number:
        token = children[0]
        return _name(token) if token.type == "NAME" else _number(token)

    def shift_by(self, children: list[Any]) -> ast.ShiftBy:
        _, factor, op, amount = children
        return _make(ast.ShiftBy, {"keyword": "shift", "factor": _name(factor), "op": str(op),
                                   "amount": _number(amount), "span": _span(children[0], amount)})

    def prior(self, children: list[Any]) -> ast.Prior:
        factor, dist = _values(children)
        return _make(ast.Prior, {"keyword": "prior", "factor": _name(factor), "dist": dist,
                                 "span": _span(children[0], dist)})

    def prior_between(self, children: list[Any]) -> ast.PriorBetween:
        factor, low, high, percent = _values(children)
        return _make(ast.PriorBetween, {"keyword": "prior", "factor": _name(factor), "low": low, "high": high,
                                        "percent": _number(percent), "span": _span(children[0], children[-1])})

    def require(self, children: list[Any]) -> ast.Require:
        return _make(ast.Require, {"keyword": "require", "expr": children[1],
                                   "span": _span(children[0], children[1])})

    def prefer(self, children: list[Any]) -> ast.Prefer:
        weight, last = children[-1]
        return _make(ast.Prefer, {"keyword": "prefer", "expr": children[1], "weight": weight,
                                  "span": _span(children[0], last)})

    def signed_number(self, children: list[Any]) -> tuple[float, Token]:
        value = float(children[-1])
        return (-value if len(children) == 2 else value), children[-1]

    def expect(self, children: list[Any]) -> ast.Expect:
        return _make(ast.Expect, {"keyword": "expect", "expr": children[1],
                                  "span": _span(children[0], children[1])})

    def trust(self, children: list[Any]) -> ast.Trust:
        return _make(ast.Trust, {"keyword": "trust", "value": _number(children[1]),
                                 "span": _span(children[0], children[1])})

    def __default__(self, data: Any, children: list[Any], meta: Any) -> Any:
        if isinstance(data, str) and data.startswith("custom__"):
            return self._custom(data[len("custom__"):], children)
        return Tree(data, children, meta)  # Lark's own helper rules, inlined into their parent

    def _custom(self, keyword: str, children: list[Any]) -> ast.CustomStatement:
        parts: list[Any] = []
        for child in children[1:]:
            if child is None:  # an optional `[...]` part of a plugin's syntax that was left out
                continue
            if isinstance(child, Token):
                if child.type == "NAME":
                    parts.append(_name(child))
                elif child.type == "NUMBER":
                    parts.append(_number(child))
                else:
                    parts.append(_make(ast.Word, {"kind": "word", "text": str(child), "span": _token_span(child)}))
            else:
                parts.append(child)
        return _make(ast.CustomStatement, {"keyword": keyword, "parts": tuple(parts),
                                           "span": _span(children[0], children[-1])})

    # expressions -------------------------------------------------------------------------
    def number(self, children: list[Any]) -> ast.Number:
        return _number(children[0])

    def name(self, children: list[Any]) -> ast.Name:
        return _name(children[0])

    def neg(self, children: list[Any]) -> ast.Neg:
        return _make(ast.Neg, {"kind": "neg", "operand": children[-1], "span": _span(children[0], children[-1])})

    def not_(self, children: list[Any]) -> ast.Not:
        return _make(ast.Not, {"kind": "not", "operand": children[-1], "span": _span(children[0], children[-1])})

    def binary(self, children: list[Any]) -> ast.Binary:
        left, op, right = children
        return _make(ast.Binary, {"kind": "binary", "op": str(op), "left": left, "right": right,
                                  "span": _span(left, right)})

    def and_(self, children: list[Any]) -> ast.BoolOp:
        return _make(ast.BoolOp, {"kind": "boolop", "op": "and", "operands": tuple(children),
                                  "span": _span(children[0], children[-1])})

    def or_(self, children: list[Any]) -> ast.BoolOp:
        return _make(ast.BoolOp, {"kind": "boolop", "op": "or", "operands": tuple(children),
                                  "span": _span(children[0], children[-1])})

    def compare_op(self, children: list[Any]) -> str:
        return str(children[0])

    def compare(self, children: list[Any]) -> ast.Compare:
        return _make(ast.Compare, {"kind": "compare", "operands": tuple(children[0::2]),
                                   "ops": tuple(children[1::2]), "span": _span(children[0], children[-1])})

    def call(self, children: list[Any]) -> ast.Call:
        func, *args = [c for c in children if not isinstance(c, Token) or c.type == "NAME"]
        return _make(ast.Call, {"kind": "call", "func": _name(func), "args": tuple(args),
                                "span": _span(children[0], children[-1])})

    def named_argument(self, children: list[Any]) -> ast.NamedArg:
        name = _name(children[0])
        return _make(ast.NamedArg, {"kind": "named_arg", "name": name, "value": children[-1],
                                    "span": _span(name, children[-1])})


def parse(text: str, *, path: str = "<string>", extensions: Mapping[str, str] | None = None) -> ast.Spec:
    """Parse spec text into a frozen syntax tree.

    Args:
        text: the spec source.
        path: the file name used in diagnostics.
        extensions: plugin statement keywords mapped to their argument syntax (a Lark expansion such
            as `NAME "near" sum`); `gmhf.parse` passes the registered ones.

    Raises:
        SpecError: with one diagnostic per statement that does not parse.
    """
    spec, diagnostics = parse_partial(text, path=path, extensions=extensions)
    if diagnostics:
        raise SpecError(diagnostics, {path: text})
    return spec


def parse_partial(
    text: str, *, path: str = "<string>", extensions: Mapping[str, str] | None = None,
) -> tuple[ast.Spec, list[Diagnostic]]:
    """Parse what parses: the statements that are well formed, and a diagnostic for each that is not."""
    extension_key = tuple(sorted((extensions or {}).items()))
    parser = _parser(extension_key)
    keywords = set(BUILTIN_KEYWORDS) | {k for k, _ in extension_key}
    comments = _comments(text)
    try:
        statements: list[Any] = parser.parse(text)  # type: ignore[assignment]  # the transformer's list
        statements, deep = _shallow(statements, path)
        return ast.Spec.model_construct(statements=tuple(statements), comments=comments, path=path), deep
    except UnexpectedInput:
        pass
    statements, diagnostics = [], []
    for line, column, chunk in split_statements(text, keywords):
        padded = "\n" * (line - 1) + " " * (column - 1) + chunk
        try:
            statements.extend(parser.parse(padded))  # type: ignore[arg-type]
        except UnexpectedInput as error:
            diagnostics.append(diagnose(error, path, padded, keywords, parser))
    statements, deep = _shallow(statements, path)
    spec = ast.Spec.model_construct(statements=tuple(statements), comments=comments, path=path)
    return spec, sorted(diagnostics + deep, key=lambda d: (d.line, d.column))


def _shallow(statements: list[Any], path: str) -> tuple[list[Any], list[Diagnostic]]:
    """Keep statements within the nesting bound; the others become diagnostics (see gmhf.dsl.depth)."""
    kept, deep = [], []
    for stmt in statements:
        problem = too_deep(stmt, path)
        if problem is None:
            kept.append(stmt)
        else:
            deep.append(problem)
    return kept, deep


def _comments(text: str) -> tuple[ast.Comment, ...]:
    found = []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for match in _COMMENT_OR_STRING.finditer(text):
        if match.group().startswith("#"):
            line = bisect.bisect_right(line_starts, match.start())
            column = match.start() - line_starts[line - 1] + 1
            span = ast.Span.model_construct(line=line, column=column, end_line=line,
                                            end_column=column + len(match.group()))
            found.append(ast.Comment.model_construct(text=match.group(), span=span))
    return tuple(found)
