"""The batched solvers against SciPy's DOP853, and divergence handling per trajectory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import gmhf
from gmhf.core.ode import adaptive, rk4, solve
from gmhf.domains.duffing import Duffing, vector_field

GRID = torch.linspace(0, 10, 100, dtype=torch.float64)  # the domain's default horizon
TOLERANCE = 1e-4  # the accuracy the acceptance asks of default settings


def _reference(theta: torch.Tensor, grid: torch.Tensor) -> np.ndarray:
    """SciPy DOP853 at rtol 1e-10, one trajectory at a time."""
    out = []
    for d, a, b, g, w, x0, v0 in theta.tolist():
        def rhs(t: float, y: np.ndarray, d=d, a=a, b=b, g=g, w=w) -> list[float]:
            return [y[1], g * np.cos(w * t) - d * y[1] - a * y[0] - b * y[0] ** 3]
        solution = solve_ivp(rhs, (float(grid[0]), float(grid[-1])), [x0, v0], method="DOP853", rtol=1e-10,
                             atol=1e-12, t_eval=grid.numpy())
        out.append(solution.y.T)
    return np.stack(out)


@pytest.fixture(scope="module", params=["source", "target"])
def theta(request: pytest.FixtureRequest) -> torch.Tensor:
    """24 environments from the source box, or from the shipped benchmark truth (the default target)."""
    text = "domain duffing" if request.param == "source" else Duffing().truth_spec()
    return gmhf.load(text).sample(24, seed=7).values


@pytest.mark.parametrize("method", ["rk4", "adaptive"])
def test_solvers_match_scipy_at_default_settings(theta: torch.Tensor, method: str) -> None:
    """Max abs error against DOP853 (rtol 1e-10) is at most 1e-4 at each solver's defaults."""
    solution = solve(vector_field(theta), theta[:, 5:7], GRID, method=method)
    error = np.abs(solution.y.numpy() - _reference(theta, GRID)).max()
    assert solution.failed == 0 and error <= TOLERANCE


def test_domain_simulate_matches_scipy(theta: torch.Tensor) -> None:
    """The duffing domain's simulator (RK4, float64, step 0.01) is ground-truth accurate."""
    data = Duffing().simulate(theta)
    error = np.abs(torch.stack([data["x"], data["v"]], -1).numpy() - _reference(theta, GRID)).max()
    assert bool(data["ok"].all()) and error <= 1e-6


@pytest.mark.parametrize("method", ["rk4", "adaptive"])
def test_a_blowup_is_flagged_without_touching_its_batch_mates(method: str) -> None:
    """β = −1 with strong forcing diverges: that row is flagged and NaN, the others are unchanged."""
    theta = gmhf.load("domain duffing").sample(4, seed=1).values
    wild = theta.clone()
    wild[2, 2], wild[2, 3], wild[2, 5] = -1.0, 2.0, 2.5  # double-well inverted: escapes to infinity
    alone = solve(vector_field(theta), theta[:, 5:7], GRID, method=method)
    mixed = solve(vector_field(wild), wild[:, 5:7], GRID, method=method)
    assert mixed.failed == 1 and mixed.ok.tolist() == [True, True, False, True]
    assert bool(torch.isnan(mixed.y[2, -1]).all())
    keep = [0, 1, 3]
    if method == "rk4":  # fixed steps: identical arithmetic for the others
        assert torch.equal(mixed.y[keep], alone.y[keep])
    else:  # per-trajectory step control: the others take the same steps
        assert torch.allclose(mixed.y[keep], alone.y[keep], atol=1e-12)


def test_rk4_lands_on_uneven_output_grids() -> None:
    """Outputs land exactly on the requested times, even when they do not divide by the step."""
    f = lambda t, y: -y  # noqa: E731
    grid = torch.tensor([0.0, 0.3, 1.0, 2.5], dtype=torch.float64)
    solution = rk4(f, torch.ones(1, 1, dtype=torch.float64), grid, step=0.07)
    assert torch.allclose(solution.y[0, :, 0], torch.exp(-grid), atol=1e-7)


def test_adaptive_respects_its_tolerance_per_trajectory() -> None:
    """Fast and slow decays in one batch both meet the tolerance (control is not batch-averaged)."""
    rates = torch.tensor([0.1, 30.0], dtype=torch.float64)
    f = lambda t, y: -rates[:, None] * y  # noqa: E731
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    solution = adaptive(f, torch.ones(2, 1, dtype=torch.float64), grid, rtol=1e-8, atol=1e-10)
    exact = torch.exp(-rates[:, None] * grid)
    assert torch.allclose(solution.y[..., 0], exact, atol=1e-7)


def test_bad_arguments_are_clear() -> None:
    """A wrong shape or a non-increasing grid is a ValueError naming the argument."""
    with pytest.raises(ValueError, match="`y0`"):
        rk4(lambda t, y: y, torch.ones(3), GRID)
    with pytest.raises(ValueError, match="`t`"):
        rk4(lambda t, y: y, torch.ones(1, 1), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="`method`"):
        solve(lambda t, y: y, torch.ones(1, 1), GRID, method="euler")


