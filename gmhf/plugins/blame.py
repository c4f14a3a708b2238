"""Whose bug is it: tie an unexpected exception to the plugin whose code raised it.

A plugin's code runs long after loading (a distribution's factory when a spec is compiled, a
domain's simulator when data is generated), where gmhf would otherwise report "internal error in
gmhf". Entries a plugin registers are guarded so that what they raise carries the plugin's name;
anything else is traced back to the innermost frame inside a plugin's package.
"""

from __future__ import annotations

import dataclasses
import functools
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gmhf.core.registry import DistributionKind, FunctionKind, resolve

if TYPE_CHECKING:
    from gmhf.plugins.manager import PluginInfo

__all__ = ["PLUGIN_ATTRIBUTE", "blame", "guard"]

#: The attribute a guarded entry sets on what it raises: the name of the plugin that registered it.
PLUGIN_ATTRIBUTE = "gmhf_plugin"


def _guarded(target: Any, plugin: str) -> Callable[..., Any]:
    @functools.wraps(target if callable(target) else _guarded)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return resolve(target)(*args, **kwargs)
        except Exception as error:
            if not hasattr(error, PLUGIN_ATTRIBUTE):
                try:
                    setattr(error, PLUGIN_ATTRIBUTE, plugin)
                except AttributeError:  # an exception type with __slots__: traceback blame remains
                    pass
            raise
    return call


def guard(entry: Any, plugin: str) -> Any:
    """A copy of a registered distribution or function whose code tags what it raises with `plugin`."""
    if isinstance(entry, DistributionKind):
        return dataclasses.replace(entry, factory=_guarded(entry.factory, plugin),
                                   validate=_guarded(entry.validate, plugin), support=_guarded(entry.support, plugin))
    if isinstance(entry, FunctionKind):
        interval = None if entry.interval is None else _guarded(entry.interval, plugin)
        return dataclasses.replace(entry, torch=_guarded(entry.torch, plugin), interval=interval)
    return entry


def blame(error: BaseException, plugins: Mapping[str, PluginInfo]) -> PluginInfo | None:
    """The third-party plugin `error` came from, or None when it is gmhf's own (or unknown)."""
    tagged = plugins.get(getattr(error, PLUGIN_ATTRIBUTE, None) or "")
    if tagged is not None and tagged.origin != "builtin":
        return tagged
    packages = {info.module.partition(".")[0]: info for info in plugins.values()
                if info.module and info.origin != "builtin" and not info.module.startswith("gmhf.")}
    for frame, _ in reversed(list(traceback.walk_tb(error.__traceback__))):
        module = str(frame.f_globals.get("__name__", ""))
        owner = packages.get(module.partition(".")[0])
        if owner is not None:
            return owner
    return None
