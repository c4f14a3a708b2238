"""gmhf.testing.strategies: valid θ only, shrinking toward the source, valid and invalid specs."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import gmhf
import gmhf.testing
from gmhf.api import check_text
from gmhf.dsl import ast
from gmhf.dsl.errors import SpecError
from gmhf.dsl.format import format_spec
from gmhf.dsl.parse import parse
from gmhf.testing import strategies
from gmhf.testing._draws import sampler_for
from gmhf.testing._environments import RESOLUTION, spread
from gmhf.testing.strategies import INVALID_KINDS, from_guidance, invalid_spec_texts, spec_texts, specs

# Fixed and database-less; compiling a drawn spec takes ~0.1 s on a 2-core machine, so counts stay small.
FEW = settings(derandomize=True, database=None, deadline=None, max_examples=12,
               suppress_health_check=[HealthCheck.too_slow])

SINUSOID = """domain sinusoid
invariant phase
shift amplitude in 3 .. 8
prior amplitude ~ normal(5, 1.5)
shift frequency by *1.25
prior noise between 0.1 and 0.3 with 90%
require amplitude < 6 * frequency
prefer noise < 0.2 weight 1
"""
# Every factor kind, a level list, a prior over levels and a joint require that rejects about half.
TOY = """domain toy
shift speed in 2 .. 8
shift cars in [2, 4, 6, 8]
prior weather ~ choice(rain: 1, snow: 3)
require speed < cars or weather == snow
"""


@settings(FEW, max_examples=40)
@given(st.data())
def test_drawn_environments_are_accepted(data: st.DataObject) -> None:
    """Every drawn θ (one or a batch) passes `accepts`, has a finite density, and has plain typed values."""
    for text in (SINUSOID, TOY):
        guidance = gmhf.load(text)
        record = data.draw(from_guidance(text))
        assert bool(guidance.accepts(_values(guidance, record))[0])
        assert math.isfinite(float(guidance.log_prob(_values(guidance, record))[0]))
        for factor in guidance.space:
            expected = {"real": float, "integer": int, "categorical": str}[factor.kind]
            assert type(record[factor.name]) is expected
        batch = data.draw(from_guidance(guidance, batch=5))
        assert len(batch) == 5 and bool(guidance.accepts(batch).all())


def _values(guidance: gmhf.Guidance, record: dict[str, float | int | str]) -> torch.Tensor:
    row = [float(f.levels.index(record[f.name])) if f.kind == "categorical" else float(record[f.name])
           for f in guidance.space]
    return torch.tensor([row], dtype=torch.float64)


def test_failing_property_shrinks_to_the_source() -> None:
    """A property failing for amplitude > 4 shrinks to amplitude just above 4 and every other factor at its
    source median (phase: uniform(0, pi) -> pi/2; frequency: the source median 1.0 is the low end of the
    believed 1 .. 1.5; noise: the source median 0.05), not to the target's centre or an end."""
    found = find(from_guidance(SINUSOID), lambda theta: theta["amplitude"] > 4,
                 settings=settings(FEW, max_examples=200))
    assert 4 < found["amplitude"] <= 4.01  # 0.01: a millionth of the mass is ~1e-5; shrinking stops near it
    assert found["phase"] == pytest.approx(math.pi / 2, abs=1e-9)
    assert found["frequency"] == pytest.approx(1.0, abs=1e-9)
    assert found["noise"] == pytest.approx(0.05, abs=1e-9)


def test_discrete_factors_shrink_to_the_source() -> None:
    """Integer factors shrink to the allowed value nearest the source median (cars: uniform(0, 10) -> 5, of
    2, 4, 6, 8 -> 4), categorical ones to the allowed level the source favours most (rain over snow)."""
    found = find(from_guidance(TOY), lambda theta: theta["speed"] > 2.5, settings=settings(FEW, max_examples=200))
    assert found["cars"] == 4 and found["weather"] == "rain"
    assert 2.5 < found["speed"] <= 2.51
    assert found["mass"] == pytest.approx(50.0, abs=1e-9)  # the source normal(50, 10)'s median


def test_a_joint_require_moves_the_shrunk_example_only_as_far_as_needed() -> None:
    """With `require amplitude < 6 * frequency`, amplitude > 7 needs frequency > 7/6: the shrunk θ sits there."""
    found = find(from_guidance(SINUSOID), lambda theta: theta["amplitude"] > 7,
                 settings=settings(FEW, max_examples=300))
    assert 7 < found["amplitude"] <= 7.01
    assert 7 / 6 < found["frequency"] <= 7 / 6 + 0.01


def test_uniform_coordinates_draw_the_believed_marginals() -> None:
    """The coordinate map is exact: uniform |s| with a fair sign gives each factor's believed marginal
    (two-sample KS against `Guidance.sample`, 4,000 each, at the 0.1% critical value 1.95 * sqrt(2 / n))."""
    guidance = gmhf.load(SINUSOID + "require noise < 0.25\n")
    sampler = sampler_for(guidance)
    n = 4000
    generator = torch.Generator().manual_seed(0)
    s = 2 * torch.rand(n, len(sampler.axes), generator=generator, dtype=torch.float64) - 1
    mapped = torch.stack([axis.values(s[:, i]) for i, axis in enumerate(sampler.axes)], 1)
    reference = torch.stack([guidance.marginals[name].sample(n, generator) for name in guidance.space.names], 1)
    for i, name in enumerate(guidance.space.names):
        both = torch.cat([mapped[:, i], reference[:, i]]).sort().values
        ecdf = [torch.searchsorted(x.sort().values, both, right=True) / n for x in (mapped[:, i], reference[:, i])]
        assert float((ecdf[0] - ecdf[1]).abs().max()) < 1.95 * math.sqrt(2 / n), name


