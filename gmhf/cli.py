"""The `gmhf` command line: a thin shell over the Python API.

`gmhf --help`, `check` and `fmt` import no torch; commands that sample import it inside their body
and default to one torch thread (`GMHF_THREADS` overrides). Exit codes are `gmhf.ExitCode`.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from gmhf.errors import EXIT_CODES_EPILOG as EPILOG
from gmhf.errors import ExitCode, GmhfError, PluginError, UsageError


class _Group(click.Group):
    """Built-in commands plus those plugins register through `gmhf_commands`."""

    def _plugin_commands(self) -> dict[str, click.Command]:
        from gmhf.plugins.manager import plugin_host

        found = {}
        host = plugin_host()
        for command in host.commands():
            if command.name in self.commands or command.name in found:
                owner = host.plugins.get(getattr(command, "_gmhf_plugin", ""), None)
                message = f"command `{command.name}` clashes with an existing one; skipped"
                if owner is not None and message not in owner.errors:
                    owner.errors.append(message)
                continue
            found[command.name] = command
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*self.commands, *self._plugin_commands()])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands.get(name) or self._plugin_commands().get(name)


@click.group(cls=_Group, epilog=EPILOG)
@click.version_option(package_name="gmhf", prog_name="gmhf")
def cli() -> None:
    """Turn what you believe about a target environment into samplers and constraints.

    Write a guidance spec (a .guide file), then:

    \b
      gmhf check spec.guide         find mistakes (no torch needed)
      gmhf fmt spec.guide           rewrite it in the one canonical format
      gmhf explain spec.guide       source vs believed target, per factor
      gmhf sample spec.guide -n 5   draw environments from the believed target
      gmhf train spec.guide         meta-train a model on environments from the spec
      gmhf plugins                  what is installed and what it registers

    The language is described in docs/language.md.
    """


def _threads() -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("GMHF_THREADS", "1")))


def _echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


@cli.command(epilog=EPILOG)
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as one JSON document.")
@click.option("--domain", help="Domain for specs without a `domain` line.")
def check(specs: tuple[str, ...], as_json: bool, domain: str | None) -> None:
    """Check SPECS for mistakes; exit 1 if any has one.

    Syntax and meaning are both checked: unknown names (with "did you mean"), empty or
    out-of-bounds supports, conflicting statements, and `require`s that interval arithmetic proves
    impossible. Every mistake of a file is reported, as path:line:col.

    \b
    Example:
      gmhf check examples/specs/*.guide
    """
    from gmhf.api import check_text
    from gmhf.dsl.errors import SpecError

    report, failed = [], False
    for path in specs:
        text = Path(path).read_text(encoding="utf-8")
        try:
            check_text(text, path=path, domain=domain)
            diagnostics: list[Any] = []
        except SpecError as error:
            diagnostics, failed = list(error.diagnostics), True
            if not as_json:
                click.echo(str(error), err=True)
        report.append({"path": path, "ok": not diagnostics,
                       "diagnostics": [d.model_dump() for d in diagnostics]})
        if not as_json and not diagnostics:
            click.echo(f"{path}: ok")
    if as_json:
        _echo_json({"files": report})
    sys.exit(ExitCode.FINDINGS if failed else ExitCode.OK)


@cli.command(epilog=EPILOG)
@click.argument("specs", nargs=-1, required=True)
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file would change.")
@click.option("--diff", is_flag=True, help="Print what would change as a unified diff; change nothing.")
def fmt(specs: tuple[str, ...], check_only: bool, diff: bool) -> None:
    """Rewrite SPECS in the canonical format (`-` reads stdin, writes stdout).

    There is one format and no options: one statement a line, single spaces around operators,
    minimal parentheses, comments kept.

    \b
    Examples:
      gmhf fmt spec.guide
      gmhf fmt --check specs/*.guide     (for CI)
      cat spec.guide | gmhf fmt -
    """
    from gmhf.dsl.errors import SpecError
    from gmhf.dsl.format import format_spec
    from gmhf.dsl.parse import parse
    from gmhf.plugins.manager import plugin_host

    extensions = plugin_host().registry.extensions()
    changed = broken = False
    for name in specs:
        if name != "-" and not Path(name).is_file():
            raise click.BadParameter(f"no such file: {name}", param_hint="SPECS")
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        try:
            formatted = format_spec(parse(text, path="<stdin>" if name == "-" else name, extensions=extensions))
        except SpecError as error:
            click.echo(str(error), err=True)
            broken = True
            continue
        if formatted == text:
            if name == "-" and not (check_only or diff):
                click.echo(formatted, nl=False)
            continue
        changed = True
        if diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(True), formatted.splitlines(True),
                                                    f"{name} (original)", f"{name} (formatted)")), nl=False)
        if check_only:
            click.echo(f"would reformat {name}", err=True)
        elif not diff:
            if name == "-":
                click.echo(formatted, nl=False)
            else:
                _write_atomic(Path(name), formatted)
                click.echo(f"reformatted {name}", err=True)
    sys.exit(ExitCode.FINDINGS if broken or (changed and check_only) else ExitCode.OK)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


@cli.command(epilog=EPILOG)
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as one JSON document.")
def explain(spec: str, as_json: bool) -> None:
    """Show, per factor, the source distribution next to the believed target.

    Also lists which statements touched each factor, which factors the steering agent will refine
    (shifted or given a prior), the joint constraints with their acceptance rates, and the trust.

    \b
    Example:
      gmhf explain examples/specs/sinusoid.guide
    """
    _threads()
    import gmhf

    data = gmhf.load(spec).explain()
    if as_json:
        _echo_json(data)
        return
    from gmhf.render import explain_tables

    explain_tables(data, spec)


@cli.command(epilog=EPILOG)
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("-n", "count", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many environments to draw.")
@click.option("--seed", type=int, help="Seed for a reproducible draw.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"domain": ..., "samples": [{factor: value, ...}, ...]}.')
def sample(spec: str, count: int, seed: int | None, as_json: bool) -> None:
    """Draw N environments from the believed target distribution of SPEC.

    When the spec has `expect` statements, each environment's data is generated and those whose
    data violate an expectation (or whose simulation diverged) are replaced; the counts are
    reported (on stderr, or under "expect" with --json).

    \b
    Example:
      gmhf sample examples/specs/sinusoid.guide -n 5 --seed 0 --json
    """
    _threads()
    import gmhf

    guidance = gmhf.load(spec)
    document: dict[str, Any] = {"domain": guidance.checked.domain}
    if guidance.expects:
        from gmhf.core.environments import generate

        environments = generate(guidance, count, seed=seed)
        records = environments.theta.to_records()
        document["expect"] = environments.report()
        if not as_json:
            for item in document["expect"]["rejected"]:
                click.echo(f"{item['where']}: expect rejected {item['count']} of "
                           f"{document['expect']['checked']} generated environments", err=True)
            if environments.diverged:
                click.echo(f"{environments.diverged} generated environments diverged and were dropped", err=True)
    else:
        records = guidance.sample(count, seed=seed).to_records()
    if as_json:
        _echo_json({**document, "samples": records})
        return
    from gmhf.render import sample_table

    sample_table(records, f"{count} environments from {spec}" + (f" (seed {seed})" if seed is not None else ""))


@cli.command(epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="Print the plugin list as one JSON document.")
def plugins(as_json: bool) -> None:
    """List plugins: version, origin, what each registers, and any load error."""
    from gmhf.plugins.manager import plugin_host

    host = plugin_host()
    host.build()  # records registration errors without raising, even in strict mode
    host.commands(strict=False)
    infos = list(host.plugins.values())
    if as_json:
        _echo_json({"plugins": [info.to_json() for info in infos]})
    else:
        from gmhf.render import plugins_table

        plugins_table(infos)
    failed = any(info.errors for info in infos)
    sys.exit(ExitCode.PLUGIN if failed and host.strict else ExitCode.OK)


def _add_commands() -> None:
    from gmhf.cli_train import train

    cli.add_command(train)


_add_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning errors into messages and exit codes."""
    try:
        cli.main(args=argv, prog_name="gmhf", standalone_mode=False)
        sys.exit(ExitCode.OK)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(ExitCode.USAGE)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(ExitCode.USAGE)
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
    except Exception as error:  # a bug: say whose, and ask for the input
        from gmhf import __version__

        click.echo(f"internal error in gmhf {__version__}: {type(error).__name__}: {error}\n"
                   "This is a bug. Please report it with the spec and the command that caused it.", err=True)
        if os.environ.get("GMHF_DEBUG"):
            raise
        sys.exit(ExitCode.INTERNAL)
