"""gmhf: compile an expert's beliefs about a target environment into samplers and constraints.

    import gmhf
    guidance = gmhf.load("examples/specs/sinusoid.guide")
    theta = guidance.sample(1024, seed=0)      # named tensors, one row per environment

Names resolve lazily, so `import gmhf` (and `gmhf check`) never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Constraint": "gmhf.core.constraints",
    "Diagnostic": "gmhf.dsl.errors",
    "DistributionKind": "gmhf.core.registry",
    "Domain": "gmhf.core.domain",
    "ExitCode": "gmhf.errors",
    "Factor": "gmhf.core.factors",
    "FactorSpace": "gmhf.core.factors",
    "FunctionKind": "gmhf.core.registry",
    "GmhfError": "gmhf.errors",
    "Guidance": "gmhf.core.guidance",
    "Observable": "gmhf.core.factors",
    "PluginError": "gmhf.errors",
    "SpecError": "gmhf.dsl.errors",
    "Theta": "gmhf.core.theta",
    "UsageError": "gmhf.errors",
    "compile": "gmhf.api",
    "hookimpl": "gmhf.plugins.hookspecs",
    "load": "gmhf.api",
    "parse": "gmhf.api",
    "pool": "gmhf.api",
    "run": "gmhf.pipeline",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gmhf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from gmhf.api import compile, load, parse, pool
    from gmhf.core.constraints import Constraint
    from gmhf.core.domain import Domain
    from gmhf.core.factors import Factor, FactorSpace, Observable
    from gmhf.core.guidance import Guidance
    from gmhf.core.registry import DistributionKind, FunctionKind
    from gmhf.core.theta import Theta
    from gmhf.dsl.errors import Diagnostic, SpecError
    from gmhf.errors import ExitCode, GmhfError, PluginError, UsageError
    from gmhf.pipeline import run
    from gmhf.plugins.hookspecs import hookimpl
