"""Few-shot tasks cut from generated environments, and the pool they are drawn from.

One environment θ gives one task: a domain turns its generated data into input/target pairs
(`Domain.examples`), and a task is a random split of those pairs into a support set (what the
learner adapts on) and a query set (what it is scored on). Generating environments is the
expensive part, so a `TaskPool` generates many at once and cuts fresh splits from them for every
meta-batch, regenerating the whole pool on a schedule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core.seeding import spawn_seed
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from gmhf.core.belief import Belief
    from gmhf.core.constraints import Expect
    from gmhf.core.domain import Domain
    from gmhf.core.generator import Generator
    from gmhf.core.sources import ThetaSource

__all__ = ["TaskBatch", "TaskPool", "mean_over_valid", "split_tasks"]


@dataclass(frozen=True)
class TaskBatch:
    """B tasks as tensors with the task first.

    Attributes:
        support_x, support_y: `[B, S, ·]` the examples a learner adapts on.
        query_x, query_y: `[B, Q, ·]` the examples it is scored on after adapting.
        theta: `[B, k]` each task's environment (columns in the domain's factor order).
        valid: `[B]` False for tasks that must not count (a diverged environment); losses average
            over valid tasks only.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    theta: Tensor
    valid: Tensor

    def __post_init__(self) -> None:
        b = self.theta.shape[0]
        for name in ("support_x", "support_y", "query_x", "query_y", "valid"):
            if getattr(self, name).shape[0] != b:
                raise ValueError(f"TaskBatch.{name} has {getattr(self, name).shape[0]} tasks, theta has {b}.")

    def __len__(self) -> int:
        return int(self.theta.shape[0])

    def select(self, index: Tensor | slice) -> TaskBatch:
        """The tasks at `index` (a slice or an index tensor)."""
        return TaskBatch(self.support_x[index], self.support_y[index], self.query_x[index],
                         self.query_y[index], self.theta[index], self.valid[index])

    def valid_only(self) -> TaskBatch:
        """The valid tasks alone: dropped, not masked, since 0 · NaN would still reach a gradient."""
        return self if bool(self.valid.all()) else self.select(self.valid)

    def chunks(self, size: int | None) -> Iterator[TaskBatch]:
        """Consecutive pieces of at most `size` tasks (all of them at once for None)."""
        if size is None or size >= len(self):
            yield self
            return
        if size < 1:
            raise UsageError(f"`tasks_per_chunk` must be at least 1, got {size}.")
        for start in range(0, len(self), size):
            yield self.select(slice(start, start + size))

    def to(self, dtype: torch.dtype) -> TaskBatch:
        """Inputs and real targets in `dtype` (integer class labels stay integers)."""
        def cast(t: Tensor) -> Tensor:
            return t.to(dtype) if t.is_floating_point() else t
        return replace(self, support_x=cast(self.support_x), support_y=cast(self.support_y),
                       query_x=cast(self.query_x), query_y=cast(self.query_y))


def split_tasks(inputs: Tensor, targets: Tensor, theta: Tensor, *, support: int, query: int,
                generator: torch.Generator, valid: Tensor | None = None) -> TaskBatch:
    """Cut one task per environment: `support` + `query` distinct examples drawn at random.

    `inputs` `[n, P, ·]` and `targets` `[n, P, dy]` (or `[n, P]` class labels) are all the examples
    of each environment; every task gets its own random split. With class labels the draw is
    stratified, as N-way K-shot tasks are: the classes take turns (in a random order), so the
    support holds ⌊support / N⌋ or one more example of each of the N classes, and the query too.
    """
    n, points = inputs.shape[0], inputs.shape[1]
    if support < 1 or query < 1:
        raise UsageError(f"a task needs at least one support and one query example, got {support} and {query}.")
    if support + query > points:
        raise UsageError(f"tasks of {support} support + {query} query examples need {support + query} examples "
                         f"per environment; the generated data has {points}.")
    order = torch.rand(n, points, generator=generator).argsort(dim=1)
    if targets.ndim == 2 and not targets.is_floating_point():
        order = _classes_take_turns(order, targets)
    order = order[:, :support + query]

    def take(values: Tensor, index: Tensor) -> Tensor:
        expanded = index.reshape(*index.shape, *([1] * (values.ndim - 2))).expand(*index.shape, *values.shape[2:])
        return values.gather(1, expanded)

    s, q = order[:, :support], order[:, support:]
    ok = torch.ones(n, dtype=torch.bool) if valid is None else valid
    return TaskBatch(take(inputs, s), take(targets, s), take(inputs, q), take(targets, q), theta, ok)


def _classes_take_turns(order: Tensor, labels: Tensor) -> Tensor:
    # reorder a random permutation so that the i-th example of every class comes before the (i+1)-th of any
    shuffled = labels.gather(1, order)
    shuffled = shuffled - shuffled.min()
    one_hot = torch.nn.functional.one_hot(shuffled, int(shuffled.max()) + 1)  # [n, P, C]
    turn = (one_hot.cumsum(1) * one_hot).sum(-1) - 1  # how many of its class came before it
    points = order.shape[1]
    return order.gather(1, (turn * points + torch.arange(points)).argsort(dim=1))


