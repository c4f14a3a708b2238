"""The fused RK4-through-an-MLP rollout: its schedule, and its hand-written backward against numerical gradients."""

from __future__ import annotations

import math

import pytest
import torch

from gmhf.core.mlp_rk4 import Workspace, from_tanh, mlp_rk4, schedule
from gmhf.core.ode import rk4


def _problem(seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    plan = schedule([0.0, 0.3, 0.5, 0.9], 0.25)
    # y0, base, features (2 per stage time), w_in (on state then features), hidden layer, output layer
    return (plan, draw(3, 2), draw(3, 4), draw(len(plan.times), 3, 2), draw(4, 4), draw(4, 5), draw(5), draw(5, 2),
            draw(2))


def test_schedule_takes_rk4s_steps() -> None:
    """Each output interval is split as `rk4` splits it; stage times are shared where they coincide."""
    plan = schedule([0.0, 0.3, 0.5, 0.9], 0.25)
    assert [round(h, 12) for h, *_ in plan.steps] == [0.15, 0.15, 0.2, 0.2, 0.2]
    assert plan.outputs == (0, 2, 3, 5)
    assert plan.times[plan.steps[0][1]] == 0.0 and plan.times[plan.steps[0][2]] == 0.075
    assert plan.steps[0][3] == plan.steps[1][1]  # stage 4 of one step is stage 1 of the next
    assert len(set(plan.times)) == len(plan.times)


def test_values_are_rk4_through_the_same_field() -> None:
    """The rollout equals `rk4` applied to the MLP written out by hand, and no graph is kept without gradients."""
    plan, y0, base, features, w_in, w1, b1, w2, b2 = _problem()
    times = {time: j for j, time in enumerate(plan.times)}

    def field(s: float, y: torch.Tensor) -> torch.Tensor:
        hidden = torch.sigmoid(torch.sigmoid(torch.cat((y, features[times[s]]), -1) @ w_in + base) @ w1 + b1)
        return hidden @ w2 + b2

    y, ok = mlp_rk4(y0, base, features, w_in, [(w1, b1), (w2, b2)], plan)
    expected = rk4(field, y0, torch.tensor([0.0, 0.3, 0.5, 0.9], dtype=torch.float64), step=0.25)
    assert bool(ok.all()) and torch.allclose(y, expected.y, rtol=0, atol=1e-12)


def test_backward_matches_numerical_gradients() -> None:
    """torch.autograd.gradcheck: the reverse sweep is the exact gradient of the discrete map, for every input."""
    plan, *tensors = _problem(1)
    inputs = [x.requires_grad_() for x in tensors]

    def rollout(y0: torch.Tensor, base: torch.Tensor, features: torch.Tensor, w_in: torch.Tensor,
                *flat: torch.Tensor) -> torch.Tensor:
        layers = [(flat[0], flat[1]), (flat[2], flat[3])]
        return mlp_rk4(y0, base, features, w_in, layers, plan)[0]

    assert torch.autograd.gradcheck(rollout, inputs, eps=1e-6, atol=1e-7)


def test_backward_without_feature_gradients_and_without_features() -> None:
    """Features that need no gradient get none (the rest is unchanged); a network with no features works alike."""
    plan, y0, base, features, w_in, *flat = _problem(4)

    def gradients(features: torch.Tensor) -> list[torch.Tensor]:
        leaves = [x.detach().clone().requires_grad_() for x in (y0, base, w_in, *flat)]
        y0_, base_, w_in_, w1, b1, w2, b2 = leaves
        mlp_rk4(y0_, base_, features, w_in_, [(w1, b1), (w2, b2)], plan)[0].square().sum().backward()
        return [x.grad for x in leaves if x.grad is not None]

    asked = features.detach().clone().requires_grad_()
    with_features, without = gradients(asked), gradients(features.detach())
    assert asked.grad is not None and len(with_features) == len(without) == 7
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(with_features, without, strict=True))
    none = torch.empty(len(plan.times), 3, 0, dtype=torch.float64)

    def rollout(y0: torch.Tensor, base: torch.Tensor, w_in: torch.Tensor, *flat: torch.Tensor) -> torch.Tensor:
        return mlp_rk4(y0, base, none, w_in, [(flat[0], flat[1]), (flat[2], flat[3])], plan)[0]

    inputs = [x.detach().clone().requires_grad_() for x in (y0, base, w_in[:2], *flat)]
    assert torch.autograd.gradcheck(rollout, inputs, eps=1e-6, atol=1e-7)


