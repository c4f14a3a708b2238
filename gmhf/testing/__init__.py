"""Testing specs, models and plugins: Hypothesis strategies, plugin contracts, a pytest plugin.

* `gmhf.testing.strategies`: `from_guidance(guidance)` draws environments a spec believes in,
  shrinking toward the source; `specs(domain)`, `spec_texts(domain)` and `invalid_spec_texts(domain)`
  draw specs.
* `gmhf.testing.contracts`: `check_statement`, `check_distribution` and `check_domain`, the
  properties a plugin must have, for a plugin author's own tests.
* The pytest plugin (`pytest --gmhf-specs`) collects `*.guide` files as tests and offers the
  `gmhf_guidance` and `gmhf_plugins` fixtures. docs/testing.md shows all three.

Importing this package imports neither torch nor Hypothesis: pytest loads the plugin on every run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["contracts", "strategies"]


def __getattr__(name: str) -> ModuleType:
    if name not in __all__:
        raise AttributeError(f"module 'gmhf.testing' has no attribute {name!r}")
    return importlib.import_module(f"gmhf.testing.{name}")
