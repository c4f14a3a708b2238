"""The work behind the pytest plugin's fixtures, imported only when a test asks for one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gmhf.core.guidance import Guidance
    from gmhf.plugins.manager import PluginHost

__all__ = ["isolated_plugins", "load_marked"]


@contextlib.contextmanager
def isolated_plugins(plugins: Sequence[Any]) -> Iterator[PluginHost]:
    """`using_plugins` with plugins named as objects, `"module[:attribute]"`, or installed entry-point names."""
    from gmhf.plugins.manager import ENTRY_POINT_GROUP, using_plugins

    installed = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    objects, entry_points = [], []
    for plugin in plugins:
        if isinstance(plugin, str) and plugin in installed:
            entry_points.append(installed[plugin])
        elif isinstance(plugin, str):
            objects.append(_import(plugin))
        else:
            objects.append(plugin)
    with using_plugins(*objects, entry_points=entry_points) as host:
        yield host


def _import(name: str) -> Any:
    """A module by name, or an attribute of one as `module:attribute`."""
    import importlib

    from gmhf.core.registry import resolve

    return resolve(name) if ":" in name else importlib.import_module(name)


def load_marked(spec: Any, base: Path, domain: str | None) -> Guidance:
    """Load the marker's spec: a path (relative to `base`, the test file's folder) or spec text."""
    import gmhf

    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and "\n" not in spec and ";" not in spec
                                         and (spec.endswith(".guide") or (base / spec).is_file())):
        return gmhf.load(base / spec, domain=domain)
    return gmhf.load(spec, domain=domain)
