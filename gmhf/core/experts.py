"""Experts: who judges generated environments, and the questions they are asked.

An expert sees generated environments (a picture of each, through the domain's `view`) and says
whether each is plausible for the target: accept, reject or unsure. The loop treats every answer
as a noisy label of "θ is plausible" that is right with the expert's reliability p. Experts are
plugins (`gmhf_experts`); the built-in ones live in `gmhf.experts`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor

    from gmhf.core.belief import Belief

__all__ = ["ANSWERS", "Answer", "Expert", "ExpertContext", "Question", "parse_expert"]

Answer = Literal["accept", "reject", "unsure"]
#: Every answer an expert may give, in the order a person is offered them.
ANSWERS: tuple[Answer, ...] = ("accept", "reject", "unsure")


@dataclass(frozen=True)
class Question:
    """One generated environment put to an expert.

    Attributes:
        sample_id: unique within a run (`r003-07`: round 3, 8th question); the key of the store.
        round: the feedback round it belongs to.
        theta: the environment as a plain record (factor -> value, level names for categories).
        values: the same θ as a float64 row `[k]` in the domain's factor order.
        view: makes the domain's picture of the environment (PNG bytes) when called.
    """

    sample_id: str
    round: int
    theta: dict[str, Any]
    values: Tensor
    view: Callable[[], bytes] = field(repr=False, compare=False)


@dataclass(frozen=True)
class ExpertContext:
    """What an expert may need to be built: set by the run, the same for every expert kind.

    Attributes:
        truth: the benchmark truth, for simulated experts (None when no truth is known).
        seed: the run's seed; an expert derives its own randomness from it and its `index`.
        index: the expert's position on the command line (several experts may answer one loop).
        pictures: a folder where pictures shown to a person are saved.
        show_theta: whether a person is shown θ next to the picture (hidden by default, so that
            the judgement is about what the environment looks like).
    """

    truth: Belief | None
    seed: int = 0
    index: int = 0
    pictures: Path = Path(".")
    show_theta: bool = False


@runtime_checkable
class Expert(Protocol):
    """Base protocol of experts: answers questions about generated environments.

    Attributes:
        name: how the expert is named in the store and in reports (e.g. `simulated:0.9`).
        reliability: the stated probability that an answer is right (None: not stated).
    """

    name: str
    reliability: float | None

    def ask(self, questions: Sequence[Question]) -> list[Answer]:
        """One answer per question, in order; a shorter list means the expert stopped (the rest unasked)."""
        ...


class ExpertFactory(Protocol):
    """What a registered expert class offers: a way to be built from its command-line argument."""

    kind: ClassVar[str]

    @classmethod
    def create(cls, argument: str, context: ExpertContext) -> Expert:
        """The expert for `argument`, the text after `KIND:` on the command line (may be empty)."""
        ...


def parse_expert(text: str) -> tuple[str, str]:
    """Split `simulated:0.9,unsure=0.1` into its kind and argument (`terminal` has an empty argument)."""
    kind, _, argument = text.partition(":")
    return kind.strip(), argument.strip()


def parse_options(argument: str, *, positional: str, allowed: Sequence[str]) -> dict[str, str]:
    """`0.9,unsure=0.1` -> {positional: "0.9", "unsure": "0.1"}; unknown keys raise a UsageError."""
    from gmhf.errors import UsageError

    options: dict[str, str] = {}
    for i, part in enumerate(p.strip() for p in argument.split(",") if p.strip()):
        key, eq, value = part.partition("=")
        if not eq:
            if i != 0:
                raise UsageError(f"expert option {part!r} needs a name (NAME=VALUE); only the first may be bare.")
            key, value = positional, part
        if key not in (positional, *allowed):
            raise UsageError(f"unknown expert option {key!r}; expected {', '.join((positional, *allowed))}.")
        options[key.strip()] = value.strip()
    return options


def sample_id(round_: int, index: int) -> str:
    """The store's key of a question: `r003-07`."""
    return f"r{round_:03d}-{index:02d}"


def unit_interval(name: str, text: str, *, low_open: bool = False) -> float:
    """`text` as a number in [0, 1] (or (0, 1]), else a UsageError naming the option."""
    import math

    from gmhf.errors import UsageError

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise UsageError(f"expert option `{name}` must be a number in {interval}, got {text!r}.")
    return value


def check_answers(expert: Expert, questions: Sequence[Question], answers: Sequence[str]) -> list[Answer]:
    """The answers, checked: at most one per question, each one of `ANSWERS` (a plugin's mistake otherwise)."""
    from gmhf.errors import GmhfError

    if len(answers) > len(questions):
        raise GmhfError(f"expert {expert.name!r} gave {len(answers)} answers to {len(questions)} questions.")
    bad = [a for a in answers if a not in ANSWERS]
    if bad:
        raise GmhfError(f"expert {expert.name!r} answered {bad[0]!r}; answers are {', '.join(ANSWERS)}.")
    return list(answers)  # type: ignore[arg-type]  # checked just above
