"""The plugin API of gmhf: every hook a plugin may implement, and how it is called.

A plugin is a module (or object) with functions decorated by `gmhf.hookimpl`, named after the hooks
below, and published under the entry-point group `gmhf`:

    [project.entry-points.gmhf]
    my_plugin = "my_package.gmhf_plugin"

All hooks are *register-style*: gmhf calls `gmhf_x(register)` once per plugin when the registry is
built, and the plugin calls `register(...)` for each thing it adds. Each plugin's hook runs on its
own: if it raises, or registers something invalid, the failure is recorded against that plugin (with
its distribution name and version; `gmhf plugins` shows it) and the other plugins keep working.
`GMHF_STRICT_PLUGINS=1` turns any such failure into exit code 4. A name registered twice keeps the
first registration; the second is reported as a failure of the plugin that made it.

gmhf's own statements, distributions, functions and domains come through these same hooks
(`gmhf/plugins/builtin.py`, `gmhf/domains/sinusoid.py`), and are the best worked examples.
Importing this module imports neither torch nor any domain.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("gmhf")
hookimpl = pluggy.HookimplMarker("gmhf")


# ---------------------------------------------------------------------------------- the language


@hookspec
def gmhf_statements(register: Callable[..., None]) -> None:
    """Register statement keywords and the constraint classes that compile them.

    Called once per plugin when the registry is built, before any spec is parsed.

    :param register: ``register(constraint, *, keyword=None, syntax=None, description="")``.
        ``constraint`` is a ``gmhf.Constraint`` subclass, or a ``"module:Class"`` string imported
        on first use (then ``keyword`` is required). ``keyword`` defaults to the class's
        ``keyword`` attribute, ``syntax`` to its ``syntax``: a Lark expansion for the arguments
        after the keyword, over the grammar's rules and terminals (``expr``, ``sum``, ``NAME``,
        ``NUMBER``, ``STRING``) and quoted words (``"within"``). The parser gains the keyword
        without any edit of the grammar file; quoted words become reserved.

    The class declares its ``role``: ``"hard"`` (the default; rejects by ``accepts``), ``"soft"``
    (reweights by ``log_weight`` under ``max_log_weight()``), ``"data"`` (a condition on generated
    data) or ``"support"`` (enforced by the factor marginals, as the built-in factor statements).
    Sampling and ``gmhf explain`` go by the role alone; an older ``hard = False`` means ``"soft"``.

    A keyword that is already registered, or whose syntax does not build into the grammar, or
    whose quoted words (or keyword) are names specs already use (a factor, level or observable of
    a registered domain, a domain, distribution or function), is reported against this plugin and
    left out. The class's ``from_statement(located, context)`` checks the arguments and raises
    ``SpecError`` at the statement's span.

    Example::

        @gmhf.hookimpl
        def gmhf_statements(register):
            register(Near)   # class Near(gmhf.Constraint): keyword = "near"; syntax = 'NAME "within" sum'
    """


@hookspec
def gmhf_distributions(register: Callable[..., None]) -> None:
    """Register distributions usable in ``prior F ~ name(...)`` and as factor sources.

    Called once per plugin when the registry is built.

    :param register: ``register(kind)`` with a ``gmhf.DistributionKind``: ``name``, ``params``
        (parameter names, for arity errors), ``factory`` (``args -> Distribution1D``, or a
        ``"module:function"`` string so that checking a spec stays torch-free), ``validate``
        (``args -> message | None``: out-of-range parameters, reported at the call), ``support``
        (``args -> (low, high)``, used for static checks), ``named`` (takes ``level: weight``
        arguments, as ``choice``).

    The factory's object needs ``sample(n, generator) -> [n]``, ``log_prob(x) -> [n]`` and the
    attributes ``low``/``high``; ``cdf``/``icdf`` make truncation exact instead of by rejection.
    A duplicate name is reported against this plugin.

    Example::

        @gmhf.hookimpl
        def gmhf_distributions(register):
            register(gmhf.DistributionKind(
                name="triangular", params=("low", "mode", "high"), factory="my_plugin:triangular",
                validate=lambda a: None if a[0] <= a[1] <= a[2] else "needs low <= mode <= high",
                support=lambda a: (a[0], a[2])))
    """


@hookspec
def gmhf_functions(register: Callable[..., None]) -> None:
    """Register functions callable in expressions (``require``, ``prefer``, ``expect``).

    Called once per plugin when the registry is built.

    :param register: ``register(kind)`` with a ``gmhf.FunctionKind``: ``name``, ``min_args``,
        ``max_args``, ``torch`` (the batched implementation on tensors, or ``"module:function"``),
        ``interval`` (optional, torch-free: argument intervals -> result interval, which lets
        ``check`` prove a ``require`` impossible), ``reduces`` (one argument reduces an array,
        several compare elementwise, as ``max``).

    A wrong argument count in a spec is reported at the call. A duplicate name is reported against
    this plugin.

    Example::

        @gmhf.hookimpl
        def gmhf_functions(register):
            register(gmhf.FunctionKind(name="sq", min_args=1, max_args=1,
                                       torch=lambda x: x * x,
                                       interval=lambda x: (0.0 if x[0] <= 0 <= x[1] else
                                                           min(x[0]**2, x[1]**2), max(x[0]**2, x[1]**2))))
    """


# ----------------------------------------------------------------------------- domains and data


@hookspec
def gmhf_domains(register: Callable[..., None]) -> None:
    """Register domains: factor spaces with a simulator, named by ``domain NAME`` in specs.

    Called once per plugin when the registry is built (so also by ``gmhf check``: keep torch
    imports inside the domain's methods).

    :param register: ``register(domain)`` with an instance of a ``gmhf.Domain`` subclass; its
        ``name`` is the name specs use and its ``space`` a ``gmhf.FactorSpace``.

    A duplicate name is reported against this plugin, and the first registration stays.

    Example::

        @gmhf.hookimpl
        def gmhf_domains(register):
            register(PendulumDomain())
    """


# ------------------------------------------------------------------------------------- learning


@hookspec
def gmhf_learners(register: Callable[..., None]) -> None:
    """Register meta-learners by name (the MAML family and others).

    Called once per plugin when the registry is built. The built-ins (``maml``, ``fomaml``,
    ``anil``, ``reptile``, ``protonet``) come through this hook too.

    :param register: ``register(name, learner)`` where ``learner`` is a
        :class:`gmhf.core.learners.MetaLearner` subclass or a ``"module:Class"`` string imported on
        first use. The class is called as ``learner(model, **options)``; see docs/learners.md for
        what it must provide.

    A duplicate name is reported against this plugin.

    Example::

        @gmhf.hookimpl
        def gmhf_learners(register):
            register("my-maml", "my_plugin.learners:MyMAML")
    """


@hookspec
def gmhf_experts(register: Callable[..., None]) -> None:
    """Register experts: who judges generated samples (simulated, terminal, web …).

    Called once per plugin when the registry is built. No built-in registers one yet.

    :param register: ``register(name, expert)`` where ``expert`` is a class or a
        ``"module:Class"`` string imported on first use.

    A duplicate name is reported against this plugin.

    Example::

        @gmhf.hookimpl
        def gmhf_experts(register):
            register("slack", "my_plugin.experts:SlackExpert")
    """


# ------------------------------------------------------------------------------------------ CLI


@hookspec
def gmhf_commands(register: Callable[..., None]) -> None:
    """Register extra ``gmhf`` subcommands.

    Called when the command line starts, once per plugin.

    :param register: ``register(command)`` with a ``click.Command``; it becomes ``gmhf NAME``.
        Keep heavy imports inside the command's body so ``gmhf --help`` stays fast.

    A name that clashes with a built-in command or another plugin's is reported against this
    plugin and skipped.

    Example::

        @gmhf.hookimpl
        def gmhf_commands(register):
            @click.command()
            def hello():
                "Say hello."
                click.echo("hello")
            register(hello)
    """


#: The hooks that fill the registry, in the order the host calls them (statements before the domains using them).
REGISTRY_HOOKS: tuple[str, ...] = (
    "gmhf_statements", "gmhf_distributions", "gmhf_functions", "gmhf_domains", "gmhf_learners", "gmhf_experts",
)
#: Hook names in documentation order.
HOOKS: tuple[str, ...] = (*REGISTRY_HOOKS, "gmhf_commands")
