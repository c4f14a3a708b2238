"""Exceptions and exit codes.

    GmhfError                  base of everything gmhf raises on purpose
     ├── SpecError             a mistake in a spec: one or more path:line:col diagnostics (gmhf.dsl.errors)
     ├── PluginError           a plugin failed to import or raised in a hook (strict mode makes it fatal)
     └── UsageError            a bad argument from a Python caller

    GmhfWarning (UserWarning)  a call that works but is likely not what was meant (slow, rare constraints)
"""

from __future__ import annotations

import enum

__all__ = ["EXIT_CODES_EPILOG", "ExitCode", "GmhfError", "GmhfWarning", "PluginError", "UsageError"]

#: The line every `gmhf` command's --help ends with.
EXIT_CODES_EPILOG = ("Exit codes: 0 ok, 1 findings in the input, 2 usage, 3 internal error, 4 plugin failure "
                     "(strict mode).")


class ExitCode(enum.IntEnum):
    """Exit status of the `gmhf` command."""

    #: Everything went well.
    OK = 0
    #: The input has findings: spec errors, or files `fmt --check` would change.
    FINDINGS = 1
    #: The command line itself was wrong (unknown option, missing argument).
    USAGE = 2
    #: A bug in gmhf or in a plugin; the message names which and asks for the spec.
    INTERNAL = 3
    #: A plugin failed to load or register and `GMHF_STRICT_PLUGINS=1` is set.
    PLUGIN = 4
    #: Interrupted (Ctrl-C); a training run has checkpointed and `--resume` continues it.
    INTERRUPTED = 130


class GmhfError(Exception):
    """Base class for errors gmhf raises on purpose (anything else is a bug)."""


class GmhfWarning(UserWarning):
    """A call that works but is likely not what was meant; the CLI prints it as `warning: …` on stderr."""


class UsageError(GmhfError, ValueError):
    """A Python caller passed a bad argument; the message names it and says what was expected."""


class PluginError(GmhfError):
    """A plugin failed: `plugin` names it and `version` gives its distribution version when known."""

    def __init__(self, message: str, *, plugin: str = "", version: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.version = version
