"""bench/dsl.py's measure 6: Scenic side by side on the 5-factor scenario, where Scenic is installed."""

from __future__ import annotations

import importlib.util
import random

from dsl_measures import SEED, Measure, duration, rate, timings  # bench/dsl_measures.py (run as a script)

SCENIC_REFERENCE = "compiles a 5-factor scenario in ~30 ms and samples ~4k scenes/s by rejection"

#: The 5-factor spec in Scenic 3 syntax (`between 2 and 4 with 90%` is normal(3, 0.61)). Written from
#: Scenic's documentation and never run here: Scenic is not installed in the development venv.
SCENIC_PROGRAM = """\
param f0 = Range(2, 6)
param f1 = Normal(4, 1)
param f2 = Range(1.5, 5.5)
param f3 = Normal(3, 0.61)
param f4 = Range(1, 5)
require globalParameters.f0 < 2 * globalParameters.f1
require globalParameters.f2 + globalParameters.f3 < 8
ego = new Object
"""


def scenic_measures(scenes: int = 200) -> list[Measure]:
    """Scenic's compile time and scenes/s on the 5-factor scenario (only where scenic is installed)."""
    import scenic  # type: ignore[import-not-found]

    compiled = duration("Scenic compile, 5 factors/2 requires", "ms", None,
                        timings(lambda: scenic.scenarioFromString(SCENIC_PROGRAM), repeats=5))
    scenario = scenic.scenarioFromString(SCENIC_PROGRAM)
    random.seed(SEED)

    def generate() -> None:
        for _ in range(scenes):
            scenario.generate(maxIterations=100_000)

    sampled = rate("Scenic sample, 5 factors/2 requires", scenes, "scenes/s", None, timings(generate, repeats=5))
    return [compiled, sampled]


def scenic_comparison(ours: list[Measure]) -> tuple[list[Measure], list[str]]:
    """Scenic side by side with the ratio, or a line saying why it was skipped."""
    if importlib.util.find_spec("scenic") is None:
        return [], ["Scenic was not importable: the side-by-side comparison was skipped.",
                    f"Scenic, quoted reference, not measured here: {SCENIC_REFERENCE}."]
    try:
        theirs = scenic_measures()
    except Exception as error:  # an API change in Scenic must not lose the rest of the results
        return [], [f"Scenic comparison failed: {type(error).__name__}: {error}"]
    mine = {m.name: m for m in ours}
    compiled, sampled = mine["compile 5 factors/2 requires"], mine["sample 5 factors/2 requires, n=100,000"]
    lines = []
    if compiled.median and theirs[0].median:
        lines.append(f"compile: gmhf is {theirs[0].median / compiled.median:,.1f}x as fast as Scenic")
    if sampled.median and theirs[1].median:
        lines.append(f"sampling: gmhf draws {sampled.median / theirs[1].median:,.0f}x as many per second as Scenic")
    return theirs, lines

