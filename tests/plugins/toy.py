"""A test domain with every factor kind: real, integer and categorical."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gmhf
from gmhf.core.factors import Factor, FactorSpace, Observable


class Toy(gmhf.Domain):
    """Two reals, an integer and a categorical; its data is θ itself, repeated."""

    name = "toy"
    space = FactorSpace(
        factors=(
            Factor.real("speed", 0.0, 10.0, source=("uniform", 1.0, 3.0)),
            Factor.real("mass", 0.0, 100.0, source=("normal", 50.0, 10.0)),
            Factor.integer("cars", 0, 20, source=("uniform", 0, 10)),
            Factor.categorical("weather", ["clear", "rain", "snow", "fog"], weights=[4, 2, 1, 1]),
        ),
        observables=(Observable(name="trace", shape="array"), Observable(name="peak", shape="scalar")),
    )

    def simulate(self, theta: Any, *, generator: Any = None, **options: Any) -> Any:
        import torch

        return {"trace": theta[:, :1] * torch.linspace(0, 1, 5, dtype=theta.dtype)}

    def observe(self, theta: Any, data: Any) -> dict[str, Any]:
        return {"trace": data["trace"], "peak": data["trace"].amax(-1)}


@gmhf.hookimpl
def gmhf_domains(register: Callable[..., None]) -> None:
    register(Toy())
