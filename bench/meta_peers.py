"""bench/meta.py's contenders: gmhf's batched learners, and higher and learn2learn looped over tasks."""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any

import torch
from meta_workload import (  # bench/meta_workload.py (run as a script)
    INNER_LR,
    INNER_STEPS,
    Fill,
    add_grad,
    mse,
    new_model,
    second_order,
)
from torch import nn

from gmhf.core.learners import ANIL, MAML, FirstOrderMAML, Reptile
from gmhf.core.learners.base import MetaLearner
from gmhf.core.tasks import TaskBatch

PEERS = ("higher", "learn2learn")


def gmhf_fill(learner: str, model: nn.Sequential, chunk: int | None = None) -> Fill:
    """gmhf's learner, all tasks at once (or `chunk` at a time)."""
    options: dict[str, Any] = {"inner_lr": INNER_LR, "inner_steps": INNER_STEPS, "tasks_per_chunk": chunk}
    classes: dict[str, type[MetaLearner]] = {"maml": MAML, "fomaml": FirstOrderMAML, "anil": ANIL, "reptile": Reptile}
    cls = classes[learner]
    meta = cls(model, **options)

    def fill(batch: TaskBatch) -> None:
        meta.backward(batch)
    return fill


def higher_fill(learner: str, model: nn.Sequential) -> Fill:
    """higher's unrolled inner loop, one task at a time."""
    import higher  # type: ignore[import-untyped]

    body, head = model[:-1], model[-1]
    net = head if learner == "anil" else model
    inner = torch.optim.SGD(net.parameters(), lr=INNER_LR)
    track = second_order(learner)

    def fill(batch: TaskBatch) -> None:
        b = len(batch)
        for i in range(b):
            sx, sy, qx, qy = batch.support_x[i], batch.support_y[i], batch.query_x[i], batch.query_y[i]
            if learner == "anil":
                sx, qx = body(sx), body(qx)
            with higher.innerloop_ctx(net, inner, copy_initial_weights=False, track_higher_grads=track) as (fnet, opt):
                for _ in range(INNER_STEPS):
                    opt.step(mse(fnet(sx), sy))
                if learner == "reptile":
                    add_grad(list(net.parameters()), [p.detach() - f.detach() for p, f in
                                                      zip(net.parameters(), fnet.parameters(), strict=True)], 1 / b)
                elif track:
                    (mse(fnet(qx), qy) / b).backward()
                else:  # the fast weights are detached: their query gradient is FOMAML's
                    fast = list(fnet.parameters())
                    add_grad(list(net.parameters()), torch.autograd.grad(mse(fnet(qx), qy), fast), 1 / b)
    return fill


def learn2learn_maml() -> type[nn.Module]:
    """learn2learn's `algorithms.MAML`, without running the package's `__init__`.

    `import learn2learn` imports its vision datasets (torchvision), gym environments and more; the
    torchvision wheels on PyPI are CUDA builds that do not load against a CPU torch. The MAML wrapper
    needs only `algorithms/maml.py`, `algorithms/base_learner.py` and `utils/__init__.py`: the two
    package modules are registered bare, so exactly that code runs, unchanged.
    """
    if "learn2learn" not in sys.modules:
        spec = importlib.util.find_spec("learn2learn")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("learn2learn is not installed (bash bench/peers/install.sh)")
        root = spec.submodule_search_locations[0]
        for name, folder in (("learn2learn", root), ("learn2learn.algorithms", f"{root}/algorithms")):
            package = types.ModuleType(name)
            package.__path__ = [folder]
            sys.modules[name] = package
    from learn2learn.algorithms.maml import MAML as L2LMAML  # type: ignore[import-not-found]

    return L2LMAML  # type: ignore[no-any-return]


def learn2learn_fill(learner: str, model: nn.Sequential) -> Fill:
    """learn2learn's MAML wrapper (clone, adapt), one task at a time; Reptile: deepcopy + SGD."""
    if learner == "reptile":
        def reptile(batch: TaskBatch) -> None:
            params, b = list(model.parameters()), len(batch)
            for i in range(b):
                clone = copy.deepcopy(model)
                opt = torch.optim.SGD(clone.parameters(), lr=INNER_LR)
                for _ in range(INNER_STEPS):
                    opt.zero_grad()
                    mse(clone(batch.support_x[i]), batch.support_y[i]).backward()
                    opt.step()
                add_grad(params, [p.detach() - c.detach() for p, c in zip(params, clone.parameters(), strict=True)],
                         1 / b)
        return reptile
    body, head = model[:-1], model[-1]
    wrapped: Any = learn2learn_maml()(head if learner == "anil" else model, lr=INNER_LR,
                                 first_order=not second_order(learner))

    def fill(batch: TaskBatch) -> None:
        b = len(batch)
        for i in range(b):
            sx, sy, qx, qy = batch.support_x[i], batch.support_y[i], batch.query_x[i], batch.query_y[i]
            if learner == "anil":
                sx, qx = body(sx), body(qx)
            clone = wrapped.clone()
            for _ in range(INNER_STEPS):
                clone.adapt(mse(clone(sx), sy))
            (mse(clone(qx), qy) / b).backward()
    return fill


FILLS: dict[str, Callable[[str, nn.Sequential], Fill]] = {
    "gmhf": gmhf_fill, "higher": higher_fill, "learn2learn": learn2learn_fill}


def available_peers() -> tuple[list[str], dict[str, str]]:
    """The peers that import here, and why each missing one is missing."""
    found, missing = [], {}
    for peer in PEERS:
        try:
            higher_fill("maml", new_model()) if peer == "higher" else learn2learn_maml()
            found.append(peer)
        except Exception as error:  # any import failure: the bench goes on without that peer
            missing[peer] = f"{type(error).__name__}: {error}"
    return found, missing


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None

