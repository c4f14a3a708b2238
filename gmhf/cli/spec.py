"""`gmhf check`, `fmt`, `sample`, `plugins`: the commands that read specs and report on them.

`check` and `fmt` import no torch (a test pins this); `sample` imports it inside its body, after
setting the thread count. `explain` has its own module (`gmhf.cli.explain`).
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import Any

import click

from gmhf.cli.common import echo_json, echo_json_stream, set_torch_threads
from gmhf.errors import EXIT_CODES_EPILOG as EPILOG
from gmhf.errors import ExitCode
from gmhf.files import write_atomic

#: How many of `gmhf sample`'s draws have their data generated to count what each `expect` would reject.
EXPECT_CHECKS = 256


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
    from gmhf.dsl.errors import SpecError, render
    from gmhf.dsl.source import read_spec_file

    report, failed = [], False
    for path in specs:
        if not Path(path).is_file():  # a finding of its own; the other files are still checked
            report.append(_missing_file(path, as_json))
            failed = True
            continue
        try:
            text = read_spec_file(path)
            checked = check_text(text, path=path, domain=domain)
            diagnostics: list[Any] = list(checked.warnings)
            ok = True
            if diagnostics and not as_json:
                click.echo(render(diagnostics, checked.sources), err=True)
        except SpecError as error:
            diagnostics, failed, ok = list(error.diagnostics), True, False
            if not as_json:
                click.echo(str(error), err=True)
        report.append({"path": path, "ok": ok, "diagnostics": [d.model_dump() for d in diagnostics]})
        if not as_json and ok:
            click.echo(f"{path}: ok")
    if as_json:
        echo_json({"files": report})
    sys.exit(ExitCode.FINDINGS if failed else ExitCode.OK)


def _missing_file(path: str, as_json: bool) -> dict[str, Any]:
    """`check`'s report for an argument that is not a file (printed unless --json)."""
    from gmhf.dsl.errors import Diagnostic
    from gmhf.dsl.source import not_a_spec_file

    what = not_a_spec_file(path) or "no such file"
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
    texts = _read_for_fmt(specs)
    results = _format_all(texts)  # every argument is read and formatted before any is written
    broken = len(results) < len(texts)
    changed = [name for name, formatted in results.items() if formatted != texts[name]]
    writing = not (check_only or diff)
    locked = [name for name in changed if writing and name != "-" and _read_only(name)]
    if locked:
        raise click.BadParameter(f"{', '.join(locked)}: read-only, so not reformatted; make it writable first "
                                 "(no file was changed)", param_hint="SPECS")
    for name, formatted in results.items():
        text = texts[name]
        if name not in changed:
            if name == "-" and writing:
                click.echo(formatted, nl=False)
        elif diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(True), formatted.splitlines(True),
                                                    f"{name} (original)", f"{name} (formatted)")), nl=False)
        if name in changed and check_only:
            click.echo(f"would reformat {name}", err=True)
        elif name in changed and writing:
            if name == "-":
                click.echo(formatted, nl=False)
            else:
                write_atomic(name, formatted)
                click.echo(f"reformatted {name}", err=True)
    sys.exit(ExitCode.FINDINGS if broken or (changed and check_only) else ExitCode.OK)


def _format_all(texts: dict[str, Any]) -> dict[str, str]:
    """The canonical form of each text that parses; the others' errors are printed."""
    from gmhf.dsl.errors import SpecError
    from gmhf.dsl.format import format_spec
    from gmhf.dsl.parse import parse
    from gmhf.plugins.manager import plugin_host

    extensions = plugin_host().registry.extensions()
    results: dict[str, str] = {}
    for name, text in texts.items():
        try:
            if isinstance(text, SpecError):
                raise text
            results[name] = format_spec(parse(text, path="<stdin>" if name == "-" else name, extensions=extensions))
        except SpecError as error:
            click.echo(str(error), err=True)
    return results


