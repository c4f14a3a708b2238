"""`fmt` never moves a comment away from the code it follows, even inside a statement spread over lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gmhf.dsl import ast
from gmhf.dsl.format import format_spec
from gmhf.dsl.parse import parse

LANGUAGE_MD = Path(__file__).resolve().parent.parent / "docs" / "language.md"
BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)
LEAF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?")

TASK_EXAMPLE = "require (amplitude > 1   # big enough to see\n         and noise < 0.5)  # and clean\n"
LAYOUTS = [
    TASK_EXAMPLE,
    "prior x ~ normal(\n    0.2,\n    # the spread\n    0.05\n)\n",
    "prior x ~ normal(\n    0.2, 0.05\n    # after\n)  # end\ntrust 1\n",
    "trust 1; require (a > 1  # c\n or b); trust 2  # t\n",
    "prefer (x > 1  # c\n) weight 2\n",
    "prefer (x > 1  # c\n or y < 2\n) weight -2 # w\n",
    "require not (a  # c\n and b)\n",
    "require -(a  # c\n + b) ^ 2 > 1\n",
    "require (a  # c\n ) > 1\n",
    "shift x in [a,  # c\n b,\n c]  # d\n",
    "shift x in (1 +  # c\n 2) .. (3 # d\n * 4)\n",
    "prior x between (1  # c\n ) and 2 with 90%\n",
    "expect f(a,  # c\n  b: 3) < (1 # x\n + 2)\n",
    "require ((a  # c\n or b) and c)\n",
    "require (a < (b  # c\n + 1) < d)\n",
    "require ( # c\n a > 1)\n",
    "domain d\n\n\nrequire (a # c\n\n\n or b)\n\n\ntrust 1\n",
]


def fmt(text: str) -> str:
    return format_spec(parse(text))


def _docs_example() -> str:
    """The example under "Lexical rules" in docs/language.md: comments inside a multi-line `normal(...)`."""
    (block,) = [b for b in BLOCK.findall(LANGUAGE_MD.read_text(encoding="utf-8")) if "# mean" in b]
    return block


def _code_before_comments(text: str) -> list[tuple[str, str]]:
    """(comment, last name or number before it on its line) for each comment that follows code."""
    found = []
    for line in text.splitlines():
        code, hash_, comment = line.partition("#")
        leaves = LEAF.findall(code)
        if hash_ and leaves:
            found.append(("#" + comment.rstrip(), leaves[-1]))
    return found


def _statements(text: str) -> tuple[ast.Node, ...]:
    return ast.strip_spans(parse(text)).statements  # type: ignore[attr-defined, no-any-return]


def test_docs_example_keeps_each_comment_on_its_line() -> None:
    """language.md's multi-line `normal(` with a comment per argument keeps every comment beside its argument."""
    text = _docs_example()
    formatted = fmt(text)
    assert _code_before_comments(formatted) == _code_before_comments(text)
    assert "    0.2,  # mean\n    0.05  # standard deviation\n)\n" in formatted


def test_docs_example_is_a_fixed_point_with_the_same_tree() -> None:
    """fmt of the docs example is idempotent and parses to the same statements as the example."""
    once = fmt(_docs_example())
    assert fmt(once) == once
    assert _statements(once) == _statements(_docs_example())


def test_condition_over_two_lines_keeps_its_comments() -> None:
    """A bracketed condition with a comment on each line stays on two lines, parenthesised."""
    assert fmt(TASK_EXAMPLE) == "require (amplitude > 1 and  # big enough to see\n    noise < 0.5)  # and clean\n"


def test_multiline_without_inner_comment_still_joins() -> None:
    """Only a comment inside the brackets keeps the breaks; a trailing one alone does not."""
    assert fmt("require (a < 3 or\n   b < 1)   # note\n") == "require a < 3 or b < 1  # note\n"


@pytest.mark.parametrize("text", LAYOUTS)
def test_layout_keeps_tree_comments_and_is_idempotent(text: str) -> None:
    """Every odd layout keeps its statements, keeps every comment, and formats to a fixed point."""
    once = fmt(text)
    assert fmt(once) == once
    assert _statements(once) == _statements(text)
    assert sorted(c.text.strip() for c in parse(once).comments) == sorted(c.text.strip() for c in parse(text).comments)
