"""Frozen syntax tree of a guidance spec, every node carrying its source span.

Nodes are pydantic models so they validate, serialise and compare like the rest of the API. The
parser builds them without validation (its input is already well formed), which keeps parsing
fast; hand-built trees are validated as usual. Spans take no part in `strip_spans` comparisons,
which is how the round-trip property `parse(fmt(ast)) == ast` is stated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Binary", "BoolOp", "Call", "Compare", "CustomStatement", "Domain", "Expect", "Expr", "Invariant",
    "Name", "NamedArg", "Neg", "Not", "Number", "Prefer", "Prior", "PriorBetween", "Require", "ShiftBy",
    "ShiftIn", "ShiftLevels", "Span", "Spec", "Statement", "Trust", "Use", "Word", "names_in", "strip_spans",
    "walk",
]


class Node(BaseModel):
    """Base class for syntax nodes: frozen, with an optional source span."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Span(Node):
    """Where a node sits in its file: 1-based lines and columns, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int

    def __repr__(self) -> str:
        return f"Span({self.line}:{self.column}-{self.end_line}:{self.end_column})"


# ------------------------------------------------------------------ expressions


class Number(Node):
    """A non-negative numeric literal (a minus sign is a `Neg` node)."""

    kind: Literal["number"] = "number"
    value: float = Field(ge=0, allow_inf_nan=False)
    span: Span | None = None


class Name(Node):
    """A factor, observable or level name."""

    kind: Literal["name"] = "name"
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    span: Span | None = None


class Neg(Node):
    """Unary minus."""

    kind: Literal["neg"] = "neg"
    operand: Expr
    span: Span | None = None


class Binary(Node):
    """Arithmetic: `+ - * / ^` (`^` is right-associative and binds tighter than unary minus)."""

    kind: Literal["binary"] = "binary"
    op: Literal["+", "-", "*", "/", "^"]
    left: Expr
    right: Expr
    span: Span | None = None


class Compare(Node):
    """A comparison chain, `a < b <= c` meaning `a < b and b <= c`."""

    kind: Literal["compare"] = "compare"
    operands: tuple[Expr, ...] = Field(min_length=2)
    ops: tuple[Literal["<", "<=", ">", ">=", "==", "!="], ...] = Field(min_length=1)
    span: Span | None = None


class BoolOp(Node):
    """`and` / `or` over two or more operands (one flat node per run of the same operator)."""

    kind: Literal["boolop"] = "boolop"
    op: Literal["and", "or"]
    operands: tuple[Expr, ...] = Field(min_length=2)
    span: Span | None = None


class Not(Node):
    """Logical negation."""

    kind: Literal["not"] = "not"
    operand: Expr
    span: Span | None = None


class NamedArg(Node):
    """`level: weight` inside a call such as `choice(rain: 0.7, snow: 0.3)`."""

    kind: Literal["named_arg"] = "named_arg"
    name: Name
    value: Expr
    span: Span | None = None


class Call(Node):
    """A call to a registered function or distribution."""

    kind: Literal["call"] = "call"
    func: Name
    args: tuple[Expr | NamedArg, ...] = ()
    span: Span | None = None


Expr = Union[Number, Name, Neg, Binary, Compare, BoolOp, Not, Call]

# ------------------------------------------------------------------ statements


class Domain(Node):
    """`domain NAME`: which domain's factors the spec talks about."""

    keyword: Literal["domain"] = "domain"
    name: Name
    span: Span | None = None


class Use(Node):
    """`use "file.guide"`: include another spec."""

    keyword: Literal["use"] = "use"
    path: str = Field(pattern=r'^[^"\n]*$')
    span: Span | None = None


class Invariant(Node):
    """`invariant a, b`: target = source for these factors, and the steerer may not move them."""

    keyword: Literal["invariant"] = "invariant"
    factors: tuple[Name, ...] = Field(min_length=1)
    span: Span | None = None


class ShiftIn(Node):
    """`shift F in lo .. hi`: believed support of a real or integer factor."""

    keyword: Literal["shift"] = "shift"
    factor: Name
    low: Expr
    high: Expr
    span: Span | None = None


