"""`terminal`: a person at a prompt judges each generated environment with one key.

For each question the expert saves the domain's picture to `PICTURES/<sample_id>.png`, prints a
header (`question 3/10 (round 2, r002-03)`) and the picture's path, shows the picture inline when
the terminal can (iTerm2 and WezTerm, kitty), prints θ only when asked to (`show_theta`: hidden by
default, so that the judgement is about what the environment looks like), then reads one key, no
Enter needed:

    a  accept      r  reject      u  unsure      q  stop (the answers given so far are kept)

Any other key re-prompts with a reminder; Ctrl-C or the end of input (Ctrl-D) stop like `q`. Keys
pressed before the prompt appears are discarded, so a key meant for one picture never answers the
next. Everything is written to stderr (stdout is kept for `--json`); keys are read from the
terminal, and without one (stdin a pipe or a file) `ask` fails at once instead of waiting.
`terminal:0.9` states the person's reliability; by default it is not stated.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import click

from gmhf.console import is_terminal
from gmhf.core.experts import Answer, ExpertContext, Question, parse_options, unit_interval
from gmhf.errors import UsageError
from gmhf.files import write_atomic

__all__ = ["TerminalExpert"]

#: The keys a person presses, and what each one means (`q` is not an answer: it stops).
KEYS: dict[str, Answer] = {"a": "accept", "r": "reject", "u": "unsure"}
PROMPT = "[a]ccept  [r]eject  [u]nsure  [q]uit > "
REMINDER = "press a (accept), r (reject), u (unsure) or q (stop)"
_KITTY_CHUNK = 4096  # kitty's limit on the base64 payload of one escape


class TerminalExpert:
    """A person who answers at the terminal, one key per question.

    Args:
        pictures: the folder where each question's picture is saved (created when needed).
        reliability: the person's stated probability of being right (None: not stated).
        show_theta: print θ next to the picture.
    """

    kind: ClassVar[str] = "terminal"

    def __init__(self, pictures: Path, *, reliability: float | None = None, show_theta: bool = False) -> None:
        self.pictures, self.reliability, self.show_theta = Path(pictures), reliability, show_theta
        self.name = "terminal" if reliability is None else f"terminal:{reliability:g}"

    @classmethod
    def create(cls, argument: str, context: ExpertContext) -> TerminalExpert:
        """`terminal`, or `terminal:P` with a stated reliability P in (0, 1]."""
        options = parse_options(argument, positional="reliability", allowed=())
        reliability = options.get("reliability")
        return cls(context.pictures, show_theta=context.show_theta,
                   reliability=None if reliability is None else unit_interval("reliability", reliability, low_open=True))

    def ask(self, questions: Sequence[Question]) -> list[Answer]:
        """One answer per question, in order; fewer when the person stops (`q`, Ctrl-C, end of input).

        Raises:
            UsageError: stdin is not a terminal (a pipe or a file), so nobody can answer.
        """
        if not questions:
            return []
        if not is_terminal(sys.stdin):
            raise UsageError("the terminal expert needs an interactive terminal; stdin is not one. Run gmhf from a "
                             "terminal, or use another expert (--expert simulated:0.9, or the web app).")
        answers: list[Answer] = []
        try:
            for number, question in enumerate(questions, 1):
                self._show(question, number, len(questions))
                answer = _read_answer()
                if answer is None:
                    break
                answers.append(answer)
                _say(f"-> {answer}")
        except KeyboardInterrupt:  # Ctrl-C while the picture was being made
            pass
        if len(answers) < len(questions):
            _say(f"-> stop ({len(answers)} of {len(questions)} answered)")
        return answers

    def _show(self, question: Question, number: int, total: int) -> None:
        png = question.view()
        self.pictures.mkdir(parents=True, exist_ok=True)
        path = self.pictures / f"{question.sample_id}.png"
        write_atomic(path, png)
        _say(f"\nquestion {number}/{total} (round {question.round}, {question.sample_id})")
        _say(f"picture: {path.resolve()}")
        image = inline_image(png, path.name, os.environ)
        if image:
            sys.stderr.write(image + "\n")
            sys.stderr.flush()
        if self.show_theta:
            _say("theta: " + ", ".join(f"{k}={_format(v)}" for k, v in question.theta.items()))

    def __repr__(self) -> str:
        shown = ", show_theta=True" if self.show_theta else ""
        stated = "" if self.reliability is None else f", reliability={self.reliability:g}"
        return f"TerminalExpert(pictures={str(self.pictures)!r}{stated}{shown})"


def inline_image(png: bytes, filename: str, environ: Any) -> str:
    """The escape that draws `png` inline in this terminal (iTerm2/WezTerm, kitty), or "" when it cannot."""
    data = base64.b64encode(png).decode("ascii")
    if environ.get("TERM_PROGRAM") in ("iTerm.app", "WezTerm"):
        name = base64.b64encode(filename.encode()).decode("ascii")
        return f"\x1b]1337;File=name={name};size={len(png)};inline=1;preserveAspectRatio=1:{data}\x07"
    if environ.get("KITTY_WINDOW_ID") or environ.get("TERM") == "xterm-kitty":
        chunks = [data[i:i + _KITTY_CHUNK] for i in range(0, len(data), _KITTY_CHUNK)] or [""]
        parts = []
        for i, chunk in enumerate(chunks):
            more = int(i < len(chunks) - 1)
            # q=2: kitty sends no reply, which would otherwise arrive on stdin as keys.
            head = f"a=T,f=100,q=2,m={more}" if i == 0 else f"m={more}"
            parts.append(f"\x1b_G{head};{chunk}\x1b\\")
        return "".join(parts)
    return ""


def _read_answer() -> Answer | None:
    """The answer for one key, re-prompting on other keys; None when the person stops."""
    _say(PROMPT, nl=False)
    while True:
        try:
            key = click.getchar()
        except (KeyboardInterrupt, EOFError):
            key = "q"
        key = key.lower() if key else "q"  # an empty read: the terminal is gone
        if key == "q":
            _say("")
            return None
        if key in KEYS:
            _say(key)
            return KEYS[key]
        _say(f"\n{REMINDER} (got {key!r}) > ", nl=False)


def _say(text: str, *, nl: bool = True) -> None:
    click.echo(text, err=True, nl=nl)


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
