"""Built-in domains live in gmhf/domains, draw one environment (`view`) and ship a benchmark truth (`truth_spec`)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import gmhf
from gmhf.core.domain import Domain
from gmhf.domains.duffing import Duffing
from gmhf.domains.sinusoid import Sinusoid
from gmhf.plugins.manager import BUILTIN_PLUGINS, using_plugins
from gmhf.testing.contracts import ContractError, check_domain
from tests.plugins import toy

PNG = b"\x89PNG\r\n\x1a\n"
CORE = Path(gmhf.__file__).parent / "core"


def _batch(domain: Domain, n: int = 3) -> tuple[torch.Tensor, Any]:
    theta = gmhf.load(f"domain {domain.name}").sample(n, seed=0).values
    return theta, domain.simulate(theta, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("domain", [Sinusoid(), Duffing(), toy.Toy()], ids=lambda d: d.name)
def test_view_renders_png_and_svg(domain: Domain) -> None:
    """Each domain's view (toy: the base class's default) gives PNG bytes, and SVG with `fmt="svg"`."""
    theta, data = _batch(domain)
    png = domain.view(theta, data, 2)
    assert png.startswith(PNG) and len(png) > 2_000
    assert b"<svg" in domain.view(theta, data, 0, fmt="svg")[:400]


def test_default_view_draws_theta_when_nothing_is_an_array() -> None:
    """A domain with only scalar observables still gets a picture: θ as bars."""

    class Scalars(toy.Toy):
        space = toy.Toy.space.model_copy(update={"observables": toy.Toy.space.observables[1:]})

        def observe(self, theta: Any, data: Any) -> dict[str, Any]:
            return {"peak": data["trace"].amax(-1)}

    theta, data = _batch(toy.Toy())
    assert Scalars().view(theta, data, 1).startswith(PNG)


@pytest.mark.parametrize("call, match", [
    (lambda d, t, x: d.view(t, x, 0, fmt="jpeg"), "`fmt` must be one of 'png', 'svg', got 'jpeg'."),
    (lambda d, t, x: d.view(t, x, 3), r"`index` must be in \[0, 3\), got 3."),
])
def test_default_view_rejects_bad_arguments(call: Callable[..., bytes], match: str) -> None:
    """An unknown format or an index outside the batch is a `UsageError` naming the argument."""
    domain = toy.Toy()
    theta, data = _batch(domain)
    with pytest.raises(gmhf.UsageError, match=match):
        call(domain, theta, data)


def test_sinusoid_view_rejects_an_unknown_format() -> None:
    """Domain views render through the same helper, so they check `fmt` alike."""
    domain = Sinusoid()
    theta, data = _batch(domain)
    with pytest.raises(gmhf.UsageError, match="`fmt` must be one of"):
        domain.view(theta, data, 0, fmt="gif")


@pytest.mark.parametrize("domain", [Sinusoid(), Duffing()], ids=lambda d: d.name)
def test_truth_spec_loads_as_a_spec_of_its_domain(domain: Domain) -> None:
    """The shipped truth spec is package data that loads, for the same domain."""
    text = domain.truth_spec()
    assert text is not None
    assert gmhf.load(text).domain.name == domain.name


def test_sinusoid_truth_is_taller_than_the_source() -> None:
    """The sinusoid truth moves amplitude outside the source's 0.1 .. 5 and leaves the rest alone."""
    truth = gmhf.load(Sinusoid().truth_spec() or "")
    assert set(truth.flagged) == {"amplitude"}
    amplitude = truth.sample(500, seed=0)["amplitude"]
    assert bool((amplitude >= 5.5).all()) and bool((amplitude <= 8).all())


def test_truth_spec_defaults_to_none() -> None:
    """A domain that ships no benchmark truth says so with None."""
    assert toy.Toy().truth_spec() is None


def test_builtin_domains_register_from_gmhf_domains() -> None:
    """The plugin host loads the built-in domains from gmhf.domains, under their old plugin names."""
    assert dict(BUILTIN_PLUGINS)["sinusoid"] == "gmhf.domains.sinusoid"
    assert dict(BUILTIN_PLUGINS)["duffing"] == "gmhf.domains.duffing"


def test_core_imports_no_domain() -> None:
    """No module of gmhf.core imports gmhf.domains: domains plug into the core, not the reverse."""
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names if n.startswith("gmhf.domains")]
    assert found == []


# ------------------------------------------------------------------ the contract's view and truth rules


class _Flawed(toy.Toy):
    """The toy domain whose `view` or `truth_spec` is broken as `flaw` says."""

    def __init__(self, name: str, flaw: str) -> None:
        self.name, self.flaw = name, flaw  # type: ignore[misc]

    def view(self, theta: Any, data: Any, index: int = 0, *, fmt: str = "png") -> bytes:
        if self.flaw == "garbage_view":
            return b"not a picture"
        if self.flaw == "no_view":
            raise gmhf.UsageError(f"domain {self.name!r} has no view.")
        if self.flaw == "crashing_view":
            raise KeyError("x")
        return super().view(theta, data, index, fmt=fmt)

    def truth_spec(self) -> str | None:
        if self.flaw == "other_truth":
            return "domain sinusoid\nshift amplitude in 6 .. 8\n"
        if self.flaw == "bad_truth":
            return f"domain {self.name}\nshift speeed in 6 .. 8\n"
        return f"domain {self.name}\nshift speed in 4 .. 6\n"


class _Domains:
    def __init__(self, domain: Domain) -> None:
        self.domain = domain

    @gmhf.hookimpl
    def gmhf_domains(self, register: Callable[..., None]) -> None:
        register(self.domain)


@pytest.mark.parametrize("flaw, rule", [
    ("garbage_view", r"must return PNG bytes .* got b'not a picture'"),
    ("crashing_view", "raised KeyError"),
    ("other_truth", "`truth_spec\\(\\)` is a spec of domain 'sinusoid'; it must start `domain flawed_other_truth`"),
    ("bad_truth", "`truth_spec\\(\\)` does not load as a spec"),
])
def test_contract_catches_a_broken_view_or_truth(flaw: str, rule: str) -> None:
    """A view that returns no PNG or crashes, or a truth spec of another domain or with errors, fails `check_domain`."""
    domain = _Flawed(f"flawed_{flaw}", flaw)
    with using_plugins(_Domains(domain)), pytest.raises(ContractError, match=rule):
        check_domain(domain)


@pytest.mark.parametrize("flaw", ["no_view", "fine"])
def test_contract_accepts_a_declared_missing_view_and_a_good_truth(flaw: str) -> None:
    """A view that raises `UsageError` (the domain cannot be drawn) and a truth of the same domain pass."""
    domain = _Flawed(f"flawed_{flaw}", flaw)
    with using_plugins(_Domains(domain)):
        check_domain(domain)
