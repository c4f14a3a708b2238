"""The `duffing` domain: the forced Duffing oscillator x'' + δx' + αx + βx³ = γ cos(ωt).

The paper's central case. An environment θ is one oscillator (damping, stiffnesses, forcing) with
its initial state; its data is the trajectory (x, v) on a time grid. The source and the shipped
benchmark truth keep α > 0 and β ≥ 0 (single-well), away from the chaotic double-well regime
(α < 0, β > 0); specs may go there, and the solvers then report diverging trajectories instead of
passing them on.

The package holds the domain (here), its fused solvers (`rk4`, `adams`), its picture (`view`) and
its benchmark truth (`truth.guide`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from gmhf.core.domain import Domain
from gmhf.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    import torch

    from gmhf.core.factors import FactorSpace

#: Default output grid: t in [0, 10], 100 points.
HORIZON = (0.0, 10.0)
POINTS = 100
#: The benchmark truth shipped with the domain (shifted β and γ), a file of this package.
TRUTH_SPEC = "truth.guide"


def vector_field(theta: torch.Tensor) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    """f(t, y) for a batch θ `[n, 7]` (δ, α, β, γ, ω, x0, v0); y = (x, v) `[n, 2]`, t a float or `[n]`."""
    import torch

    delta, alpha, beta, gamma, omega = (theta[:, i] for i in range(5))

    def f(t: Any, y: torch.Tensor) -> torch.Tensor:
        x, v = y[:, 0], y[:, 1]
        acceleration = gamma * torch.cos(omega * t) - delta * v - (alpha + beta * x * x) * x
        return torch.stack((v, acceleration), dim=1)

    f.theta = theta  # type: ignore[attr-defined]  # lets a Duffing-specific solver read the parameters
    return f


class Duffing(Domain):
    """Forced Duffing oscillators; factors delta, alpha, beta, gamma, omega, x0, v0."""

    name = "duffing"
    description = "x'' + delta x' + alpha x + beta x^3 = gamma cos(omega t), state (x, v), t in [0, 10]"
    #: The factors that are the initial state rather than parameters of the dynamics.
    state_factors = ("x0", "v0")
    forcing_frequency = "omega"
    shared = ("t",)

    @functools.cached_property
    def space(self) -> FactorSpace:  # type: ignore[override]
        """Built on first use, so loading the plugin stays light."""
        from gmhf.core.factors import Factor, FactorSpace, Observable

        return FactorSpace(
            factors=(
                Factor.real("delta", 0.0, 2.0, source=("uniform", 0.2, 0.4), description="damping"),
                Factor.real("alpha", -2.0, 3.0, source=("uniform", 0.8, 1.2), description="linear stiffness"),
                Factor.real("beta", -1.0, 3.0, source=("uniform", 0.0, 0.4), description="cubic stiffness"),
                Factor.real("gamma", 0.0, 2.0, source=("uniform", 0.2, 0.4), description="forcing amplitude"),
                Factor.real("omega", 0.0, 3.0, low_open=True, source=("uniform", 0.9, 1.1),
                            unit="rad per unit t", description="forcing frequency"),
                Factor.real("x0", -3.0, 3.0, source=("uniform", -1.0, 1.0), description="initial displacement"),
                Factor.real("v0", -3.0, 3.0, source=("uniform", -1.0, 1.0), description="initial velocity"),
            ),
            observables=(
                Observable(name="t", shape="array", description="the output times"),
                Observable(name="x", shape="array", description="displacement on the output grid"),
                Observable(name="v", shape="array", description="velocity on the output grid"),
                Observable(name="amplitude", shape="scalar", description="max |x| over the horizon"),
                Observable(name="energy", shape="array",
                           description="v²/2 + αx²/2 + βx⁴/4 on the output grid (unforced energy)"),
            ),
        )

    def simulate(self, theta: torch.Tensor, *, generator: torch.Generator | None = None,
                 horizon: tuple[float, float] = HORIZON, points: int = POINTS, method: str = "rk4",
                 **options: Any) -> dict[str, torch.Tensor]:
        """Trajectories for θ `[n, 7]`: `{"t": [t], "x": [n, t], "v": [n, t], "ok": [n]}`.

        `method="rk4"` (default, float64, `step` 0.01) uses the fused Duffing RK4; `method="adams"`
        (float64, `step` 0.025, `order` 8) the fused Adams–Bashforth–Moulton, several times faster at
        the same accuracy (docs/domains/duffing.md); other methods go to `gmhf.core.ode.solve` with
        `options`. Diverging trajectories come back with `ok` False and NaN values.
        """
        import torch

        from gmhf.core.ode import solve
        from gmhf.domains.duffing.adams import ORDER, duffing_adams
        from gmhf.domains.duffing.rk4 import duffing_rk4

        if theta.ndim != 2 or theta.shape[1] != 7:
            raise ValueError(f"`theta` must have shape [n, 7], got {list(theta.shape)}.")
        theta = theta.to(torch.float64)
        grid = torch.linspace(horizon[0], horizon[1], points, dtype=torch.float64)
        if method == "rk4":  # the fused Duffing RK4: `gmhf.core.ode.rk4`'s arithmetic, fewer ops
            solution = duffing_rk4(theta, grid, step=options.get("step", 0.01), blowup=options.get("blowup", 1e6))
        elif method == "adams":
            solution = duffing_adams(theta, grid, step=options.get("step", 0.025), order=options.get("order", ORDER),
                                     blowup=options.get("blowup", 1e6))
        else:
            solution = solve(vector_field(theta), theta[:, 5:7], grid, method=method, **options)
        return {"t": grid, "x": solution.y[:, :, 0], "v": solution.y[:, :, 1], "ok": solution.ok}

    def observe(self, theta: torch.Tensor, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """t, x, v, amplitude and energy, for `expect` statements."""
        x, v = data["x"], data["v"]
        alpha, beta = theta[:, 1:2], theta[:, 2:3]
        return {
            "t": data["t"].expand_as(x), "x": x, "v": v, "amplitude": x.abs().amax(-1),
            "energy": v * v / 2 + alpha * x * x / 2 + beta * x ** 4 / 4,
        }

    def examples(self, theta: torch.Tensor, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """One-step dynamics: from (elapsed fraction of the horizon, x, v) at a grid time, the slope to the next.

        Targets are ((x[i+1] − x[i]) / Δt, (v[i+1] − v[i]) / Δt): a few transitions of a new
        oscillator must reveal its damping, stiffness and forcing for the model to predict the rest.
        """
        import torch

        x, v = data["x"], data["v"]
        t = data["t"].to(x.dtype)
        dt = (t[1:] - t[:-1])[None]
        elapsed = (t[:-1] - t[0]) / (t[-1] - t[0])
        inputs = torch.stack([elapsed.expand_as(x[:, :-1]), x[:, :-1], v[:, :-1]], -1)
        targets = torch.stack([(x[:, 1:] - x[:, :-1]) / dt, (v[:, 1:] - v[:, :-1]) / dt], -1)
        return inputs, targets

    def view(self, theta: torch.Tensor, data: dict[str, torch.Tensor], index: int = 0, *,
             fmt: str = "png") -> bytes:
        """One environment of a generated batch as a picture: x(t) and the phase portrait."""
        from gmhf.core.figures import caption
        from gmhf.domains.duffing.view import trajectory_view

        return trajectory_view(data["t"], data["x"][index], data["v"][index],
                               title=caption(self.space, theta[index]), fmt=fmt)

    def truth_spec(self) -> str:
        """The text of the shipped benchmark truth spec (`truth.guide`)."""
        return resources.files(__name__).joinpath(TRUTH_SPEC).read_text(encoding="utf-8")


@hookimpl
def gmhf_domains(register: Callable[..., None]) -> None:
    """The duffing domain."""
    register(Duffing())