def test_coordinates_reach_the_anchor_and_both_ends() -> None:
    """Coordinate 0 is the anchor, ±RESOLUTION the ends of the support, and |s| grows with |i|."""
    i = torch.tensor([0, 1, 10, 1000, 10**5, RESOLUTION, -RESOLUTION])
    s = spread(i)
    assert s[0] == 0 and s[-2] == 1 and s[-1] == -1
    assert bool((s[:-1].diff() >= 0).all())
    sampler = sampler_for(gmhf.load("domain sinusoid\nshift amplitude in 3 .. 8"))
    ends = sampler.values(torch.tensor([[0, 0, 0, 0], [RESOLUTION, 0, 0, 0]]))
    assert ends[:, 0].tolist() == [3.0, 8.0]


def test_repr_shows_the_call() -> None:
    """The strategy prints like the call that built it."""
    guidance = gmhf.load("domain sinusoid")
    assert repr(from_guidance(guidance, batch=3)) == f"from_guidance({guidance!r}, batch=3)"
    assert repr(specs("sinusoid", max_requires=1)) == "specs('sinusoid', max_requires=1)"


@pytest.mark.parametrize("strategy", [
    from_guidance("domain sinusoid", batch=0), from_guidance("domain sinusoid", batch=True),
    from_guidance(42), specs("sinusoidd"), specs("sinusoid", max_prefers=-1),
    invalid_spec_texts("sinusoid", kinds=["nope"]), invalid_spec_texts("sinusoid", kinds=[]),
    invalid_spec_texts("sinusoid", kinds=["categorical_misuse"]),
], ids=repr)
def test_bad_arguments_raise_invalid_argument_when_drawn(strategy: st.SearchStrategy[object]) -> None:
    """Bad options fail at draw time with InvalidArgument (an impossible combination included), as in Hypothesis."""
    with pytest.raises(InvalidArgument):
        find(strategy, lambda _: True, settings=FEW)


def test_unknown_domain_gets_a_hint() -> None:
    """A misspelt domain names the registered one."""
    with pytest.raises(InvalidArgument, match="did you mean `sinusoid`"):
        find(specs("sinusoidd"), lambda _: True, settings=FEW)


def test_options_with_defaults_are_keyword_only() -> None:
    """Every defaulted parameter of a public strategy is keyword-only (Hypothesis' house rule)."""
    for name in strategies.__all__:
        value = getattr(strategies, name)
        if not callable(value):
            continue
        parameters = inspect.signature(value).parameters.values()
        positional = [p.name for p in parameters if p.default is not p.empty and p.kind != p.KEYWORD_ONLY]
        assert positional == [], name


def test_public_names_are_pinned_and_documented() -> None:
    """gmhf.testing and its strategies and contracts modules export fixed lists, each name documented."""
    from gmhf.testing import contracts

    assert gmhf.testing.__all__ == ["contracts", "strategies"]
    assert strategies.__all__ == ["INVALID_KINDS", "from_guidance", "invalid_spec_texts", "spec_texts", "specs"]
    assert contracts.__all__ == ["ContractError", "check_distribution", "check_domain", "check_statement"]
    for module in (strategies, contracts):
        for name in module.__all__:
            value = getattr(module, name)
            assert isinstance(value, tuple) or (value.__doc__ or "").strip(), name


@pytest.mark.parametrize("domain", ["sinusoid", "toy", "duffing"])
def test_drawn_specs_check_load_and_round_trip(domain: str) -> None:
    """`specs(domain)` trees pass `gmhf check`, compile (the require probe included) and survive fmt."""
    @settings(FEW, max_examples=8 if domain != "duffing" else 5)
    @given(specs(domain))
    def run(spec: ast.Spec) -> None:
        text = format_spec(spec)
        check_text(text)
        guidance = gmhf.load(text)
        assert ast.strip_spans(parse(text)).statements == ast.strip_spans(spec).statements  # type: ignore[attr-defined]
        assert len(guidance.sample(4, seed=0)) == 4

    run()


def test_spec_texts_are_formatted() -> None:
    """`spec_texts` are fixed points of `gmhf fmt`."""
    @settings(FEW, max_examples=6)
    @given(spec_texts("toy"))
    def run(text: str) -> None:
        assert format_spec(parse(text)) == text

    run()


@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_every_kind_of_invalid_text_is_rejected_with_located_errors(kind: str) -> None:
    """Each breakage makes `check_text` raise SpecError (only that), with every diagnostic inside the file."""
    @settings(FEW, max_examples=2)
    @given(invalid_spec_texts("toy", kinds=[kind]))
    def run(text: str) -> None:
        with pytest.raises(SpecError) as raised:
            check_text(text, path="fuzz.guide")
        lines = text.split("\n")
        for d in raised.value.diagnostics:
            assert d.path == "fuzz.guide" and 1 <= d.line <= len(lines), d
            assert 1 <= d.column <= len(lines[d.line - 1]) + 1, d

    run()
