"""The conditional neural ODE: a learned, differentiable twin of a domain's simulator.

The paper's generative digital twin. A vector field f_ψ(t, state, θ) is an MLP on the state, the
dynamics factors and time features; it is integrated by `gmhf.core.ode.rk4` (plain torch ops, so
autograd flows through it), from the initial state that θ's state factors name.

Normalisation. Every factor column is mapped to `(θ − centre) / half` from its *source*
distribution (uniform(a, b): centre (a+b)/2, half (b−a)/2; normal(μ, σ): μ, 2σ; other families fall
back to the physical bounds), so the source fills about [−1, 1]. Target factors beyond the source
become inputs beyond ±1: the twin is then extrapolating, and its error there (not on the source)
is what a shifted target pays. The state is scaled by its state factors' source scales.

Time features. With `forcing_frequency` (Duffing: `omega`) the field sees cos(ωt) and sin(ωt), not
t: the learned dynamics are then autonomous apart from the periodic forcing, as the true ones are,
so they extend past the training horizon and to other ω. Without it the field sees t scaled to
[0, 1] on the output grid, and beyond the grid's end it is guessing.

Memory. Training integrates random windows of `window` output points, each started from the true
state at the window's start and at that start's absolute time, so memory grows with the window,
not with the horizon. Validation rolls out whole trajectories, without gradients.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core.mlp_rk4 import Workspace, from_tanh, mlp_rk4, schedule
from gmhf.core.networks import mlp
from gmhf.core.ode import Solution, VectorField, is_uniform, rk4
from gmhf.core.seeding import random_stream

if TYPE_CHECKING:
    from rich.progress import Progress

    from gmhf.core.factors import Factor, FactorSpace

__all__ = ["ConditionalNODE", "FitReport"]


@dataclass(frozen=True)
class FitReport:
    """What `ConditionalNODE.fit` did; losses are normalised state MSE (see `ConditionalNODE.fit`).

    Attributes:
        steps: optimiser steps run.
        validation_steps: the step after which each validation was made.
        train_loss: mean window loss since the previous validation, one per validation.
        validation_loss: full-horizon loss on the held-out source split, one per validation.
        best_validation_loss: the lowest of them; its weights are the ones kept.
        best_step: the step that reached it.
        stopped_early: whether `patience` validations without improvement ended the fit.
    """

    steps: int
    validation_steps: tuple[int, ...]
    train_loss: tuple[float, ...]
    validation_loss: tuple[float, ...]
    best_validation_loss: float
    best_step: int
    stopped_early: bool

    def __repr__(self) -> str:
        return (f"FitReport(steps={self.steps}, best_validation_loss={self.best_validation_loss:.4g}, "
                f"best_step={self.best_step}, stopped_early={self.stopped_early})")


def _scale(factor: Factor) -> tuple[float, float]:
    """Centre and half-width of a factor's source (physical bounds when the source has no range)."""
    name, args = factor.source.name, factor.source.args
    if factor.kind == "categorical":
        return (len(factor.levels) - 1) / 2, max((len(factor.levels) - 1) / 2, 1.0)
    if name in ("uniform", "loguniform") and len(args) == 2 and args[1] > args[0]:
        return (args[0] + args[1]) / 2, (args[1] - args[0]) / 2
    if name == "normal" and len(args) == 2 and args[1] > 0:
        return args[0], 2 * args[1]
    if math.isfinite(factor.low) and math.isfinite(factor.high):
        return (factor.low + factor.high) / 2, (factor.high - factor.low) / 2
    return 0.0, 1.0


