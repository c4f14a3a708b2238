"""The fused RK4-through-an-MLP rollout: its schedule, and its hand-written backward against numerical gradients."""

from __future__ import annotations

import math

import torch

from gmhf.core.mlp_rk4 import from_tanh, mlp_rk4, schedule
from gmhf.core.ode import rk4


def _problem(seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    plan = schedule([0.0, 0.3, 0.5, 0.9], 0.25)
    return plan, draw(3, 2), draw(len(plan.times), 3, 4), draw(2, 4), draw(4, 5), draw(5), draw(5, 2), draw(2)


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
    plan, y0, pre, w_state, w1, b1, w2, b2 = _problem()
    times = {time: j for j, time in enumerate(plan.times)}

    def field(s: float, y: torch.Tensor) -> torch.Tensor:
        hidden = torch.sigmoid(torch.sigmoid(y @ w_state + pre[times[s]]) @ w1 + b1)
        return hidden @ w2 + b2

    y, ok = mlp_rk4(y0, pre, w_state, [(w1, b1), (w2, b2)], plan)
    expected = rk4(field, y0, torch.tensor([0.0, 0.3, 0.5, 0.9], dtype=torch.float64), step=0.25)
    assert bool(ok.all()) and torch.allclose(y, expected.y, rtol=0, atol=1e-12)


def test_backward_matches_numerical_gradients() -> None:
    """torch.autograd.gradcheck: the reverse sweep is the exact gradient of the discrete map, for every input."""
    plan, *tensors = _problem(1)
    inputs = [x.requires_grad_() for x in tensors]

    def rollout(y0: torch.Tensor, pre: torch.Tensor, w_state: torch.Tensor, *flat: torch.Tensor) -> torch.Tensor:
        layers = [(flat[0], flat[1]), (flat[2], flat[3])]
        return mlp_rk4(y0, pre, w_state, layers, plan)[0]

    assert torch.autograd.gradcheck(rollout, inputs, eps=1e-6, atol=1e-7)


def test_from_tanh_is_the_same_network() -> None:
    """tanh(z) = 2σ(2z) − 1 with the factors folded into the weights gives the tanh network's values."""
    _, y0, pre, w_state, w1, b1, w2, b2 = _problem(2)
    tanh_out = torch.tanh(torch.tanh(y0 @ w_state + pre[0]) @ w1 + b1) @ w2 + b2
    pre_s, w_state_s, ((v1, c1), (v2, c2)) = from_tanh(pre, w_state, [(w1, b1), (w2, b2)])
    sigmoid_out = torch.sigmoid(torch.sigmoid(y0 @ w_state_s + pre_s[0]) @ v1 + c1) @ v2 + c2
    assert torch.allclose(tanh_out, sigmoid_out, rtol=0, atol=1e-13)


def test_a_failed_row_is_nan_and_the_others_keep_their_values() -> None:
    """A row beyond `blowup` is flagged and NaN; rows never mix, so the others are as without it."""
    plan, y0, pre, w_state, w1, b1, w2, b2 = _problem(3)
    layers = [(w1, b1), (w2, b2)]
    wild = y0.clone()
    wild[1] = 1e9
    y, ok = mlp_rk4(wild, pre, w_state, layers, plan, blowup=1e6)
    alone, _ = mlp_rk4(y0[[0, 2]], pre[:, [0, 2]], w_state, layers, plan, blowup=1e6)
    assert ok.tolist() == [True, False, True] and bool(y[1].isnan().all())
    assert torch.allclose(y[[0, 2]], alone, rtol=0, atol=1e-12) and not math.isnan(float(y[0].sum()))