def test_fused_duffing_rk4_is_the_same_arithmetic_as_rk4(theta: torch.Tensor) -> None:
    """The Duffing domain's fused RK4 equals the generic RK4 to rounding, and flags the same blow-ups."""
    from gmhf.domains.duffing.rk4 import duffing_rk4

    wild = theta.clone()
    wild[2, 2], wild[2, 3], wild[2, 5] = -1.0, 2.0, 2.5
    fused = duffing_rk4(wild, GRID, step=0.05)
    generic = rk4(vector_field(wild), wild[:, 5:7], GRID, step=0.05)
    assert torch.equal(fused.ok, generic.ok) and fused.failed == 1
    assert torch.equal(torch.isnan(fused.y), torch.isnan(generic.y))
    healthy = fused.ok  # (the diverging row reaches 1e6, where rounding differences are larger)
    assert torch.allclose(fused.y[healthy], generic.y[healthy], rtol=0, atol=1e-12)


def test_a_float32_grid_takes_the_steps_asked_for() -> None:
    """0.1 stored in float32 (0.10000000149) is one step of 0.1, not two."""
    grid = torch.arange(20, dtype=torch.float32) * 0.1
    solution = rk4(lambda t, y: -y, torch.ones(1, 1, dtype=torch.float32), grid, step=0.1)
    assert solution.evaluations == 4 * 19


def test_fused_duffing_adams_matches_scipy(theta: torch.Tensor) -> None:
    """Adams–Bashforth–Moulton PECE (order 8) at one step per output interval is within 1e-6 of DOP853."""
    from gmhf.domains.duffing.adams import duffing_adams

    solution = duffing_adams(theta, GRID, step=0.1)
    assert solution.failed == 0 and solution.y.shape == (len(theta), len(GRID), 2)
    assert np.abs(solution.y.numpy() - _reference(theta, GRID)).max() <= 1e-6


def test_fused_duffing_adams_converges_at_high_order(theta: torch.Tensor) -> None:
    """Halving the step cuts the error against a tight RK4 by far more than RK4's 16x (order 8: up to 256x)."""
    from gmhf.domains.duffing.adams import duffing_adams
    from gmhf.domains.duffing.rk4 import duffing_rk4

    grid = torch.linspace(0, 20, 51, dtype=torch.float64)  # spacing 0.4: errors well above rounding
    reference = duffing_rk4(theta, grid, step=0.002).y
    coarse, fine = ((duffing_adams(theta, grid, step=step).y - reference).abs().max() for step in (0.2, 0.1))
    assert fine < coarse / 40, f"{coarse:.2e} -> {fine:.2e}"


def test_adams_weights_are_the_textbook_ones() -> None:
    """Order 4: Bashforth (−9, 37, −59, 55)/24 and Moulton (1, −5, 19, 9)/24, oldest first; every order sums to 1."""
    from gmhf.domains.duffing.adams import adams_weights

    bashforth, moulton = adams_weights(4)
    assert np.allclose(bashforth, np.array([-9, 37, -59, 55]) / 24, rtol=0, atol=1e-15)
    assert np.allclose(moulton, np.array([1, -5, 19, 9]) / 24, rtol=0, atol=1e-15)
    for order in range(2, 13):
        assert all(abs(sum(w) - 1) < 1e-12 for w in adams_weights(order))
    with pytest.raises(ValueError, match="`order`"):
        adams_weights(1)


def test_fused_duffing_adams_flags_a_blowup_alone() -> None:
    """A diverging row is flagged and NaN from its failure on; its batch mates get the values they get alone."""
    from gmhf.domains.duffing.adams import duffing_adams

    theta = gmhf.load("domain duffing").sample(4, seed=1).values
    wild = theta.clone()
    wild[2, 2], wild[2, 3], wild[2, 5] = -1.0, 2.0, 2.5
    alone, mixed = duffing_adams(theta, GRID), duffing_adams(wild, GRID)
    assert mixed.failed == 1 and mixed.ok.tolist() == [True, True, False, True]
    first_nan = int(torch.isnan(mixed.y[2, :, 0]).nonzero()[0])
    assert bool(torch.isnan(mixed.y[2, first_nan:]).all()) and bool(torch.isfinite(mixed.y[2, :first_nan]).all())
    assert torch.allclose(mixed.y[[0, 1, 3]], alone.y[[0, 1, 3]], rtol=0, atol=1e-12)


def test_fused_duffing_adams_on_short_grids() -> None:
    """Grids shorter than the method's start-up (order − 1 steps) are integrated by the RK4 start alone."""
    from gmhf.domains.duffing.adams import duffing_adams
    from gmhf.domains.duffing.rk4 import duffing_rk4

    theta = gmhf.load("domain duffing").sample(3, seed=2).values
    for points in (2, 5, 9):
        grid = torch.linspace(0, 0.1 * (points - 1), points, dtype=torch.float64)
        exact = duffing_rk4(theta, grid, step=0.001).y
        assert (duffing_adams(theta, grid, step=0.1).y - exact).abs().max() < 1e-6


def test_fused_duffing_adams_ring_equals_full_history() -> None:
    """Several steps per output (a ring of recent rows, outputs copied out) take the very steps of one step per
    output on the finer grid (every row kept): same values at the shared times, over many ring turns."""
    from gmhf.domains.duffing.adams import duffing_adams

    theta = gmhf.load("domain duffing").sample(16, seed=3).values
    theta[5, 2], theta[5, 3], theta[5, 5] = -1.0, 2.0, 2.5  # and a blow-up, found by both
    coarse, fine = (torch.linspace(0, 30, points, dtype=torch.float64) for points in (151, 301))
    ring, full = duffing_adams(theta, coarse, step=0.1), duffing_adams(theta, fine, step=0.1)
    assert ring.ok.tolist() == full.ok.tolist() and ring.failed == 1
    assert torch.allclose(ring.y, full.y[:, ::2], rtol=0, atol=1e-12, equal_nan=True)
