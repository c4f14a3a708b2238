"""Loading plugins one by one, isolating their failures, and building the registry from their hooks.

The host built here is the only mutable object at module level in gmhf. Built-ins are registered
exactly as installed plugins are; each entry point of the group `gmhf` is imported on its own, and
each plugin's hook runs on its own, so one broken plugin costs only itself.

Environment:
    GMHF_LOAD_PLUGINS=a,b     load only these entry points (empty: none); built-ins always load
    GMHF_DISABLE_PLUGINS=a,b  skip these plugins (entry points, or built-in domains such as `sinusoid`;
                              `builtin` itself cannot be: every domain needs its statements)
    GMHF_STRICT_PLUGINS=1     any plugin failure raises PluginError (the CLI exits with code 4);
                              1/true/yes/on turn it on, 0/false/no/off/empty leave it off
"""

from __future__ import annotations

import contextlib
import importlib
import os
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from gmhf.core.registry import DistributionKind, FunctionKind, Registry, StatementKind
from gmhf.errors import PluginError, UsageError
from gmhf.plugins import hookspecs
from gmhf.plugins.blame import guard
from gmhf.plugins.validation import refuse_broken

__all__ = ["PluginHost", "PluginInfo", "blame_plugin", "build_host", "plugin_host", "using_plugins"]

ENTRY_POINT_GROUP = "gmhf"
#: Built-in plugins: (name, module). They register through the same hooks as everyone else.
BUILTIN_PLUGINS = (("builtin", "gmhf.plugins.builtin"), ("sinusoid", "gmhf.domains.sinusoid"),
                   ("duffing", "gmhf.domains.duffing"), ("scenes", "gmhf.domains.scenes"))