def test_from_tanh_is_the_same_network() -> None:
    """tanh(z) = 2σ(2z) − 1 with the factors folded into the weights gives the tanh network's values."""
    _, y0, base, features, w_in, w1, b1, w2, b2 = _problem(2)
    first = torch.cat((y0, features[0]), -1)
    tanh_out = torch.tanh(torch.tanh(first @ w_in + base) @ w1 + b1) @ w2 + b2
    base_s, w_in_s, ((v1, c1), (v2, c2)) = from_tanh(base, w_in, [(w1, b1), (w2, b2)])
    sigmoid_out = torch.sigmoid(torch.sigmoid(first @ w_in_s + base_s) @ v1 + c1) @ v2 + c2
    assert torch.allclose(tanh_out, sigmoid_out, rtol=0, atol=1e-13)


def test_a_failed_row_is_nan_and_the_others_keep_their_values() -> None:
    """A row beyond `blowup` is flagged and NaN; rows never mix, so the others are as without it."""
    plan, y0, base, features, w_in, w1, b1, w2, b2 = _problem(3)
    layers = [(w1, b1), (w2, b2)]
    wild = y0.clone()
    wild[1] = 1e9
    y, ok = mlp_rk4(wild, base, features, w_in, layers, plan, blowup=1e6)
    alone, _ = mlp_rk4(y0[[0, 2]], base[[0, 2]], features[:, [0, 2]], w_in, layers, plan, blowup=1e6)
    assert ok.tolist() == [True, False, True] and bool(y[1].isnan().all())
    assert torch.allclose(y[[0, 2]], alone, rtol=0, atol=1e-12) and not math.isnan(float(y[0].sum()))


def test_a_workspace_gives_the_same_values_and_gradients_step_after_step() -> None:
    """Rollouts that reuse one workspace's buffers give what fresh buffers give, the second time too."""
    plan, y0, base, features, w_in, *flat = _problem(5)

    def step(workspace: Workspace | None, scale: float) -> list[torch.Tensor]:
        leaves = [x.detach().clone().requires_grad_() for x in (y0 * scale, base, w_in, *flat)]
        y0_, base_, w_in_, w1, b1, w2, b2 = leaves
        y, _ = mlp_rk4(y0_, base_, features, w_in_, [(w1, b1), (w2, b2)], plan, workspace=workspace)
        y.square().sum().backward()
        return [y.detach(), *(x.grad for x in leaves if x.grad is not None)]

    workspace = Workspace()
    for scale in (1.0, 0.5):
        fresh, reused = step(None, scale), step(workspace, scale)
        assert all(torch.equal(a, b) for a, b in zip(fresh, reused, strict=True))


def test_backward_through_a_rollout_whose_workspace_was_reused_raises() -> None:
    """The buffers a later rollout overwrote are caught by autograd's version check, not used silently."""
    plan, y0, base, features, w_in, w1, b1, w2, b2 = _problem(6)
    w1 = w1.clone().requires_grad_()
    workspace = Workspace()
    first, _ = mlp_rk4(y0, base, features, w_in, [(w1, b1), (w2, b2)], plan, workspace=workspace)
    mlp_rk4(y0 * 2, base, features, w_in, [(w1, b1), (w2, b2)], plan, workspace=workspace)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        first.sum().backward()
