"""`gmhf check`, `fmt`, `sample`, `plugins`: the commands that read specs and report on them.

`check` and `fmt` import no torch (a test pins this); `sample` imports it inside its body, after
setting the thread count. `explain` has its own module (`gmhf.cli.explain`).
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import click

from gmhf.cli.common import echo_json, set_torch_threads
from gmhf.errors import EXIT_CODES_EPILOG as EPILOG
from gmhf.errors import ExitCode
from gmhf.files import write_atomic


@click.command(epilog=EPILOG)
@click.argument("specs", nargs=-1, required=True, type=click.Path())
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
        if not Path(path).is_file():  # a finding of its own; the other files are still checked
            report.append(_missing_file(path, as_json))
            failed = True
            continue
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
        echo_json({"files": report})
    sys.exit(ExitCode.FINDINGS if failed else ExitCode.OK)


def _missing_file(path: str, as_json: bool) -> dict[str, Any]:
    """`check`'s report for an argument that is not a file (printed unless --json)."""
    from gmhf.dsl.errors import Diagnostic

    what = "a directory, not a spec file" if Path(path).is_dir() else "no such file"
    diagnostic = Diagnostic.at(path, None, f"{what}: {path}")
    if not as_json:
        click.echo(f"{path}: error: {what}", err=True)
    return {"path": path, "ok": False, "diagnostics": [diagnostic.model_dump()]}


@click.command(epilog=EPILOG)
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
                write_atomic(name, formatted)
                click.echo(f"reformatted {name}", err=True)
    sys.exit(ExitCode.FINDINGS if broken or (changed and check_only) else ExitCode.OK)


@click.command(epilog=EPILOG)
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--domain", help="Domain for a spec without a `domain` line.")
@click.option("-n", "count", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many environments to draw.")
@click.option("--seed", type=int, help="Seed for a reproducible draw.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"domain": ..., "samples": [{factor: value, ...}, ...]}.')
def sample(spec: str, domain: str | None, count: int, seed: int | None, as_json: bool) -> None:
    """Draw N environments from the believed target distribution of SPEC.

    When the spec has `expect` statements, each environment's data is generated and those whose
    data violate an expectation (or whose simulation diverged) are replaced; the counts are
    reported (on stderr, or under "expect" with --json).

    \b
    Example:
      gmhf sample examples/specs/sinusoid.guide -n 5 --seed 0 --json
    """
    set_torch_threads()
    import gmhf

    guidance = gmhf.load(Path(spec), domain=domain)
    document: dict[str, Any] = {"domain": guidance.checked.domain}
    if guidance.expects:
        from gmhf.core.environments import draw_from_spec

        environments = draw_from_spec(guidance, count, seed=seed)
        records = environments.theta.to_records()
        document["expect"] = environments.report()
        if not as_json:
            click.echo(f"{document['expect']['checked']} environments were generated to keep {count}", err=True)
            for item in document["expect"]["rejected"]:
                click.echo(f"{item['where']}: expect rejected {item['count']} of "
                           f"{document['expect']['checked']} generated environments", err=True)
            if environments.diverged:
                click.echo(f"{environments.diverged} generated environments diverged and were dropped", err=True)
    else:
        records = guidance.sample(count, seed=seed).to_records()
    if as_json:
        echo_json({**document, "samples": records})
        return
    from gmhf.render import sample_table

    sample_table(records, f"{count} environments from {spec}" + (f" (seed {seed})" if seed is not None else ""))


@click.command(epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="Print the plugin list as one JSON document.")
def plugins(as_json: bool) -> None:
    """List plugins: version, origin, what each registers, and any load error."""
    from gmhf.plugins.manager import plugin_host

    host = plugin_host()
    host.build()  # records registration errors without raising, even in strict mode
    host.commands(strict=False)
    infos = list(host.plugins.values())
    if as_json:
        echo_json({"plugins": [info.to_json() for info in infos]})
    else:
        from gmhf.render import plugins_table

        plugins_table(infos)
    host.raise_if_strict()  # after the list: `main` prints the first failure and exits 4
    sys.exit(ExitCode.OK)
