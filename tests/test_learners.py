"""Learners: batched meta-gradients against per-task loops written with plain autograd."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from gmhf.core.learners import ANIL, MAML, FirstOrderMAML, ProtoNet, Reptile, mlp
from gmhf.core.learners.maml import head_names
from gmhf.core.tasks import TaskBatch
from gmhf.errors import UsageError

INNER_LR, STEPS = 0.05, 3


def regression_tasks(b: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    amplitude, phase = 0.5 + 2 * torch.rand(b, 1, 1, generator=g), 3 * torch.rand(b, 1, 1, generator=g)
    sx, qx = 10 * torch.rand(b, 5, 1, generator=g) - 5, 10 * torch.rand(b, 7, 1, generator=g) - 5
    return TaskBatch(sx.to(dtype), (amplitude * torch.sin(sx + phase)).to(dtype), qx.to(dtype),
                     (amplitude * torch.sin(qx + phase)).to(dtype), torch.cat([amplitude, phase], -1)[:, 0],
                     torch.ones(b, dtype=torch.bool))


def model(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    return mlp(1, 1, (16, 16), generator=torch.Generator().manual_seed(seed)).to(dtype)


def grads(net: nn.Module) -> list[Tensor]:
    return [p.grad.clone() for p in net.parameters()]  # type: ignore[union-attr]


def looped_maml(net: nn.Module, batch: TaskBatch, *, first_order: bool, adapt: list[str] | None = None
                ) -> list[Tensor]:
    """The textbook loop: one task at a time, torch.autograd.grad with create_graph."""
    params = dict(net.named_parameters())
    names = list(params) if adapt is None else adapt
    total = torch.zeros((), dtype=torch.float64)
    for i in range(len(batch)):
        fast = dict(params)
        for _ in range(STEPS):
            loss = ((torch.func.functional_call(net, fast, (batch.support_x[i],)) - batch.support_y[i]) ** 2).mean()
            g = torch.autograd.grad(loss, [fast[k] for k in names], create_graph=not first_order)
            fast.update({k: fast[k] - INNER_LR * gk for k, gk in zip(names, g, strict=True)})
        total = total + ((torch.func.functional_call(net, fast, (batch.query_x[i],)) - batch.query_y[i]) ** 2).mean()
    return list(torch.autograd.grad(total / len(batch), list(params.values())))


def assert_close(a: list[Tensor], b: list[Tensor], rtol: float = 1e-6) -> None:
    for x, y in zip(a, b, strict=True):
        assert (x - y).abs().max() <= rtol * y.abs().max().clamp(min=1e-12), (x, y)


@pytest.mark.parametrize("cls, first_order, head", [(MAML, False, False), (FirstOrderMAML, True, False),
                                                    (ANIL, False, True)])
def test_batched_meta_gradient_equals_the_per_task_loop(cls: type[MAML], first_order: bool, head: bool) -> None:
    net, batch = model(), regression_tasks()
    cls(net, inner_lr=INNER_LR, inner_steps=STEPS).backward(batch)
    reference = looped_maml(model(), batch, first_order=first_order, adapt=head_names(net) if head else None)
    assert_close(grads(net), reference)


def test_second_order_differs_from_first_order() -> None:
    first, second = model(), model()
    FirstOrderMAML(first, inner_lr=INNER_LR, inner_steps=STEPS).backward(regression_tasks())
    MAML(second, inner_lr=INNER_LR, inner_steps=STEPS).backward(regression_tasks())
    difference = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(grads(first), grads(second), strict=True))
    assert difference > 1e-3


def test_maml_meta_gradient_matches_finite_differences() -> None:
    """Central differences of the meta-loss, one coordinate per parameter tensor, on a tiny model."""
    net, batch = mlp(1, 1, (4,), generator=torch.Generator().manual_seed(1)).double(), regression_tasks(3)
    learner = MAML(net, inner_lr=INNER_LR, inner_steps=2)
    learner.backward(batch)
    eps = 1e-6
    for p in net.parameters():
        for index in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
            with torch.no_grad():
                p[index] += eps
                up = float(learner.evaluate(batch, steps=2).mean())
                p[index] -= 2 * eps
                down = float(learner.evaluate(batch, steps=2).mean())
                p[index] += eps
            numeric = (up - down) / (2 * eps)
            assert p.grad is not None
            assert abs(float(p.grad[index]) - numeric) <= 1e-6 + 1e-5 * abs(numeric)


def test_reptile_batched_equals_reptile_looped() -> None:
    net, batch = model(), regression_tasks()
    Reptile(net, inner_lr=INNER_LR, inner_steps=STEPS).backward(batch)
    reference = model()
    moved = [torch.zeros_like(p) for p in reference.parameters()]
    for i in range(len(batch)):
        task = model()
        optimiser = torch.optim.SGD(task.parameters(), lr=INNER_LR)
        for _ in range(STEPS):
            optimiser.zero_grad()
            ((task(batch.support_x[i]) - batch.support_y[i]) ** 2).mean().backward()
            optimiser.step()
        for m, p0, p in zip(moved, reference.parameters(), task.parameters(), strict=True):
            m += (p0 - p).detach() / len(batch)
    assert_close(grads(net), moved)


@pytest.mark.parametrize("make", [lambda n: MAML(n, inner_lr=INNER_LR, inner_steps=STEPS, tasks_per_chunk=4),
                                  lambda n: ANIL(n, inner_lr=INNER_LR, inner_steps=STEPS, tasks_per_chunk=4),
                                  lambda n: Reptile(n, inner_lr=INNER_LR, inner_steps=STEPS, tasks_per_chunk=4)])
def test_tasks_per_chunk_does_not_change_the_result(make) -> None:  # type: ignore[no-untyped-def]
    whole, chunked = model(), model()
    batch = regression_tasks(10)
    loss_whole = make(whole)
    loss_whole.tasks_per_chunk = None
    a = loss_whole.backward(batch)
    b = make(chunked).backward(batch)
    assert torch.allclose(a, b, rtol=1e-12)
    assert_close(grads(chunked), grads(whole), rtol=1e-12)


def test_invalid_tasks_do_not_count() -> None:
    batch = regression_tasks(6)
    poisoned = TaskBatch(batch.support_x, batch.support_y.clone(), batch.query_x, batch.query_y.clone(),
                         batch.theta, torch.tensor([True, True, True, True, False, False]))
    poisoned.query_y[4:] = 1e6
    full, masked = model(), model()
    MAML(full, inner_lr=INNER_LR, inner_steps=STEPS).backward(batch.select(slice(0, 4)))
    MAML(masked, inner_lr=INNER_LR, inner_steps=STEPS).backward(poisoned)
    assert_close(grads(masked), grads(full), rtol=1e-10)


class Residual(nn.Module):
    """Not an nn.Sequential: runs through the generic vmap(functional_call) path."""

    def __init__(self, inner: nn.Sequential) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x)


def test_generic_path_equals_the_sequential_fast_path() -> None:
    fast, generic = model(), Residual(model())
    batch = regression_tasks()
    MAML(fast, inner_lr=INNER_LR, inner_steps=STEPS).backward(batch)
    MAML(generic, inner_lr=INNER_LR, inner_steps=STEPS).backward(batch)
    assert_close(grads(generic), grads(fast), rtol=1e-10)


def test_adapt_and_evaluate_agree() -> None:
    net, batch = model(), regression_tasks(4)
    learner = MAML(net, inner_lr=INNER_LR, inner_steps=STEPS)
    losses = learner.evaluate(batch)
    for i in range(len(batch)):
        adapted = learner.adapt(batch.support_x[i], batch.support_y[i])
        with torch.no_grad():
            direct = ((adapted(batch.query_x[i]) - batch.query_y[i]) ** 2).mean()
        assert torch.allclose(direct, losses[i], rtol=1e-10)
    with torch.no_grad():
        unadapted = ((net(batch.query_x) - batch.query_y) ** 2).mean((1, 2))
    assert torch.allclose(learner.evaluate(batch, steps=0), unadapted)
    assert all(p.grad is None for p in net.parameters())  # evaluation leaves no gradients behind


def blob_tasks(b: int, ways: int = 3, shots: int = 4, seed: int = 0) -> TaskBatch:
    """Each task: `ways` Gaussian blobs at random centres in 2-D, labels shuffled per task."""
    g = torch.Generator().manual_seed(seed)
    centres = 4 * torch.randn(b, ways, 2, generator=g)
    def draw(n: int) -> tuple[Tensor, Tensor]:
        labels = torch.arange(ways).repeat(n)[None].expand(b, -1)
        points = centres.gather(1, labels[..., None].expand(-1, -1, 2)) + torch.randn(b, ways * n, 2, generator=g)
        return points, labels
    (sx, sy), (qx, qy) = draw(shots), draw(5)
    return TaskBatch(sx, sy, qx, qy, centres.flatten(1), torch.ones(b, dtype=torch.bool))


def test_protonet_batched_equals_per_task_and_learns() -> None:
    torch.manual_seed(0)
    net = mlp(2, 8, (32,), generator=torch.Generator().manual_seed(0))
    learner = ProtoNet(net)
    batch = blob_tasks(5)
    per_task = torch.stack([learner.task_losses(batch.select(slice(i, i + 1)))[0] for i in range(5)])
    assert torch.allclose(learner.task_losses(batch), per_task, atol=1e-6)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    held_out = blob_tasks(64, seed=99)
    before = float(learner.evaluate(held_out).mean())
    for step in range(60):
        optimiser.zero_grad()
        learner.backward(blob_tasks(16, seed=step + 1))
        optimiser.step()
    after = float(learner.evaluate(held_out).mean())
    assert after < 0.7 * before, (before, after)
    classifier = learner.adapt(held_out.support_x[0], held_out.support_y[0])
    accuracy = (classifier(held_out.query_x[0]).argmax(-1) == held_out.query_y[0]).float().mean()
    assert accuracy >= 0.6


def test_learners_refuse_the_wrong_kind_of_task() -> None:
    with pytest.raises(UsageError, match="integer class labels"):
        ProtoNet(mlp(1, 4)).backward(regression_tasks().to(torch.float32))
    with pytest.raises(UsageError, match="class labels"):
        MAML(mlp(2, 3)).backward(blob_tasks(2))
    with pytest.raises(UsageError, match="matches no parameter"):
        MAML(mlp(1, 1), adapt=["head"])


def test_nan_in_an_invalid_task_does_not_reach_the_gradient() -> None:
    batch = regression_tasks(3)
    poisoned = TaskBatch(batch.support_x, batch.support_y.clone(), batch.query_x, batch.query_y.clone(),
                         batch.theta, torch.tensor([True, False, True]))
    poisoned.support_y[1] = float("nan")
    poisoned.query_y[1] = float("nan")
    for make in (lambda n: MAML(n, inner_lr=INNER_LR, inner_steps=STEPS),
                 lambda n: Reptile(n, inner_lr=INNER_LR, inner_steps=STEPS)):
        clean, dirty = model(), model()
        make(clean).backward(batch.select(torch.tensor([0, 2])))
        assert torch.isfinite(make(dirty).backward(poisoned))
        assert_close(grads(dirty), grads(clean), rtol=1e-12)
    nothing = TaskBatch(*(getattr(batch, k) for k in ("support_x", "support_y", "query_x", "query_y", "theta")),
                        torch.zeros(3, dtype=torch.bool))
    assert torch.isnan(MAML(model()).backward(nothing))  # no valid task: a loop skips the step


def test_frozen_parameters_stay_fixed_on_the_fast_path() -> None:
    fast, generic = model(), Residual(model())
    fast[0].weight.requires_grad_(False)
    generic.inner[0].weight.requires_grad_(False)
    batch = regression_tasks()
    MAML(fast, inner_lr=INNER_LR, inner_steps=STEPS).backward(batch)
    MAML(generic, inner_lr=INNER_LR, inner_steps=STEPS).backward(batch)
    assert fast[0].weight.grad is None
    assert_close([p.grad for p in fast.parameters() if p.requires_grad],  # type: ignore[misc]
                 [p.grad for p in generic.parameters() if p.requires_grad], rtol=1e-10)  # type: ignore[misc]


def test_modules_that_cannot_run_per_task_are_refused() -> None:
    with pytest.raises(UsageError, match="BatchNorm1d in training mode"):
        MAML(nn.Sequential(nn.Linear(1, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)))
    with pytest.raises(UsageError, match="Dropout in training mode"):
        Reptile(nn.Sequential(nn.Linear(1, 4), nn.Dropout(0.1), nn.Linear(4, 1)))
    with pytest.raises(UsageError, match="the model's parameters are torch.float32"):
        MAML(mlp(1, 1)).backward(regression_tasks())  # float64 tasks


def test_protonet_counts_classes_of_the_query_too() -> None:
    batch = blob_tasks(2, ways=3)
    keep = batch.support_y < 2  # the support lacks class 2, the query has it
    support_x = batch.support_x[keep].reshape(2, -1, 2)
    support_y = batch.support_y[keep].reshape(2, -1)
    losses = ProtoNet(mlp(2, 4)).task_losses(TaskBatch(support_x, support_y, batch.query_x, batch.query_y,
                                                      batch.theta, batch.valid))
    assert torch.isinf(losses).all()  # class 2 can never win: an infinite loss, which a training loop skips
