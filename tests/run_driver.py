"""Run `gmhf.run` with a counting expert, for the kill-and-resume test.

`python tests/run_driver.py RUN LOG start|resume` runs (or resumes) a small GMHF run on the vague
Duffing example whose only expert is `counting:1.0`: a simulated expert at p = 1 that appends the id
of every question it is asked to LOG before answering, so a test can tell whether a resumed run
asked a stored question again. The result document is printed as JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gmhf
from gmhf.core.experts import Answer, ExpertContext, Question
from gmhf.experts.simulated import SimulatedExpert

SETTINGS: dict[str, Any] = dict(rounds=12, answers_per_round=5, steps=40, meta_batch=8, pool_size=128,
                                eval_tasks=32, hidden=(16,), checkpoint_every=10)


class CountingExpert(SimulatedExpert):
    """`simulated:P` that logs each question id it is asked (path from the COUNTING_LOG set below)."""

    kind = "counting"
    log: Path = Path("asked.log")

    @classmethod
    def create(cls, argument: str, context: ExpertContext) -> CountingExpert:
        assert context.truth is not None
        return cls(context.truth, float(argument), seed=context.seed, index=context.index)

    def ask(self, questions: Sequence[Question]) -> list[Answer]:
        with open(self.log, "a", encoding="utf-8") as handle:
            for question in questions:
                handle.write(question.sample_id + "\n")
        return super().ask(questions)


class Plugin:
    @gmhf.hookimpl
    def gmhf_experts(self, register: Callable[..., None]) -> None:
        register("counting", CountingExpert)


def main(run: str, log: str, mode: str) -> None:
    import torch

    from gmhf.plugins.manager import using_plugins

    torch.set_num_threads(1)
    CountingExpert.log = Path(log)
    with using_plugins(Plugin()):
        if mode == "resume":
            result = gmhf.run(run_dir=run, resume=True)
        else:
            result = gmhf.run("examples/specs/duffing_vague.guide", experts=["counting:1.0"], run_dir=run,
                              **SETTINGS)
    print(json.dumps(result.document()))


if __name__ == "__main__":
    main(*sys.argv[1:4])