def _read_only(name: str) -> bool:
    # no write bit at all counts too, so that root (whom os.access lets write anything) keeps a 0444 file as is
    return not os.access(name, os.W_OK) or not os.stat(name).st_mode & 0o222


def _read_for_fmt(specs: tuple[str, ...]) -> dict[str, Any]:
    """Each argument's text, or the `SpecError` saying it is not UTF-8; a usage error, before any
    file is written, for a missing one."""
    from gmhf.dsl.errors import SpecError
    from gmhf.dsl.source import decode_spec, not_a_spec_file

    texts: dict[str, Any] = {}
    for name in specs:
        file = Path(name)
        if name != "-" and (what := not_a_spec_file(file)) is not None:
            raise click.BadParameter(f"{name}: {what} (no file was changed)", param_hint="SPECS")
        try:
            data = file.read_bytes() if name != "-" else (
                sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8"))
            texts[name] = decode_spec(data, shown="<stdin>" if name == "-" else name)
        except SpecError as error:
            texts[name] = error
    return texts


@click.command(epilog=EPILOG)
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--domain", help="Domain for a spec without a `domain` line.")
@click.option("-n", "count", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many environments to draw.")
@click.option("--seed", type=int, help="Seed for a reproducible draw.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"domain": ..., "samples": [{factor: value, ...}, ...]}.')
@click.option("--expect", "apply_expects", is_flag=True,
              help="Keep only environments whose generated data meet the spec's `expect`s (as training does).")
def sample(spec: str, domain: str | None, count: int, seed: int | None, as_json: bool, apply_expects: bool) -> None:
    """Draw N environments from the believed target distribution of SPEC.

    Like `Guidance.sample`, the draws come from the belief over factors alone: `expect`s (which
    speak about generated data) are not applied, but the data of up to 256 of the draws is
    generated and how many each `expect` would reject is reported (on stderr, or under "expect"
    with --json). With --expect, environments whose data break an `expect` (or whose simulation
    diverged) are replaced by new draws, as meta-training does.

    \b
    Example:
      gmhf sample examples/specs/sinusoid.guide -n 5 --seed 0 --json
    """
    set_torch_threads()
    import gmhf

    guidance = gmhf.load(Path(spec), domain=domain)
    document: dict[str, Any] = {"domain": guidance.checked.domain}
    if guidance.expects and apply_expects:
        from gmhf.core.environments import draw_from_spec

        environments = draw_from_spec(guidance, count, seed=seed)
        records = environments.theta.records()
    else:
        theta = guidance.sample(count, seed=seed)
        records = theta.records()
        if guidance.expects:
            from gmhf.core.environments import check_expects
            from gmhf.core.theta import Theta

            checked = Theta(theta.values[:EXPECT_CHECKS], theta.names, theta.levels, theta.integers)
            environments = check_expects(guidance, checked, seed=seed)
    if guidance.expects:
        document["expect"] = {"applied": apply_expects, **environments.report()}
        if not as_json:
            _echo_expect_counts(document["expect"], environments.diverged, count)
    if as_json:
        echo_json_stream(document, "samples", records)
        return
    from gmhf.render import sample_table

    sample_table(records, f"{count} environments from {spec}" + (f" (seed {seed})" if seed is not None else ""))


def _echo_expect_counts(report: dict[str, Any], diverged: int, kept: int) -> None:
    applied = report["applied"]
    if applied:
        click.echo(f"{report['checked']} environments were generated to keep {kept}", err=True)
    for item in report["rejected"]:
        click.echo(f"{item['where']}: expect {'rejected' if applied else 'would reject'} {item['count']} of "
                   f"{report['checked']} {'generated' if applied else 'drawn'} environments", err=True)
    if diverged:
        click.echo(f"{diverged} generated environments diverged" + (" and were dropped" if applied else ""), err=True)
    if not applied:
        click.echo("note: these draws ignore `expect`; --expect keeps only environments whose generated data "
                   "meet them (as training does)", err=True)


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
