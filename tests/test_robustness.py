"""Any text at all: `check_text` raises nothing but SpecError, and every diagnostic points into the file.

Positions are counted as Lark counts them: lines are `text.split("\\n")` (a `\\r` before the `\\n` is part
of its line; form feeds, `\\x85` and `\\u2028` are not line ends), columns are 1-based characters. So a
file ending in a newline has an empty last line, and the end-of-file position after that newline,
(that line, column 1), lies inside the file. No other position past the last character does: the
column may be at most one past the end of its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from gmhf.api import check_text
from gmhf.dsl import ast
from gmhf.dsl.errors import SpecError
from gmhf.dsl.format import format_spec
from gmhf.dsl.parse import parse
from gmhf.plugins.manager import PluginHost, using_plugins
from tests.strategies import RESERVED_WORDS, identifiers

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = Lark(resources.files("gmhf.grammars").joinpath("guidance.lark").read_text(encoding="utf-8"),
               parser="lalr", lexer="basic", start="start")

# Fixed and database-less, so CI runs the same examples every time. Grammar texts are slow to draw
# (about 0.1 s each on a 2-core machine), mutations cheap; the counts keep the file near 40 s there.
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture(autouse=True)
def builtins_only(toy_plugins: PluginHost) -> Iterator[PluginHost]:
    """Only the built-in plugins, for the whole test (autouse, so Hypothesis accepts it)."""
    with using_plugins() as host:
        yield host


def assert_only_located_spec_errors(text: str) -> None:
    """Check `text`; the only exception allowed is SpecError, whose diagnostics all lie in their file."""
    try:
        check_text(text, path="fuzz.guide")
    except SpecError as error:
        for d in error.diagnostics:
            assert d.path in error.sources, f"no source kept for {d.path!r}: {d}"
            lines = error.sources[d.path].split("\n")
            assert 1 <= d.line <= len(lines), f"line {d.line} of {len(lines)}: {d}"
            assert 1 <= d.column <= len(lines[d.line - 1]) + 1, (
                f"column {d.column} on line {d.line} ({lines[d.line - 1]!r}): {d}")
            assert (d.end_line, d.end_column) >= (d.line, d.column), f"span ends before it starts: {d}"
        str(error)  # rendering must not fail either


# ------------------------------------------------------------------ texts from the grammar


# Names the built-ins know, so grammar texts reach the checks past "unknown factor".
_KNOWN_NAMES = ("sinusoid", "amplitude", "phase", "frequency", "noise", "x", "y", "normal", "uniform",
                "beta", "lognormal", "choice", "abs", "max", "min", "sqrt", "log", "exp", "sin", "cos")


def _spaced_terminals() -> dict[str, st.SearchStrategy[str]]:
    """Each terminal followed by a space, names never reserved, comments only before line ends: text
    the grammar accepts token for token (from_lark itself glues `domain` and a name into one name)."""
    explicit: dict[str, st.SearchStrategy[str]] = {}
    for terminal in GRAMMAR.terminals:
        pattern = terminal.pattern
        if terminal.name == "NAME":
            base = st.sampled_from(_KNOWN_NAMES) | identifiers()
        elif pattern.type == "str":
            base = st.just(pattern.value)
        else:
            base = st.from_regex(pattern.to_regexp(), fullmatch=True)
        explicit[terminal.name] = base.map(lambda s: s + " ")
    comment = st.just("") | st.from_regex(r"#[^\n]*", fullmatch=True)
    line_end = st.tuples(comment, st.sampled_from(("\n", "\r\n")), st.sampled_from(("", "  ", "\t", "\f")))
    explicit["_NL"] = st.lists(line_end.map("".join), min_size=1, max_size=3).map("".join)
    explicit["COMMENT"] = st.just("")  # a comment where from_lark puts one would swallow the line
    return explicit


@FUZZ
@given(from_lark(GRAMMAR, start="start"))
def test_grammar_texts_fail_only_with_located_spec_errors(text: str) -> None:
    """Raw from_lark text (tokens glued, comments anywhere) raises only SpecError, located in the file."""
    assert_only_located_spec_errors(text)


@settings(FUZZ, max_examples=300)
@given(from_lark(GRAMMAR, start="start", explicit=_spaced_terminals()))
def test_grammar_texts_parse_and_format_back(text: str) -> None:
    """Grammar-valid text parses, fmt keeps its tree and comments, and checking it gives located SpecErrors."""
    spec = parse(text, path="fuzz.guide")
    formatted = format_spec(spec)
    again = parse(formatted, path="fuzz.guide")
    assert ast.strip_spans(again) == ast.strip_spans(spec)
    assert [c.text.rstrip() for c in again.comments] == [c.text.rstrip() for c in spec.comments]
    assert format_spec(again) == formatted
    assert_only_located_spec_errors("domain sinusoid\n" + text)


# ------------------------------------------------------------------ mutated valid specs

SEEDS = (
    (ROOT / "examples" / "specs" / "sinusoid.guide").read_text(encoding="utf-8"),
    "domain sinusoid\nshift amplitude in 1 .. 2\n"
    "require 0.5 < frequency <= 2 and not (noise > 0.3 or phase == 0)\n",
    "domain sinusoid; trust 1e-3; prefer -amplitude ^ 2 / 4 >= -1 weight -0.5\n",
    "# header\n\ndomain sinusoid\nprior phase ~ uniform(0, 6.28)  # trailing\nexpect max(y) != 0\n",
    "domain sinusoid\nshift amplitude by -0.05\nshift noise by *2\nshift frequency by +1\ninvariant phase\n",
    "domain sinusoid\nprior amplitude ~ normal(\n    5,\n    1.5\n)\nprior noise between 0 and 0.2 with 50%\n",
)
# Pieces a mutation may insert: every character the lexer cares about, odd line ends, and whole tokens.
_CHARACTERS = list('.,;:()[]"#=<>!~%^*+-/\n \t\r\f\x0b\x1e\x85\u2028éaZ_09')
_TOKENS = sorted(RESERVED_WORDS) + [
    "..", "<=", ">=", "==", "!=", "1e999", "0.5", "1e-300", "sinusoid", "amplitude", "y", "choice",
    "normal", "rain:", '"x.guide"', "# c\n", "(", ")", "[", "]",
]
_TOKEN_SPLIT = r"\w+|\s+|[^\w\s]"


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    """A seed spec after one to four deletions, duplications, swaps or insertions of characters or tokens."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            units = list(text)
            inserts = st.sampled_from(_CHARACTERS)
        else:
            units = re.findall(_TOKEN_SPLIT, text)
            inserts = st.sampled_from(_TOKENS)
        i = draw(st.integers(0, max(0, len(units) - 1)))
        j = draw(st.integers(i, min(len(units), i + 3)))
        action = draw(st.sampled_from(("delete", "duplicate", "swap", "insert")))
        if action == "delete":
            units[i:j] = []
        elif action == "duplicate":
            units[i:i] = units[i:j]
        elif action == "swap" and j < len(units):
            units[i], units[j] = units[j], units[i]
        else:
            units[i:i] = draw(st.lists(inserts, min_size=1, max_size=3))
        text = "".join(units)
    return text