class ShiftLevels(Node):
    """`shift F in [a, b]`: believed levels of a categorical (or integer) factor."""

    keyword: Literal["shift"] = "shift"
    factor: Name
    levels: tuple[Name | Number, ...] = Field(min_length=1)
    span: Span | None = None


class ShiftBy(Node):
    """`shift F by +d` / `by -d` / `by *k`: the source distribution offset or scaled."""

    keyword: Literal["shift"] = "shift"
    factor: Name
    op: Literal["+", "-", "*"]
    amount: Number
    span: Span | None = None


class Prior(Node):
    """`prior F ~ dist(args)`: the expert's belief density for F."""

    keyword: Literal["prior"] = "prior"
    factor: Name
    dist: Call
    span: Span | None = None


class PriorBetween(Node):
    """`prior F between a and b with P%`: an elicited credible interval."""

    keyword: Literal["prior"] = "prior"
    factor: Name
    low: Expr
    high: Expr
    percent: Number
    span: Span | None = None


class Require(Node):
    """`require E`: a hard constraint over factors."""

    keyword: Literal["require"] = "require"
    expr: Expr
    span: Span | None = None


class Prefer(Node):
    """`prefer E weight w`: a soft constraint, density times exp(w) where E holds."""

    keyword: Literal["prefer"] = "prefer"
    expr: Expr
    weight: float = Field(allow_inf_nan=False)
    span: Span | None = None


class Expect(Node):
    """`expect E`: a constraint on generated data, over the domain's observables."""

    keyword: Literal["expect"] = "expect"
    expr: Expr
    span: Span | None = None


class Trust(Node):
    """`trust p`: how reliable the spec's author is, in (0, 1]."""

    keyword: Literal["trust"] = "trust"
    value: Number
    span: Span | None = None


class Word(Node):
    """A literal word or symbol inside a plugin statement (kept so the statement can be printed)."""

    kind: Literal["word"] = "word"
    text: str
    span: Span | None = None


class CustomStatement(Node):
    """A statement whose keyword a plugin registered: its parts in source order."""

    keyword: str
    parts: tuple[Word | Expr, ...] = ()
    span: Span | None = None


Statement = Union[
    Domain, Use, Invariant, ShiftIn, ShiftLevels, ShiftBy, Prior, PriorBetween, Require, Prefer, Expect,
    Trust, CustomStatement,
]


class Comment(Node):
    """A `#` comment, kept so `fmt` can put it back."""

    text: str
    span: Span | None = None


class Spec(Node):
    """A whole file: its statements in order, and its comments."""

    statements: tuple[Statement, ...] = ()
    comments: tuple[Comment, ...] = ()
    path: str | None = None


def strip_spans(node: Node) -> Node:
    """Return a copy of `node` with every span (and comment) removed, for comparing structure only."""
    fields = {}
    for name in type(node).model_fields:
        value = getattr(node, name)
        if name == "span":
            value = None
        elif name == "comments":
            value = ()
        elif isinstance(value, Node):
            value = strip_spans(value)
        elif isinstance(value, tuple):
            value = tuple(strip_spans(v) if isinstance(v, Node) else v for v in value)
        fields[name] = value
    return type(node).model_construct(**fields)


def walk(node: Node) -> Iterator[Node]:
    """Yield `node` and every node below it, parents first, children in field order.

    The one traversal of the tree: code that looks for something in an expression filters this
    instead of writing its own recursion. It keeps its own stack, so a deeply nested expression
    cannot exhaust Python's recursion limit.
    """
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        below: list[Node] = []
        for name in type(current).model_fields:
            value = getattr(current, name)
            below.extend(v for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, Node))
        stack.extend(reversed(below))


def names_in(node: Node) -> tuple[str, ...]:
    """The names `node` refers to, each once, in source order.

    A named argument's label (`rain` in `choice(rain: 0.7)`) names a level or parameter, not a
    factor or observable, so it is left out; the function name of a call is left out too.
    """
    labels: set[int] = set()  # a parent is yielded before its children, so labels are known in time
    found: dict[str, None] = {}
    for current in walk(node):
        if isinstance(current, NamedArg):
            labels.add(id(current.name))
        elif isinstance(current, Call):
            labels.add(id(current.func))
        elif isinstance(current, Name) and id(current) not in labels:
            found.setdefault(current.id)
    return tuple(found)
