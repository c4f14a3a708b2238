"""What `pytest --gmhf-specs` checks in one `.guide` file; torch and Hypothesis load here, not before.

1. It checks and loads (`gmhf check`, then compiling with its probe of the `require`s).
2. Every statement's support is non-empty: a hard statement accepts some of 10,000 draws from the
   believed marginals; a soft one (`prefer`) changes some weight, not the same weight everywhere.
3. Environments sampled from the spec satisfy every hard statement (`require`s and supports).
4. Every `expect` holds on generated data: Hypothesis draws batches of environments through
   `from_guidance`'s coordinates; a failing environment is then shrunk toward the source in batched
   rounds (simulators such as Duffing cost ~0.1 s a call whatever the batch, so Hypothesis' one
   example at a time shrinker would take minutes) and reported with the statement's line.
5. Optionally, `gmhf fmt` would leave the file as it is.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core.distributions import DTYPE

if TYPE_CHECKING:
    from gmhf.core.guidance import Guidance
    from gmhf.testing._environments import Sampler

__all__ = ["Finding", "Options", "check_spec_file"]

#: Draws from the believed marginals that the support check uses.
PROBE = 10_000
#: Environments sampled from the spec that the `require` check uses.
SAMPLES = 2_000


@dataclass(frozen=True)
class Options:
    """How hard to look: Hypothesis examples of `batch` environments each, and the optional fmt check."""

    examples: int = 8
    batch: int = 32
    fmt: bool = False
    seed: int = 0


@dataclass(frozen=True)
class Finding:
    """One failed check, at a file or a statement, with the counterexample when there is one."""

    where: str
    message: str
    statement: str = ""
    counterexample: str | None = None

    def render(self) -> str:
        """`path:line: `statement` message`, then the counterexample indented."""
        head = f"{self.where}: " + (f"`{self.statement}` " if self.statement else "") + self.message
        if self.counterexample is None:
            return head
        return f"{head}\n    counterexample (shrunk toward the source): {self.counterexample}"


def _statements(guidance: Guidance) -> dict[str, str]:
    from gmhf.dsl.format import format_statement

    return {loc.where: format_statement(loc.statement) for loc in guidance.checked.statements}


def _supports(guidance: Guidance, text: dict[str, str]) -> list[Finding]:
    from gmhf.core.constraints import Expect

    generator = torch.Generator().manual_seed(0)
    probe = torch.stack([guidance.marginals[n].sample(PROBE, generator).to(DTYPE) for n in guidance.space.names], 1)
    found = []
    for module in guidance.constraints:
        where = getattr(module, "where", "")
        if isinstance(module, Expect):
            continue
        if module.hard and not bool(module.accepts(probe).any()):  # type: ignore[operator]
            found.append(Finding(where, f"has an empty support: none of {PROBE:,} draws from the believed "
                                 "marginals satisfies it", text.get(where, "")))
        elif not module.hard:
            weight = module.log_weight(probe)  # type: ignore[operator]
            if float(weight.max()) == float(weight.min()):
                found.append(Finding(where, f"has no effect: it gives every one of {PROBE:,} draws from the "
                                     f"believed marginals the same weight ({float(weight[0]):g})", text.get(where, "")))
    return found


def _requires(guidance: Guidance, sampler: Sampler, text: dict[str, str]) -> list[Finding]:
    from gmhf.core.constraints import Expect

    theta = guidance.sample(SAMPLES, seed=0).values
    found = []
    for module in guidance.constraints:
        if isinstance(module, Expect) or not module.hard:
            continue
        rejected = ~module.accepts(theta)  # type: ignore[operator]
        if bool(rejected.any()):
            where = getattr(module, "where", "")
            found.append(Finding(where, f"rejects {int(rejected.sum())} of {SAMPLES:,} environments sampled from "
                                 "the spec", text.get(where, ""), sampler.describe(theta[rejected][0])))
    return found


class _Generated:
    """Which `expect`s fail on the data generated for a batch θ, one column per `expect`."""

    def __init__(self, guidance: Guidance, seed: int) -> None:
        self.guidance, self.seed = guidance, seed
        self.expects = guidance.expects
        sample = guidance.sample(2, seed=seed).values
        # A simulator that ignores the seed treats rows alone: simulate whole batches. Else one row at
        # a time, each with the same seed, so that a θ's data does not depend on its batch.
        first, second = (self._data(sample, s) for s in (1, 2))
        self.deterministic = all(not isinstance(t, Tensor) or torch.equal(t.nan_to_num(), second[k].nan_to_num())
                                 for k, t in first.items())

    def _data(self, theta: Tensor, seed: int) -> dict[str, Any]:
        data = self.guidance.domain.simulate(theta, generator=torch.Generator().manual_seed(seed))
        return dict(data)

    def _batch(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        data = self._data(theta, self.seed)
        ok = data.get("ok", torch.ones(theta.shape[0], dtype=torch.bool))
        observed = self.guidance.domain.observe(theta, data)
        holds = torch.stack([e.holds(theta, observed) for e in self.expects], 1)
        return ~holds | ~ok[:, None], ~ok

    def __call__(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """(failing `[m, e]`, diverged `[m]`) for θ `[m, k]`."""
        if theta.shape[0] == 0:
            return torch.zeros(0, len(self.expects), dtype=torch.bool), torch.zeros(0, dtype=torch.bool)
        if self.deterministic:
            return self._batch(theta)
        rows = [self._batch(theta[i:i + 1]) for i in range(theta.shape[0])]
        return torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])


def _expects(guidance: Guidance, sampler: Sampler, text: dict[str, str], options: Options) -> list[Finding]:
    from hypothesis import HealthCheck, Phase, given, settings

    from gmhf.testing._draws import coordinates
    from gmhf.testing._environments import shrink

    generated = _Generated(guidance, options.seed)
    first: dict[int, Tensor] = {}  # expect -> coordinates of its failing row nearest the source
    seen = [0]

    @settings(max_examples=options.examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(coordinates(sampler, options.batch))
    def explore(drawn: tuple[Tensor, Tensor]) -> None:
        coords, values = drawn
        failing, _ = generated(values)
        seen[0] += len(values)
        for r, e in failing.nonzero().tolist():
            if e not in first or int(coords[r].abs().sum()) < int(first[e].abs().sum()):
                first[e] = coords[r]

    explore()
    found = []
    for e, start in sorted(first.items()):
        def fails(values: Tensor, e: int = e) -> Tensor:
            return generated(values)[0][:, e]

        best = shrink(sampler, start, fails)
        values = sampler.values(best.reshape(1, -1))
        _, diverged = generated(values)
        where = generated.expects[e].where
        note = " (its simulation diverged)" if bool(diverged[0]) else ""
        found.append(Finding(where, f"fails on generated data (found among {seen[0]:,} environments drawn by "
                             "Hypothesis)", text.get(where, ""), sampler.describe(values[0]) + note))
    return found


def _fmt(path: Path, display: str) -> list[Finding]:
    from gmhf.api import parse
    from gmhf.dsl.format import format_spec

    text = path.read_text(encoding="utf-8")
    formatted = format_spec(parse(path))
    if formatted == text:
        return []
    diff = "\n".join(difflib.unified_diff(text.splitlines(), formatted.splitlines(), display,
                                         f"{display} (formatted)", lineterm=""))
    return [Finding(display, f"is not formatted; `gmhf fmt {display}` would change it:\n"
                    + (diff or "(it would add the final line end)"))]


def check_spec_file(path: Path, display: str, options: Options) -> list[Finding]:
    """Every finding about the spec at `path` (shown as `display`, a path valid from the current folder)."""
    import gmhf
    from gmhf.dsl.errors import SpecError
    from gmhf.testing._draws import sampler_for

    try:
        guidance = gmhf.load(Path(display))
    except SpecError as error:
        return [Finding(display, f"does not check:\n{error}")]
    text = _statements(guidance)
    sampler = sampler_for(guidance)
    found = _supports(guidance, text) + _requires(guidance, sampler, text)
    if guidance.expects:
        found += _expects(guidance, sampler, text, options)
    if options.fmt:
        found += _fmt(path, display)
    return found
