"""The duffing domain: its spec, observables, benchmark truth, and `expect` on generated data."""

from __future__ import annotations

import json

import pytest
import torch

import gmhf
from gmhf.cli import main
from gmhf.core.environments import draw_from_spec
from gmhf.domains.duffing import Duffing


def test_example_spec_samples_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`gmhf sample examples/specs/duffing.guide -n 5 --json` gives 5 environments and expect counts."""
    with pytest.raises(SystemExit) as done:
        main(["sample", "examples/specs/duffing.guide", "-n", "5", "--seed", "0", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and document["domain"] == "duffing" and len(document["samples"]) == 5
    assert set(document["samples"][0]) == {"delta", "alpha", "beta", "gamma", "omega", "x0", "v0"}
    assert document["expect"]["rejected"][0]["where"].endswith("duffing.guide:10")


def test_expect_rejects_violating_environments_and_counts_them() -> None:
    """`expect amplitude < 1.2` drops environments whose trajectories swing further, and says how many."""
    guidance = gmhf.load("domain duffing\nshift gamma in 0.5 .. 1.5\nexpect amplitude < 1.2")
    environments = draw_from_spec(guidance, 20, seed=3)
    (rejected,) = environments.rejected.values()
    assert len(environments.theta) == 20 and rejected > 0
    assert environments.checked >= 20 + rejected
    again = Duffing().simulate(environments.theta.values)
    assert bool((again["x"].abs().amax(-1) < 1.2).all())
    assert torch.equal(environments.data["x"], again["x"])


def test_expect_that_nothing_meets_is_an_error() -> None:
    """An expectation no generated environment meets ends with a clear error, not a hang."""
    guidance = gmhf.load("domain duffing\nexpect amplitude < 0.001")
    with pytest.raises(gmhf.GmhfError, match="met the spec's `expect`s"):
        draw_from_spec(guidance, 5, seed=0)


def test_observables() -> None:
    """x, v, t are [n, t]; amplitude is max |x|; energy is v²/2 + αx²/2 + βx⁴/4."""
    theta = gmhf.load("domain duffing").sample(3, seed=0).values
    domain = Duffing()
    seen = domain.observe(theta, domain.simulate(theta, points=50))
    assert seen["x"].shape == seen["t"].shape == (3, 50)
    assert torch.equal(seen["amplitude"], seen["x"].abs().amax(-1))
    x, v, alpha, beta = seen["x"], seen["v"], theta[:, 1:2], theta[:, 2:3]
    assert torch.allclose(seen["energy"], v**2 / 2 + alpha * x**2 / 2 + beta * x**4 / 4)


def test_benchmark_truth_is_single_well_and_shifts_beta_and_gamma() -> None:
    """The shipped truth spec shifts β and γ, keeps the rest at the source, and stays out of chaos."""
    truth = gmhf.load(Duffing().truth_spec())
    assert set(truth.flagged) == {"beta", "gamma"}
    theta = truth.sample(1000, seed=0)
    assert bool((theta["alpha"] > 0).all()) and bool((theta["beta"] > 0).all())


def test_view_renders_png_and_svg() -> None:
    """A generated environment renders to a PNG (and an SVG) for an expert to look at."""
    theta = gmhf.load("domain duffing").sample(2, seed=0).values
    domain = Duffing()
    data = domain.simulate(theta, points=60)
    png = domain.view(theta, data, 1)
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    assert b"<svg" in domain.view(theta, data, 0, fmt="svg")[:400]


def test_simulate_with_adams_agrees_with_the_default_rk4() -> None:
    """`method="adams"` (fused Adams–Bashforth–Moulton at its default step) matches the default RK4 to 1e-8."""
    theta = gmhf.load(Duffing().truth_spec()).sample(16, seed=4).values
    domain = Duffing()
    rk4, adams = domain.simulate(theta), domain.simulate(theta, method="adams")
    assert bool(adams["ok"].all()) and torch.equal(adams["t"], rk4["t"])
    assert float((adams["x"] - rk4["x"]).abs().max()) < 1e-8 and float((adams["v"] - rk4["v"]).abs().max()) < 1e-8
