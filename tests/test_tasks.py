"""Tasks and task pools: splits, schedules, and a stream that continues exactly after a reload."""

from __future__ import annotations

import pytest
import torch

import gmhf
from gmhf.core.tasks import TaskBatch, TaskPool, mean_over_valid, split_tasks
from gmhf.errors import UsageError


def test_split_gives_each_task_distinct_support_and_query_examples() -> None:
    inputs = torch.arange(2 * 12, dtype=torch.float32).reshape(2, 12, 1)
    batch = split_tasks(inputs, 2 * inputs, torch.zeros(2, 1), support=5, query=7,
                        generator=torch.Generator().manual_seed(0))
    for i in range(2):
        seen = torch.cat([batch.support_x[i, :, 0], batch.query_x[i, :, 0]])
        assert sorted(seen.tolist()) == inputs[i, :, 0].tolist()  # a permutation: nothing shared or repeated
    assert torch.equal(batch.support_y, 2 * batch.support_x) and torch.equal(batch.query_y, 2 * batch.query_x)
    with pytest.raises(UsageError, match="need 13 examples"):
        split_tasks(inputs, inputs, torch.zeros(2, 1), support=6, query=7, generator=torch.Generator())


def test_chunks_cover_the_batch_in_order() -> None:
    batch = TaskBatch(*(torch.arange(7.0)[:, None, None] for _ in range(4)), torch.arange(7.0)[:, None],
                      torch.ones(7, dtype=torch.bool))
    assert [len(c) for c in batch.chunks(3)] == [3, 3, 1]
    assert torch.equal(torch.cat([c.theta for c in batch.chunks(3)]), batch.theta)
    assert list(batch.chunks(None)) == [batch]


def test_mean_over_valid_ignores_invalid_tasks() -> None:
    losses = torch.tensor([1.0, 3.0, float("nan")])
    assert float(mean_over_valid(losses, torch.tensor([True, True, False]))) == 2.0


def test_pool_refreshes_on_schedule_and_continues_exactly_after_a_reload() -> None:
    guidance = gmhf.load("domain sinusoid")
    pool = TaskPool.from_spec(guidance, size=64, support=5, query=10, refresh_every=3, seed=0)
    first = pool.theta.clone()
    for _ in range(3):
        pool.sample(8)
    assert pool.refreshes == 1 and torch.equal(pool.theta, first)
    state = pool.state_dict()
    after = [pool.sample(8) for _ in range(3)]  # the pool's 4th draw regenerates it
    assert pool.refreshes == 2 and not torch.equal(pool.theta, first)
    again = TaskPool.from_spec(guidance, size=64, support=5, query=10, refresh_every=3, seed=123)
    again.load_state_dict(state)
    for a, b in zip(after, (again.sample(8) for _ in range(3)), strict=True):
        assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)
    assert pool.seconds_generating > 0


def test_pool_environments_follow_the_spec() -> None:
    pool = TaskPool.from_spec(gmhf.load("domain sinusoid\nshift amplitude in 3 .. 4"), size=128, support=5, query=5, seed=1)
    amplitude = pool.theta[:, 0]
    assert bool(((amplitude >= 3) & (amplitude <= 4)).all())
    assert pool.inputs.dtype == torch.float32 and pool.inputs.shape[1:] == (50, 1)


def test_duffing_tasks_are_one_step_dynamics() -> None:
    guidance = gmhf.load("domain duffing")
    pool = TaskPool.from_spec(guidance, size=8, support=5, query=10, seed=0, dtype=torch.float64)
    assert pool.inputs.shape == (8, 99, 3) and pool.targets.shape == (8, 99, 2)
    # the slope of x is the finite difference of x, and it is close to v at the grid's resolution
    x_next = pool.inputs[:, 1:, 1]
    dt = float(pool.inputs[0, 1, 0] - pool.inputs[0, 0, 0]) * 10.0
    assert torch.allclose(pool.inputs[:, :-1, 1] + dt * pool.targets[:, :-1, 0], x_next, atol=1e-9)
    assert float((pool.targets[..., 0] - pool.inputs[..., 2]).abs().mean()) < 0.1


def test_a_domain_without_examples_cannot_make_tasks() -> None:
    with pytest.raises(UsageError, match="does not turn its data into examples"):
        TaskPool.from_spec(gmhf.load("domain toy"), size=4)


def test_more_environments_than_one_draw_makes_is_a_usage_error_not_blamed_on_expect() -> None:
    """A pool larger than the generation cap says so, instead of blaming an `expect` that rejected nothing."""
    from gmhf.core.environments import MAX_ROUNDS, ROUND_LIMIT, draw_from_spec

    with pytest.raises(UsageError, match="more than one draw generates"):
        draw_from_spec(gmhf.load("domain sinusoid"), MAX_ROUNDS * ROUND_LIMIT + 1, seed=0, points=2)