#: The built-in plugin every domain needs (its statements and distributions); it cannot be disabled.
CORE_PLUGIN = "builtin"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass
class PluginInfo:
    """One plugin: where it came from, what it registered, and what went wrong."""

    name: str
    version: str | None
    origin: str  # "builtin", "entry point" or "local"
    distribution: str | None = None
    registers: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: The module (or the plugin object's module) that was registered, to blame its exceptions on it.
    module: str | None = None

    @property
    def label(self) -> str:
        """`name (distribution version)` for messages."""
        dist = self.distribution or self.name
        return f"{self.name} ({dist} {self.version})" if self.version else self.name

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, as `gmhf plugins --json` prints."""
        return {"name": self.name, "version": self.version, "origin": self.origin,
                "distribution": self.distribution, "registers": self.registers, "errors": self.errors}


@dataclass
class PluginHost:
    """A pluggy manager with its plugins' metadata; builds the `Registry` on first use."""

    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    strict: bool = False
    _registry: Registry | None = None
    _commands: list[Any] | None = None

    @property
    def registry(self) -> Registry:
        """Everything the plugins registered (built once); in strict mode, raises on any failure."""
        registry = self.build()
        self.raise_if_strict()
        return registry

    def build(self) -> Registry:
        """The registry, built once, recording failures without raising (for `gmhf plugins`)."""
        if self._registry is None:
            self._registry = _build_registry(self)
        return self._registry

    @property
    def failures(self) -> list[tuple[PluginInfo, str]]:
        """Every recorded (plugin, error message)."""
        return [(info, error) for info in self.plugins.values() for error in info.errors]

    def raise_if_strict(self) -> None:
        """In strict mode, raise the first plugin failure as a PluginError."""
        if self.strict and self.failures:
            info, error = self.failures[0]
            raise PluginError(f"plugin {info.label} failed: {error}", plugin=info.name, version=info.version)

    def commands(self, *, strict: bool = True) -> list[Any]:
        """click commands registered through `gmhf_commands` (each plugin's hook runs once)."""
        if self._commands is None:
            self._commands = self._collect_commands()
        if strict:
            self.raise_if_strict()
        return self._commands

    def _collect_commands(self) -> list[Any]:
        found: list[Any] = []
        for info, impl in self._impls("gmhf_commands"):
            def register(command: Any, _info: PluginInfo = info) -> None:
                if not hasattr(command, "name") or not callable(getattr(command, "main", None)):
                    _info.errors.append(f"gmhf_commands: expected a click.Command, got {command!r}")
                    return
                command._gmhf_plugin = _info.name
                found.append(command)
                _info.registers.setdefault("commands", []).append(command.name)
            _call(info, impl, register)
        return found

    def _impls(self, hook: str) -> Iterator[tuple[PluginInfo, Any]]:
        impls = {impl.plugin_name: impl for impl in getattr(self.pm.hook, hook).get_hookimpls()}
        for name, info in self.plugins.items():
            if name in impls:
                yield info, impls[name]


def _call(info: PluginInfo, impl: Any, register: Callable[..., None]) -> None:
    try:
        impl.function(register=register)
    except Exception as error:  # a plugin's bug must not take the others down
        where = traceback.extract_tb(error.__traceback__)[-1]
        info.errors.append(f"{impl.function.__name__} raised {type(error).__name__}: {error} "
                           f"({os.path.basename(where.filename)}:{where.lineno})")


def _build_registry(host: PluginHost) -> Registry:
    registry = Registry()
    for hook in hookspecs.REGISTRY_HOOKS:
        for info, impl in host._impls(hook):
            _call(info, impl, _registrar(hook, info, registry))
    refuse_broken(registry, host.plugins)
    return registry


def _registrar(hook: str, info: PluginInfo, registry: Registry) -> Callable[..., None]:
    kind = hook.removeprefix("gmhf_")
    table: dict[str, Any] = getattr(registry, kind)

    def add(name: str, value: Any) -> None:
        # Names used in specs must be identifiers; learners and experts may also use dashes.
        spelled = name.replace("-", "_") if kind in ("learners", "experts") and isinstance(name, str) else name
        if not isinstance(spelled, str) or not spelled.isidentifier():
            info.errors.append(f"{hook}: names must be identifiers, got {name!r}")
        elif name in table:
            owner = registry.origins[(kind, name)]
            info.errors.append(f"{hook}: `{name}` is already registered by plugin {owner!r}; kept the first")
        else:
            table[name] = value if info.origin == "builtin" else guard(value, info.name)
            registry.origins[(kind, name)] = info.name
            info.registers.setdefault(kind, []).append(name)

    def register(*args: Any, **kwargs: Any) -> None:
        try:
            name, value = _entry(kind, args, kwargs)
        except (TypeError, ValueError) as error:
            info.errors.append(f"{hook}: {error}")
            return
        add(name, value)

    return register


def _entry(kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    if kind == "statements":
        (constraint,) = args
        keyword = kwargs.get("keyword") or getattr(constraint, "keyword", None)
        if not keyword:
            raise TypeError("register() needs `keyword=` when the constraint is given by path")
        syntax = kwargs.get("syntax", getattr(constraint, "syntax", None))
        if syntax is not None:
            _check_syntax(keyword, syntax)
        return keyword, StatementKind(keyword=keyword, constraint=constraint, syntax=syntax,
                                      description=kwargs.get("description", ""))
    if kind in ("distributions", "functions"):
        (entry,) = args
        expected = DistributionKind if kind == "distributions" else FunctionKind
        if not isinstance(entry, expected):
            raise TypeError(f"register() expects a {expected.__name__}, got {entry!r}")
        return entry.name, entry
    if kind == "domains":
        (domain,) = args
        from gmhf.core.domain import Domain

        if not isinstance(domain, Domain):
            raise TypeError(f"register() expects a gmhf.Domain instance, got {domain!r}")
        return domain.name, domain
    name, value = args
    return name, value


def _check_syntax(keyword: str, syntax: str) -> None:
    """A plugin keyword must be new and its syntax must build into the grammar."""
    from lark.exceptions import LarkError

    from gmhf.dsl.parse import BUILTIN_KEYWORDS, RESERVED_WORDS, build_parser

    if keyword in BUILTIN_KEYWORDS or keyword in RESERVED_WORDS:
        raise ValueError(f"`{keyword}` is a reserved word of the language")
    try:
        build_parser(((keyword, syntax),))
    except LarkError as error:
        raise ValueError(f"the syntax {syntax!r} of `{keyword}` does not build: {error}") from None


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _strict(value: str | None) -> bool:
    """GMHF_STRICT_PLUGINS as a flag; a value that is neither on nor off is refused, not guessed."""
    word = (value or "").strip().lower()
    if word not in _TRUE + _FALSE:
        raise UsageError(f"`GMHF_STRICT_PLUGINS` must be one of {', '.join(_TRUE)} (on) or "
                         f"{', '.join(_FALSE[:-1])} or empty (off), got {value!r}.")
    return word in _TRUE


def _disabled(value: str | None) -> set[str]:
    names = _names(value) or set()
    if CORE_PLUGIN in names:
        raise UsageError(f"`GMHF_DISABLE_PLUGINS` names `{CORE_PLUGIN}`, which cannot be disabled: every "
                         f"domain needs its statements and distributions; remove it from {value!r}.")
    return names


def _entry_point_name(host: PluginHost, ep: metadata.EntryPoint, dist: str | None) -> str:
    """The entry point's name, or `name@distribution` when an earlier distribution took the name."""
    return ep.name if ep.name not in host.plugins else f"{ep.name}@{dist or ep.value}"


def build_host(
    *, extra_plugins: Iterable[ModuleType | object] = (), entry_points: Iterable[metadata.EntryPoint] | None = None,
    env: Mapping[str, str] | None = None,
) -> PluginHost:
    """Build a plugin host: built-ins, then entry points (each on its own), then `extra_plugins`.

    Tests pass `extra_plugins` (plugin objects registered as if installed) and `entry_points`
    (instead of the installed ones) to stay isolated from the environment.
    """
    env = os.environ if env is None else env
    only = _names(env.get("GMHF_LOAD_PLUGINS"))
    disabled = _disabled(env.get("GMHF_DISABLE_PLUGINS"))
    pm = pluggy.PluginManager("gmhf")
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm=pm, plugins={}, strict=_strict(env.get("GMHF_STRICT_PLUGINS")))
    from gmhf import __version__

    for name, module_name in BUILTIN_PLUGINS:
        if name not in disabled:
            _add(host, importlib.import_module(module_name), PluginInfo(name, __version__, "builtin", "gmhf"))
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in sorted(entry_points, key=_load_order):  # a defined order, so who wins a clash is defined
        if ep.name in disabled or (only is not None and ep.name not in only):
            continue
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist else None
        info = PluginInfo(_entry_point_name(host, ep, dist_name), dist.version if dist else None, "entry point",
                          dist_name)
        try:
            plugin = ep.load()
        except Exception as error:  # an import failure costs only this plugin
            host.plugins[info.name] = info
            info.errors.append(f"import of {ep.value!r} failed: {type(error).__name__}: {error}")
            continue
        _add(host, plugin, info)
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        _add(host, plugin, PluginInfo(name, None, "local"))
    return host


def _load_order(ep: metadata.EntryPoint) -> tuple[str, str]:
    """Entry points load by name, then by distribution name (not in sys.path order)."""
    dist = getattr(ep, "dist", None)
    return ep.name, (dist.metadata["Name"] or "").lower() if dist else ""


def _add(host: PluginHost, plugin: object, info: PluginInfo) -> None:
    host.plugins[info.name] = info
    info.module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    try:
        host.pm.register(plugin, name=info.name)
        host.pm.check_pending()
    except Exception as error:  # misspelt hook names, bad signatures
        info.errors.append(f"rejected by the plugin manager: {error}")
        with contextlib.suppress(Exception):
            host.pm.unregister(name=info.name)


class _Holder:
    host: PluginHost | None = None


def blame_plugin(error: BaseException) -> PluginInfo | None:
    """The third-party plugin of the process-wide host whose code raised `error`, if any."""
    from gmhf.plugins.blame import blame

    return None if _Holder.host is None else blame(error, _Holder.host.plugins)


def plugin_host() -> PluginHost:
    """The process-wide plugin host, built on first use from the installed plugins."""
    if _Holder.host is None:
        _Holder.host = build_host()
    return _Holder.host


@contextlib.contextmanager
def using_plugins(*plugins: ModuleType | object, entry_points: Iterable[metadata.EntryPoint] = (),
                  env: Mapping[str, str] | None = None) -> Iterator[PluginHost]:
    """Temporarily replace the process-wide host by one with only built-ins and `plugins`.

    For tests and notebooks: installed entry points are ignored unless given in `entry_points`.
    """
    previous = _Holder.host
    _Holder.host = build_host(extra_plugins=plugins, entry_points=entry_points, env=env or {})
    try:
        yield _Holder.host
    finally:
        _Holder.host = previous
