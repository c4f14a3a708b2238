"""On a CUDA device, the solvers and the cNODE rollout give the CPU's values and gradients (skipped without one)."""

from __future__ import annotations

import pytest
import torch

import gmhf
from gmhf.core.generator import ConditionalNODE
from gmhf.core.mlp_rk4 import Workspace
from gmhf.core.ode import adaptive, rk4
from gmhf.domains.duffing import Duffing, vector_field
from gmhf.domains.duffing.adams import duffing_adams
from gmhf.domains.duffing.rk4 import duffing_rk4

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
GRID = torch.linspace(0, 20, 200, dtype=torch.float64)


@pytest.fixture(scope="module")
def theta() -> torch.Tensor:
    values = gmhf.load("domain duffing").sample(256, seed=0).values.double()
    values[3, 2], values[3, 3], values[3, 5] = -1.0, 2.0, 2.5  # one blow-up
    return values


@pytest.mark.parametrize("solve", [
    lambda th, t: duffing_adams(th, t, step=0.1),
    lambda th, t: duffing_adams(th, t, step=0.05),
    lambda th, t: duffing_rk4(th, t, step=0.05),
    lambda th, t: rk4(vector_field(th), th[:, 5:7], t, step=0.05),
    lambda th, t: adaptive(vector_field(th), th[:, 5:7], t),
], ids=["adams", "adams-substeps", "duffing-rk4", "rk4", "adaptive"])
def test_solvers_agree_with_the_cpu(theta: torch.Tensor, solve) -> None:  # type: ignore[no-untyped-def]
    cpu, gpu = solve(theta, GRID), solve(theta.cuda(), GRID.cuda())
    assert gpu.ok.cpu().tolist() == cpu.ok.tolist() and cpu.failed == 1
    assert torch.allclose(gpu.y.cpu(), cpu.y, rtol=0, atol=1e-9, equal_nan=True)  # cos/sin differ in the last bits


def test_cnode_rollout_and_its_gradients_agree_with_the_cpu(theta: torch.Tensor) -> None:
    data = Duffing().simulate(theta[:32], points=30, horizon=(0.0, 2.9))
    y0 = torch.stack((data["x"][:, 0], data["v"][:, 0]), -1)
    values, grads = {}, {}
    for device in ("cpu", "cuda"):
        model = ConditionalNODE(Duffing().space, Duffing.state_factors, t=data["t"], forcing_frequency="omega",
                                step=0.1, hidden=16, depth=2, seed=0).double().to(device)
        th = theta[:32].to(device)
        solution = model.rollout(th, y0.to(device), (data["t"][:20] - data["t"][0]).to(device), th.new_full((32,), 0.3),
                                 workspace=Workspace())
        solution.y.nan_to_num(0).square().mean().backward()
        values[device], grads[device] = solution.y.detach().cpu(), [p.grad.cpu() for p in model.parameters()]
    assert torch.allclose(values["cuda"], values["cpu"], rtol=0, atol=1e-12, equal_nan=True)
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(grads["cuda"], grads["cpu"], strict=True))
