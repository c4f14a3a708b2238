"""The `gmhf` command line: a thin shell over the Python API.

The group knows its built-in commands by name only (`COMMANDS`, "module:attribute") and imports a
command's module when that command runs, so `gmhf --help` and `gmhf check` stay fast and
torch-free however many families of verbs join; one module per family (`spec`, `explain`,
`domains` with `view`, `train`, `run`; `sweep`, `serve` and `report` to come). Plugins add commands through
`gmhf_commands`. Commands that sample import torch inside their body and default to one torch
thread (`GMHF_THREADS` overrides). Exit codes are `gmhf.ExitCode`.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Any, TextIO

import click

from gmhf.errors import EXIT_CODES_EPILOG as EPILOG
from gmhf.errors import ExitCode, GmhfError, GmhfWarning, PluginError, UsageError

#: Built-in commands: name -> "module:attribute" of the click command, imported on first use.
COMMANDS: dict[str, str] = {
    "check": "gmhf.cli.spec:check",
    "domains": "gmhf.cli.domains:domains",
    "explain": "gmhf.cli.explain:explain",
    "fmt": "gmhf.cli.spec:fmt",
    "plugins": "gmhf.cli.spec:plugins",
    "report": "gmhf.cli.report:report",
    "run": "gmhf.cli.run:run",
    "sample": "gmhf.cli.spec:sample",
    "sweep": "gmhf.cli.sweep:sweep",
    "train": "gmhf.cli.train:train",
    "view": "gmhf.cli.domains:view",
}

#: The first sentence of each built-in command's help, which `gmhf --help` lists without importing
#: the command's module (tests/test_cli.py checks they match the commands).
SUMMARIES: dict[str, str] = {
    "check": "Check SPECS for mistakes; exit 1 if any has one.",
    "domains": "List the installed domains, or show one: its factors, observables and benchmark truth.",
    "explain": "Show, per factor, the source distribution next to the believed target.",
    "fmt": "Rewrite SPECS in the canonical format (`-` reads stdin, writes stdout).",
    "plugins": "List plugins: version, origin, what each registers, and any load error.",
    "report": "Write DIRECTORY/report.html, results.md and plots/ for a sweep or run directory.",
    "run": "Steer SPEC with expert feedback, meta-train on the result, and report its deployment loss.",
    "sample": "Draw N environments from the believed target distribution of SPEC.",
    "sweep": "Compare every method over reliabilities and seeds on SPEC; write results.json and the report.",
    "train": "Meta-train a learner on environments drawn from SPEC; report its deployment loss.",
    "view": "Draw N environments from SPEC, simulate them, and write each one's picture as a PNG.",
}


def resolve(target: str) -> click.Command:
    """The click command at `target` ("module:attribute"), importing its module."""
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"`{target}` is {command!r}, not a click command.")
    return command


class LazyGroup(click.Group):
    """Built-in commands from `COMMANDS`, resolved on first use, plus those plugins register."""

    def _plugin_commands(self) -> dict[str, click.Command]:
        from gmhf.plugins.manager import plugin_host

        found = {}
        host = plugin_host()
        for command in host.commands():
            if command.name in COMMANDS or command.name in self.commands or command.name in found:
                owner = host.plugins.get(getattr(command, "_gmhf_plugin", ""), None)
                message = f"command `{command.name}` clashes with an existing one; skipped"
                if owner is not None and message not in owner.errors:
                    owner.errors.append(message)
                continue
            found[command.name] = command
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands, *self._plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name in COMMANDS:
            return resolve(COMMANDS[name])
        return self._plugin_commands().get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a built-in's row comes from `SUMMARIES`, so listing imports no command module."""
        plugins = self._plugin_commands()
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in self.commands or name in plugins:
                command = self.commands.get(name) or plugins[name]
            else:  # a stand-in that carries the summary, shortened by click exactly as the real help would be
                command = click.Command(name, help=SUMMARIES[name])
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])


@click.group(cls=LazyGroup, epilog=EPILOG)
@click.version_option(package_name="gmhf", prog_name="gmhf")
def cli() -> None:
    """Turn what you believe about a target environment into samplers and constraints.

    Write a guidance spec (a .guide file), then:

    \b
      gmhf check spec.guide         find mistakes (no torch needed)
      gmhf fmt spec.guide           rewrite it in the one canonical format
      gmhf explain spec.guide       source vs believed target, per factor
      gmhf sample spec.guide -n 5   draw environments from the believed target
      gmhf view spec.guide -n 4     pictures of environments drawn from it
      gmhf train spec.guide         meta-train a model on environments from the spec
      gmhf run spec.guide           steer it with expert feedback, then meta-train (the method)
      gmhf domains                  the installed domains, their factors and benchmark truths
      gmhf plugins                  what is installed and what it registers

    The language is described in docs/language.md.
    """


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None, _default: Any = warnings.showwarning) -> None:
    """gmhf's own warnings as `warning: …` lines on stderr; any other warning as Python shows it."""
    if issubclass(category, GmhfWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _default(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning errors into messages and exit codes."""
    warnings.showwarning = _show_warning
    try:
        # without standalone mode Click *returns* the code of an `Exit` (such as 130 after Ctrl-C)
        returned = cli.main(args=argv, prog_name="gmhf", standalone_mode=False)
        sys.exit(returned if isinstance(returned, int) and not isinstance(returned, bool) else ExitCode.OK)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(ExitCode.USAGE)
    except click.Abort as error:  # Click turns Ctrl-C (and end of input at a prompt) into Abort
        interrupted = isinstance(error.__cause__, KeyboardInterrupt)
        click.echo("interrupted" if interrupted else "Aborted.", err=True)
        sys.exit(ExitCode.INTERRUPTED if interrupted else ExitCode.USAGE)
    except PluginError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(ExitCode.PLUGIN)
    except UsageError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(ExitCode.USAGE)
    except GmhfError as error:  # a SpecError, or a spec whose constraints leave nothing to sample
        spec_error = hasattr(error, "diagnostics")  # SpecError is not imported, to keep --help light
        click.echo(str(error) if spec_error else f"error: {error}", err=True)
        sys.exit(ExitCode.FINDINGS)
    except Exception as error:  # a bug: say whose (gmhf's or a plugin's, with its version), and ask for the input
        from gmhf import __version__
        from gmhf.plugins.manager import blame_plugin

        owner = blame_plugin(error)
        whose = f"plugin {owner.label}" if owner is not None else f"gmhf {__version__}"
        click.echo(f"internal error in {whose}: {type(error).__name__}: {error}\n"
                   f"This is a bug{' in that plugin' if owner is not None else ''}. Please report it with the spec "
                   "and the command that caused it.", err=True)
        if os.environ.get("GMHF_DEBUG"):
            raise
        sys.exit(ExitCode.INTERNAL)