class ConditionalNODE(torch.nn.Module):
    """A conditional neural ODE generator: θ `[n, k]` -> trajectories on a fixed output grid.

    Args:
        space: the domain's factor space (normalisation comes from its source distributions).
        state: the factors that are the initial state, in state-component order (Duffing: x0, v0).
        dynamics: the factors the field is conditioned on (default: all the others).
        t: the output grid `[t]`, shared by every trajectory.
        step: the longest RK4 step; output intervals are split into equal substeps no longer.
        hidden, depth: width and number of hidden layers of the MLP.
        forcing_frequency: a factor giving the angular frequency of a periodic forcing; time features
            become cos(ωt), sin(ωt) (see the module docstring).
        components: output keys of the state components (default: state names without a final `0`).
        seed: seeds the weight initialisation, through its own torch.Generator.
        blowup: a generated state beyond this in absolute value counts as diverged (`ok` False).
    """

    loc: Tensor  # [k] source centre of each factor
    scale: Tensor  # [k] source half-width of each factor
    t: Tensor  # [t] the output grid, float64

    def __init__(self, space: FactorSpace, state: Sequence[str], dynamics: Sequence[str] | None = None, *,
                 t: Tensor, step: float = 0.25, hidden: int = 64, depth: int = 2,
                 forcing_frequency: str | None = None, components: Sequence[str] | None = None,
                 seed: int = 0, blowup: float = 1e3) -> None:
        super().__init__()
        names = space.names
        dynamics = [n for n in names if n not in state] if dynamics is None else list(dynamics)
        for name in [*state, *dynamics, *([forcing_frequency] if forcing_frequency else [])]:
            if name not in space:
                raise ValueError(f"`{name}` is not a factor of this space; expected one of {list(names)}.")
        if t.ndim != 1 or t.numel() < 2 or bool((t[1:] <= t[:-1]).any()):
            raise ValueError("`t` must be a 1-d tensor of at least two increasing output times.")
        self.state, self.dynamics = tuple(state), tuple(dynamics)
        self.components = tuple(components or (s[:-1] if s.endswith("0") and len(s) > 1 else s for s in state))
        self.forcing_frequency, self.step, self.blowup = forcing_frequency, float(step), float(blowup)
        self._state = [space.index(n) for n in self.state]
        self._dynamics = [space.index(n) for n in self.dynamics]
        self._omega = space.index(forcing_frequency) if forcing_frequency else None
        centre, half = zip(*(_scale(f) for f in space), strict=True)
        self.register_buffer("loc", torch.tensor(centre, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(half, dtype=torch.float32))
        self.register_buffer("t", t.detach().to(torch.float64).clone())
        inputs = len(self._state) + len(self._dynamics) + (2 if self._omega is not None else 1)
        generator = torch.Generator().manual_seed(seed)
        self.net = mlp(inputs, len(self._state), [hidden] * depth, activation=torch.nn.Tanh, generator=generator,
                       init="field")

    def extra_repr(self) -> str:
        return (f"state={self.state}, dynamics={self.dynamics}, t=f64[{len(self.t)}], step={self.step:g}, "
                f"forcing_frequency={self.forcing_frequency!r}")

    def field(self, theta: Tensor, start: Tensor) -> VectorField:
        """f(s, y) for a batch θ `[n, k]` whose clocks read `start + s` (`start` `[n]`)."""
        centre, half = self.loc, self.scale
        condition = (theta[:, self._dynamics] - centre[self._dynamics]) / half[self._dynamics]
        y_centre, y_half = centre[self._state], half[self._state]
        omega = theta[:, self._omega] if self._omega is not None else None
        t0, span = float(self.t[0]), float(self.t[-1] - self.t[0])

        def f(s: float | Tensor, y: Tensor) -> Tensor:
            time = start + s
            if omega is not None:
                features = torch.stack((torch.cos(omega * time), torch.sin(omega * time)), -1)
            else:
                features = ((time - t0) / span)[:, None]
            return self.net(torch.cat(((y - y_centre) / y_half, condition, features), -1)) * y_half

        return f

    def rollout(self, theta: Tensor, y0: Tensor, grid: Tensor, start: Tensor, *,
                workspace: Workspace | None = None) -> Solution:
        """Integrate from states `y0` `[n, d]` at absolute times `start` `[n]` over relative `grid`.

        A training loop passes one `workspace` to all its rollouts (see `Workspace`).

        The same RK4 steps and the same function as `rk4(self.field(theta, start), …)`, in far fewer
        ops (`gmhf.core.mlp_rk4`): normalisations folded into the first and last layers, the first
        layer's conditioning computed once, its time features once per stage time, one autograd node.
        """
        linears = [m for m in self.net if isinstance(m, torch.nn.Linear)]
        standard = all(isinstance(m, torch.nn.Linear | torch.nn.Tanh) for m in self.net)
        if len(linears) < 2 or not standard:  # no hidden layer (nothing to gain), or a net of another shape
            return rk4(self.field(theta, start), y0, grid, step=self.step, blowup=self.blowup)
        plan = schedule(grid.tolist(), self.step)
        first, later = linears[0], linears[1:]
        d, k = len(self._state), len(self._dynamics)
        y_centre, y_half = self.loc[self._state], self.scale[self._state]
        w_y, w_condition, w_time = first.weight[:, :d], first.weight[:, d:d + k], first.weight[:, d + k:]
        condition = (theta[:, self._dynamics] - self.loc[self._dynamics]) / self.scale[self._dynamics]
        # (y − c)/s · W_yᵀ = y · (W_y/s)ᵀ − (c/s) · W_yᵀ: the centring joins the bias and the conditioning.
        base = torch.addmm(first.bias - (y_centre / y_half) @ w_y.t(), condition, w_condition.t())  # [n, hidden]
        times = theta.new_tensor(plan.times)[:, None]  # [j, 1]
        if self._omega is not None:
            angle = theta[:, self._omega] * (start + times)
            features = torch.stack((torch.cos(angle), torch.sin(angle)), -1)  # [j, n, 2]
        else:
            features = (((start + times) - float(self.t[0])) / float(self.t[-1] - self.t[0]))[..., None]
        w_in = torch.cat(((w_y / y_half).t(), w_time.t()))  # [d + f, hidden]: on (state, features)
        layers: list[tuple[Tensor, Tensor]] = [(layer.weight.t(), layer.bias) for layer in later[:-1]]
        layers.append(((later[-1].weight * y_half[:, None]).t(), later[-1].bias * y_half))
        base, w_in, layers = from_tanh(base, w_in, layers)
        y, ok = mlp_rk4(y0, base, features, w_in, layers, plan, blowup=self.blowup, workspace=workspace)
        return Solution(t=grid, y=y, ok=ok, failed=int((~ok).sum()), evaluations=4 * len(plan.steps))

    def generate(self, theta: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Trajectories for θ `[n, k]`, shaped like the simulator's: `{"t", *components, "ok"}`.

        Deterministic (`generator` is accepted for the `Generator` protocol and unused). Values come
        back in θ's dtype; a diverging or non-finite trajectory has `ok` False and NaN from then on.
        """
        if theta.ndim != 2 or theta.shape[1] != len(self.loc):
            raise ValueError(f"`theta` must have shape [n, {len(self.loc)}], got {list(theta.shape)}.")
        with torch.no_grad():
            th = theta.to(self.scale.dtype)
            start = th.new_zeros(th.shape[0])
            solution = self.rollout(th, th[:, self._state], self.t.to(th.dtype), start)
        out: dict[str, Tensor] = {"t": self.t.clone()}
        for i, name in enumerate(self.components):
            out[name] = solution.y[:, :, i].to(theta.dtype)
        out["ok"] = solution.ok
        return out

    def fit(self, trajectories: Tensor, theta: Tensor, *, steps: int = 2000, batch_size: int = 64,
            lr: float = 3e-3, window: int = 20, validation_fraction: float = 0.2, patience: int = 10,
            validate_every: int = 25, generator: torch.Generator | None = None,
            progress: bool = True) -> FitReport:
        """Fit the field to source trajectories `[n, t, d]` simulated from θ `[n, k]`.

        Adam on mini-batches of random windows of `window` output points (the memory bound); the
        loss is the MSE of the state divided by its source scale. A `validation_fraction` of the
        trajectories is held out; every `validate_every` steps whole trajectories are rolled out
        on it, and after `patience` validations without improvement the fit stops. The best
        validated weights are restored. Rows with non-finite values are dropped. `generator` drives
        the split, batches and windows (default: one seeded from OS entropy, leaving torch's global
        RNG untouched). A Rich progress bar goes to stderr when `progress` is set, stderr is a
        terminal and `CI` is unset.
        """
        _positive(steps=steps, batch_size=batch_size, validate_every=validate_every, patience=patience)
        if window < 2:
            raise ValueError(f"`window` must be at least 2 output points, got {window!r}.")
        data, theta = self._check(trajectories, theta)
        generator = generator or random_stream(None)
        order = torch.randperm(len(data), generator=generator)
        n_val = max(1, round(validation_fraction * len(data)))
        if len(data) - n_val < 1:
            raise ValueError(f"`validation_fraction` {validation_fraction!r} leaves no training trajectories.")
        val, train = order[:n_val], order[n_val:]
        width = min(window, len(self.t))
        if width < len(self.t) and not is_uniform(self.t, rtol=1e-6):
            raise ValueError("Windowed training needs a uniform output grid `t`; pass `window=len(t)` otherwise.")
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        tracker = _Tracker(patience=patience, best_state=copy.deepcopy(self.state_dict()))
        workspace = Workspace()  # every training step's rollout reuses the last one's buffers
        with _progress(progress) as bar:
            task = bar.add_task("fitting cNODE", total=steps, loss=math.inf)
            for step in range(1, steps + 1):
                loss = self._train_step(data[train], theta[train], width, batch_size, optimizer, generator,
                                        workspace)
                tracker.running.append(loss)
                if step % validate_every == 0 or step == steps:
                    if tracker.update(step, self._validation_loss(data[val], theta[val]), self):
                        break
                bar.update(task, advance=1, loss=tracker.best)
        self.load_state_dict(tracker.best_state)
        return tracker.report(step)

    def _check(self, trajectories: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        d, k = len(self._state), len(self.loc)
        if trajectories.ndim != 3 or trajectories.shape[1:] != (len(self.t), d):
            raise ValueError(f"`trajectories` must have shape [n, {len(self.t)}, {d}], "
                             f"got {list(trajectories.shape)}.")
        if theta.shape != (trajectories.shape[0], k):
            raise ValueError(f"`theta` must have shape [{trajectories.shape[0]}, {k}], got {list(theta.shape)}.")
        keep = torch.isfinite(trajectories).flatten(1).all(-1) & torch.isfinite(theta).all(-1)
        dtype = self.scale.dtype
        return trajectories[keep].to(dtype), theta[keep].to(dtype)

    def _train_step(self, data: Tensor, theta: Tensor, width: int, batch_size: int,
                    optimizer: torch.optim.Optimizer, generator: torch.Generator,
                    workspace: Workspace | None = None) -> float:
        rows = torch.randperm(len(data), generator=generator)[:batch_size]
        starts = torch.randint(len(self.t) - width + 1, (len(rows),), generator=generator)
        target = data[rows[:, None], starts[:, None] + torch.arange(width)]  # [b, width, d]
        grid = (self.t[:width] - self.t[0]).to(data.dtype)
        solution = self.rollout(theta[rows], target[:, 0], grid, self.t[starts].to(data.dtype), workspace=workspace)
        ok = solution.ok
        if not bool(ok.any()):
            return math.nan
        loss = self._loss(solution.y[ok], target[ok])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)
        optimizer.step()
        return float(loss.detach())

    def _loss(self, predicted: Tensor, target: Tensor) -> Tensor:
        return (((predicted - target) / self.scale[self._state]) ** 2).mean()

    def _validation_loss(self, data: Tensor, theta: Tensor) -> float:
        """Whole-horizon rollouts; a diverged one scores as if it predicted zero from then on."""
        with torch.no_grad():
            start = data.new_zeros(len(data))
            solution = self.rollout(theta, data[:, 0], self.t.to(data.dtype), start)
            return float(self._loss(solution.y.nan_to_num(0.0), data))


def _positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}.")


@dataclass
class _Tracker:
    """Early stopping: remembers the best validated weights and counts validations since."""

    patience: int
    best_state: dict[str, Any]
    best: float = math.inf
    best_step: int = 0
    waited: int = 0
    stopped: bool = False
    running: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    validation: list[float] = field(default_factory=list)

    def update(self, step: int, loss: float, module: torch.nn.Module) -> bool:
        """Record a validation; True when patience has run out."""
        finite = [x for x in self.running if math.isfinite(x)]
        self.steps.append(step)
        self.train.append(sum(finite) / len(finite) if finite else math.nan)
        self.validation.append(loss)
        self.running.clear()
        if loss < self.best * (1 - 1e-4):
            self.best, self.best_step, self.waited = loss, step, 0
            self.best_state = copy.deepcopy(module.state_dict())
        else:
            self.waited += 1
        self.stopped = self.waited >= self.patience
        return self.stopped

    def report(self, steps: int) -> FitReport:
        return FitReport(steps=steps, validation_steps=tuple(self.steps), train_loss=tuple(self.train),
                         validation_loss=tuple(self.validation), best_validation_loss=self.best,
                         best_step=self.best_step, stopped_early=self.stopped)


def _progress(enabled: bool) -> Progress:
    """A Rich bar on stderr, off when not wanted, not a terminal, or under CI."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gmhf.console import progress_wanted

    show = enabled and progress_wanted()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("best val {task.fields[loss]:.4g}"), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not show, transient=True)