def test_seeds_are_valid() -> None:
    """The specs that the mutations start from check cleanly."""
    for seed in SEEDS:
        check_text(seed, path="fuzz.guide")


@settings(FUZZ, max_examples=1500)
@given(mutated_specs())
def test_mutated_specs_fail_only_with_located_spec_errors(text: str) -> None:
    """A valid spec with random edits raises only SpecError, every diagnostic inside the file."""
    assert_only_located_spec_errors(text)


EDGE_TEXTS = [
    "", "\n", "\n\n", "trust", "trust\n", "trust\f\f", "shift x in [", "(\n\n", '"',
    "domain sinusoid\nrequire (amplitude <\n",
    # Found by the fuzzers: the end of a statement was placed by str.splitlines, which also splits at
    # "\x1e", "\x85", "\u2028"..., so it could land on a line or column the file does not have.
    'use#"\x1e"', 'use#"\x1e"       \ndomainA', "trust # \x85\x85", "domain sinusoid\ntrust # \u2028\u2028",
    # A NUL byte in a `use` path made pathlib raise ValueError instead of a diagnostic.
    'use "\x00" ', 'domain sinusoid\nuse ""',
]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_edge_texts_fail_only_with_located_spec_errors(text: str) -> None:
    """Empty files, lone keywords, unclosed brackets and odd line ends give diagnostics inside the file."""
    assert_only_located_spec_errors(text)
