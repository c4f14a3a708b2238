"""`simulated:P`: an expert who knows the benchmark truth and answers right with probability P.

For experiments: it accepts an environment when θ lies in the truth's support and satisfies its
`require`s, then flips that answer with probability 1 − P, and says "unsure" with probability Q
(`simulated:0.9,unsure=0.1`). `claims=C` makes it state C as its reliability while it answers at P
(`simulated:0.5,claims=0.9`: an over-confident expert, for testing the reliability estimate). Its
randomness for a question depends only on the run's seed, its position among the experts and the
question's id, so a resumed run gets, for a new question, the answer an uninterrupted run would
have got.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import torch

from gmhf.core.experts import Answer, ExpertContext, Question, parse_options, unit_interval
from gmhf.core.seeding import named_stream
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from gmhf.core.belief import Belief

__all__ = ["SimulatedExpert"]


class SimulatedExpert:
    """Answers from a truth spec, wrong with probability 1 − `accuracy`, unsure with probability `unsure`.

    Args:
        truth: the target; "plausible" means `truth.accepts(θ)`.
        reliability: P, the probability that a (sure) answer is right.
        unsure: Q, the probability of answering "unsure" instead.
        claims: the reliability it states (`.reliability`), when that differs from P.
        seed: with `index`, makes every answer reproducible.
        index: the expert's position among several.
    """

    kind: ClassVar[str] = "simulated"

    def __init__(self, truth: Belief, reliability: float, *, unsure: float = 0.0, claims: float | None = None,
                 seed: int = 0, index: int = 0) -> None:
        self.truth, self.accuracy, self.unsure = truth, float(reliability), float(unsure)
        self.reliability = self.accuracy if claims is None else float(claims)
        self.seed, self.index = seed, index
        self.name = (f"simulated:{self.accuracy:g}" + (f",unsure={self.unsure:g}" if self.unsure else "")
                     + (f",claims={self.reliability:g}" if claims is not None else ""))

    @classmethod
    def create(cls, argument: str, context: ExpertContext) -> SimulatedExpert:
        """`simulated:P[,unsure=Q][,claims=C]`, knowing `context.truth`."""
        options = parse_options(argument, positional="p", allowed=("unsure", "claims"))
        if "p" not in options:
            raise UsageError("`simulated` needs its reliability: --expert simulated:0.9 (answers right 90% of the time).")
        if context.truth is None:
            raise UsageError("a simulated expert needs a truth to answer from: give --truth, or use a domain that "
                             "ships a benchmark truth.")
        return cls(context.truth, unit_interval("P", options["p"]),
                   unsure=unit_interval("unsure", options.get("unsure", "0")),
                   claims=unit_interval("claims", options["claims"]) if "claims" in options else None,
                   seed=context.seed, index=context.index)

    def ask(self, questions: Sequence[Question]) -> list[Answer]:
        """One answer per question (a simulated expert never stops early)."""
        if not questions:
            return []
        plausible = self.truth.accepts(torch.stack([q.values for q in questions]))
        answers: list[Answer] = []
        for question, truly in zip(questions, plausible.tolist(), strict=True):
            stream = named_stream(self.seed, self.index, question.sample_id)
            draws = torch.rand(2, generator=stream, dtype=torch.float64).tolist()
            if draws[0] < self.unsure:
                answers.append("unsure")
                continue
            right = draws[1] < self.accuracy
            answers.append("accept" if truly == right else "reject")
        return answers


    def __repr__(self) -> str:
        return (f"SimulatedExpert(accuracy={self.accuracy:g}, reliability={self.reliability:g}, "
                f"unsure={self.unsure:g}, index={self.index})")
