"""bench/cnode.py's contenders: each way of computing one training step's loss, gmhf's and torchdiffeq's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from cnode_problem import Batch  # bench/cnode_problem.py (run as a script)
from torch import Tensor

from gmhf.core.generator import ConditionalNODE
from gmhf.core.mlp_rk4 import Workspace
from gmhf.core.ode import rk4, substeps_for

#: gmhf's previous training path, kept as a row: the speed-up of the fused rollout over it.
AUTOGRAD = "gmhf rk4 through model.field (autograd per op: the path before the fused rollout)"

Loss = Callable[[ConditionalNODE, Batch], Tensor]


def gmhf_loss(workspace: Workspace | None) -> Loss:
    """What `_train_step` runs between drawing the batch and the optimiser, with a `Workspace` as `fit` keeps one."""

    def loss(model: ConditionalNODE, b: Batch) -> Tensor:
        solution = model.rollout(b.theta, b.y0, b.grid, b.start, workspace=workspace)
        ok = solution.ok
        return model._loss(solution.y[ok], b.target[ok])

    return loss


def gmhf_steps(step: float) -> Callable[[Any, Tensor, Tensor], Tensor]:
    """A torchdiffeq grid_constructor taking gmhf rk4's steps: each output interval split as rk4 splits it.

    torchdiffeq hands it decreasing times when it integrates backwards (odeint_adjoint's backward
    pass), so the split is by |dt|: the adjoint then retraces the forward steps.
    """

    def construct(func: Any, y0: Tensor, t: Tensor) -> Tensor:
        times = t.tolist()
        points = []
        for i in range(len(times) - 1):
            substeps = substeps_for(abs(times[i + 1] - times[i]), step)
            h = (times[i + 1] - times[i]) / substeps
            points += [times[i] + j * h for j in range(substeps)]
        points.append(times[-1])
        return torch.tensor(points, dtype=t.dtype, device=t.device)

    return construct


def register_classical_rk4() -> None:
    """torchdiffeq's own classical RK4 step (`rk4_step_func`) as method "rk4_classical" (its "rk4" is the 3/8 rule)."""
    from torchdiffeq._impl.misc import Perturb  # type: ignore[import-not-found]
    from torchdiffeq._impl.odeint import SOLVERS  # type: ignore[import-not-found]
    from torchdiffeq._impl.rk_common import rk4_step_func  # type: ignore[import-not-found]
    from torchdiffeq._impl.solvers import FixedGridODESolver  # type: ignore[import-not-found]

    class ClassicalRK4(FixedGridODESolver):  # type: ignore[misc]
        order = 4

        def _step_func(self, func: Any, t0: Tensor, dt: Tensor, t1: Tensor, y0: Tensor) -> tuple[Tensor, Tensor]:
            f0 = func(t0, y0, perturb=Perturb.NEXT if self.perturb else Perturb.NONE)
            return rk4_step_func(func, t0, dt, t1, y0, f0=f0, perturb=self.perturb), f0

    SOLVERS.setdefault("rk4_classical", ClassicalRK4)


def tdq_step_size(model: ConditionalNODE, b: Batch) -> Tensor:
    """The public call: `odeint(..., method="rk4", options={"step_size": h})` on the same grid."""
    from torchdiffeq import odeint

    y = odeint(model.field(b.theta, b.start), b.y0, b.grid, method="rk4", options={"step_size": model.step})
    return model._loss(y.transpose(0, 1), b.target)


def tdq_grid(method: str) -> Loss:
    """torchdiffeq `method` on gmhf's steps (the grid in float64, as gmhf keeps its times in Python floats)."""

    def loss(model: ConditionalNODE, b: Batch) -> Tensor:
        from torchdiffeq import odeint

        y = odeint(model.field(b.theta, b.start), b.y0, b.grid.to(torch.float64), method=method,
                   options={"grid_constructor": gmhf_steps(model.step)})
        return model._loss(y.transpose(0, 1), b.target)

    return loss


def tdq_adjoint(model: ConditionalNODE, b: Batch) -> Tensor:
    """`odeint_adjoint`, rk4 (3/8) on gmhf's steps both ways; memory flat in the window."""
    from torchdiffeq import odeint_adjoint

    y = odeint_adjoint(model.field(b.theta, b.start), b.y0, b.grid.to(torch.float64), method="rk4",
                       options={"grid_constructor": gmhf_steps(model.step)}, adjoint_params=tuple(model.parameters()))
    return model._loss(y.transpose(0, 1), b.target)


def autograd_loss(model: ConditionalNODE, b: Batch) -> Tensor:
    """gmhf's previous training path: `rk4(model.field(...))`, every op of every stage recorded by autograd."""
    solution = rk4(model.field(b.theta, b.start), b.y0, b.grid, step=model.step, blowup=model.blowup)
    ok = solution.ok
    return model._loss(solution.y[ok], b.target[ok])


@dataclass(frozen=True)
class Path_:
    """One way of computing the training loss; `same_as` names the path whose loss and gradients it must match."""

    name: str
    library: str
    loss: Loss
    same_as: str | None = None  # checked to LOSS/GRAD_TOLERANCE in float64
    note: str = ""


def paths(with_torchdiffeq: bool) -> list[Path_]:
    """Every timed path, gmhf's first."""
    out = [Path_("gmhf rk4 (rollout + _loss, as _train_step)", "gmhf", gmhf_loss(Workspace()))]
    if with_torchdiffeq:
        register_classical_rk4()
        out += [
            Path_("torchdiffeq rk4, step_size h", "torchdiffeq", tdq_step_size,
                  note="its own steps; rk4 = 3/8 rule"),
            Path_("torchdiffeq rk4, gmhf's steps", "torchdiffeq", tdq_grid("rk4"),
                  note="grid_constructor; 3/8 rule"),
            Path_("torchdiffeq classical rk4, gmhf's steps", "torchdiffeq", tdq_grid("rk4_classical"),
                  same_as="gmhf rk4 (rollout + _loss, as _train_step)", note="same arithmetic as gmhf"),
            Path_("torchdiffeq odeint_adjoint rk4, gmhf's steps", "torchdiffeq-adjoint", tdq_adjoint,
                  note="adjoint gradient"),
        ]
    out.append(Path_(AUTOGRAD, "gmhf-autograd", autograd_loss, same_as=out[0].name,
                     note="the same RK4 through model.field, autograd per op"))
    return out