class TaskPool:
    """Environments from a θ source and a generator, cut into fresh tasks on every draw.

    Args:
        source: where θ comes from (`ThetaSource`: a Guidance, a steered π, …).
        generator: θ -> data (`Generator`: the domain's simulator through `SimulatorGenerator`, or
            the cNODE twin).
        domain: turns data into examples (`Domain.examples`) and observables for `expects`.
        expects: the spec's `expect`s, enforced on the generated data.
        size: environments generated at once.
        support, query: examples per task.
        refresh_every: draws after which the pool is regenerated (0: never).
        seed: the pool's random stream; every environment and split follows from it.
        dtype: the dtype of real inputs and targets handed to learners (class labels stay integers).

    `seconds_generating` accumulates the time spent generating, so a run can report it apart from
    time spent learning. `state_dict` holds everything needed to continue the same stream.
    """

    def __init__(self, source: ThetaSource, generator: Generator, domain: Domain, *,
                 expects: Sequence[Expect] = (), size: int = 1024, support: int = 5, query: int = 10,
                 refresh_every: int = 0, seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        if size < 1:
            raise UsageError(f"a task pool needs at least one environment, got size {size}.")
        self.source, self.generator, self.domain = source, generator, domain
        self.expects = tuple(expects)
        self.size, self.support, self.query = size, support, query
        self.refresh_every = refresh_every
        self.dtype = dtype
        self.rng = torch.Generator().manual_seed(seed)
        self.draws = 0  # since the last refresh
        self.refreshes = 0
        self.seconds_generating = 0.0
        self.inputs = self.targets = self.theta = torch.empty(0)
        self.refresh()

    @classmethod
    def from_spec(cls, guidance: Belief, **options: Any) -> TaskPool:
        """A pool of a spec's belief: θ from `guidance`, data from its domain's simulator, its `expect`s kept.

        `simulate_options` (a dict, e.g. `{"points": 50}`) go to the simulator; the rest to `TaskPool`.
        """
        from gmhf.core.generator import SimulatorGenerator

        simulator = SimulatorGenerator(guidance.domain, **options.pop("simulate_options", {}))
        return cls(guidance, simulator, guidance.domain, expects=guidance.expects, **options)

    def refresh(self) -> None:
        """Generate a new set of environments (drawn from the pool's own stream)."""
        from gmhf.core.environments import draw

        started = time.perf_counter()
        rng = torch.Generator().manual_seed(spawn_seed(self.rng))
        environments = draw(self.source, self.generator, self.domain, self.size, rng=rng, expects=self.expects)
        theta = environments.theta.values
        inputs, targets = self.domain.examples(theta, environments.data)
        # assigned together at the end: an interrupt mid-refresh leaves the previous pool whole
        self.theta, self.inputs = theta, inputs.to(self.dtype)
        self.targets = targets.to(self.dtype) if targets.is_floating_point() else targets.long()
        self.draws = 0
        self.refreshes += 1
        self.seconds_generating += time.perf_counter() - started

    @property
    def classes(self) -> int | None:
        """Number of classes of a classification domain's tasks (None for regression)."""
        return None if self.targets.is_floating_point() else int(self.targets.max()) + 1

    def sample(self, tasks: int) -> TaskBatch:
        """A meta-batch of `tasks` tasks: distinct environments while the pool has enough."""
        if self.refresh_every and self.draws >= self.refresh_every:
            self.refresh()
        self.draws += 1
        if tasks <= self.size:
            index = torch.randperm(self.size, generator=self.rng)[:tasks]
        else:
            index = torch.randint(0, self.size, (tasks,), generator=self.rng)
        return split_tasks(self.inputs[index], self.targets[index], self.theta[index],
                           support=self.support, query=self.query, generator=self.rng)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and numbers only, so a checkpoint loads with `weights_only=True`."""
        return {"rng": self.rng.get_state(), "draws": self.draws, "refreshes": self.refreshes,
                "inputs": self.inputs, "targets": self.targets, "theta": self.theta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where `state` was taken (the generation time is not restored)."""
        self.rng.set_state(state["rng"])
        self.draws, self.refreshes = int(state["draws"]), int(state["refreshes"])
        self.inputs, self.targets, self.theta = state["inputs"], state["targets"], state["theta"]

    def __repr__(self) -> str:
        every = f"every {self.refresh_every} draws" if self.refresh_every else "never"
        return (f"TaskPool(domain={self.domain.name!r}, size={self.size}, support={self.support}, "
                f"query={self.query}, refresh={every})")


def mean_over_valid(losses: Tensor, valid: Tensor) -> Tensor:
    """Average per-task losses over valid tasks (0 when none is valid, so a step can be skipped)."""
    count = valid.sum()
    return torch.where(valid, losses, torch.zeros_like(losses)).sum() / count.clamp(min=1)
