"""Error recovery: cut a file that does not parse into statements, and say what went wrong in each.

Lark stops at the first syntax error; cutting at `;` and line ends (outside brackets) and parsing each
piece on its own reports every broken statement of a file, and the good ones still get checked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from gmhf.dsl import ast
from gmhf.dsl.errors import Diagnostic, did_you_mean

__all__ = ["diagnose", "split_statements"]

_DESCRIBE = {
    "NAME": "a name", "NUMBER": "a number", "STRING": 'a quoted path ("...")', "_NL": "end of line",
    "$END": "end of file",
}


#: Typographic look-alikes (what word processors and maths fonts put in) and the ASCII the language uses.
ASCII_FORMS = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2264": "<=", "\u2265": ">=", "\u2260": "!=",
    "\u2026": "..", "\u00d7": "*", "\u00b7": "*", "\u00f7": "/", "\u201c": '"', "\u201d": '"',
    "\u2018": "'", "\u2019": "'", "\u00a0": " ", "\u2192": "->",
}


def _ascii_hint(text: str, pos: int) -> str | None:
    """For a non-ASCII character: the ASCII the language expects (`≤` → `<=`, `amplitüde` → `amplitude`)."""
    char = text[pos]
    if char in ASCII_FORMS:
        return f"did you mean `{ASCII_FORMS[char]}`? gmhf reads ASCII operators"
    start, end = pos, pos + 1
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    word = text[start:end]
    plain = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
    if plain and plain != word and (plain[0].isalpha() or plain[0] == "_" or word == char):
        return f"did you mean `{plain}`? names are ASCII letters, digits and `_`"
    if ord(char) > 127:
        return f"{unicodedata.name(char, 'this character').lower()} is not part of the language; names and operators are ASCII"
    return None


def _token_span(token: Token) -> ast.Span:
    line, column = token.line or 1, token.column or 1
    return ast.Span(line=line, column=column, end_line=token.end_line or line,
                    end_column=token.end_column or column + 1)


def split_statements(text: str, keywords: set[str]) -> Iterator[tuple[int, int, str]]:
    """Cut text at `;` and line ends outside brackets; a line starting with a keyword always starts anew.

    Yields (line, column, chunk) with 1-based positions of the chunk's first character.
    """
    # Long: a hand-written scanner (comments, strings, brackets) is easiest to follow as one loop.
    line, column = 1, 1
    start: tuple[int, int, int] | None = None  # (offset, line, column)
    depth = 0
    i, n = 0, len(text)
    at_line_start = True

    def flush(end: int) -> Iterator[tuple[int, int, str]]:
        if start is not None and text[start[0]:end].strip():
            yield start[1], start[2], text[start[0]:end]

    while i < n:
        ch = text[i]
        if at_line_start and depth and ch not in " \t\f\r\n#":
            word = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i:i + 32])
            if word and word.group() in keywords:  # an unclosed bracket must not swallow the file
                yield from flush(i)
                start, depth = None, 0
        at_line_start = False
        if ch == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            column += j - i
            i = j
            continue
        if ch == '"':
            j = text.find('"', i + 1)
            nl = text.find("\n", i + 1)
            j = n - 1 if j < 0 or (0 <= nl < j) else j
            if start is None:
                start = (i, line, column)
            column += j + 1 - i
            i = j + 1
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == ";" or (ch == "\n" and not depth):
            yield from flush(i)
            start = None
        elif start is None and ch not in " \t\f\r\n":
            start = (i, line, column)
        if ch == "\n":
            line, column, at_line_start = line + 1, 1, True
        else:
            column += 1
        i += 1
    yield from flush(n)


def _describe(terminal: str, parser: Lark) -> str:
    if terminal in _DESCRIBE:
        return _DESCRIBE[terminal]
    for definition in parser.terminals:
        if definition.name == terminal and definition.pattern.type == "str":
            return f"'{definition.pattern.value}'"
    return terminal.lower()


def diagnose(error: UnexpectedInput, path: str, text: str, keywords: set[str], parser: Lark) -> Diagnostic:
    line, column = error.line, error.column
    if isinstance(error, UnexpectedCharacters):
        pos = error.pos_in_stream or 0
        char = text[pos] if 0 <= pos < len(text) else "?"
        hint = {
            "=": "use `==` to compare, `~` to give a prior",
            ".": "write numbers with a digit before the point (0.5) and intervals as `lo .. hi`",
            '"': "a quoted path must close on the same line",
        }.get(char) or (_ascii_hint(text, pos) if 0 <= pos < len(text) else None)
        span = ast.Span(line=line, column=column, end_line=line, end_column=column + 1)
        return Diagnostic.at(path, span, f"unexpected character {char!r}", hint=hint)
    token = getattr(error, "token", None)
    expected = sorted(getattr(error, "expected", None) or getattr(error, "accepts", None) or ())
    if isinstance(error, UnexpectedToken) and token is not None and token.type != "$END":
        span = _token_span(token) if token.type != "_NL" else ast.Span(
            line=token.line, column=token.column, end_line=token.line, end_column=token.column + 1)
        if token.type == "NAME" and {k.upper() for k in keywords} & set(expected):
            return Diagnostic.at(path, span, f"unknown keyword `{token}`",
                                 hint=did_you_mean(str(token), keywords))
        what = "end of line" if token.type == "_NL" else f"`{token}`"
        message = f"unexpected {what}"
    else:
        # Lines as Lark counts them (only "\n" ends one; splitlines would also split at "\f", "\x1e"...),
        # and the end of the statement is after its last visible character.
        lines = text.rstrip().split("\n")
        line, column = len(lines), len(lines[-1]) + 1
        span = ast.Span(line=line, column=column, end_line=line, end_column=column + 1)
        message = "unexpected end of statement"
        if isinstance(error, UnexpectedEOF):
            expected = sorted(error.expected)
    shown = sorted({_describe(t, parser) for t in expected if t not in ("_NL", "SEMI", "$END", "COMMENT")})
    if shown:
        message += "; expected " + (shown[0] if len(shown) == 1 else "one of " + ", ".join(shown))
    return Diagnostic.at(path, span, message)
