"""`gmhf domains` and `gmhf view`: what the installed domains are, and what a spec's environments look like.

`domains` imports no torch (a test pins this): domains are loaded torch-free and their truth specs
are text files. `view` samples and simulates, so it imports torch inside its body.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gmhf.cli.common import echo_json, set_torch_threads
from gmhf.errors import EXIT_CODES_EPILOG as EPILOG
from gmhf.errors import ExitCode, UsageError
from gmhf.files import write_atomic

if TYPE_CHECKING:
    from gmhf.core.domain import Domain


def summary(domain: Domain) -> dict[str, Any]:
    """One row of `gmhf domains`: name, description, factor count, whether it has a benchmark truth."""
    return {"name": domain.name, "description": domain.description, "factors": len(domain.space),
            "truth": domain.truth_spec() is not None}


def details(domain: Domain) -> dict[str, Any]:
    """Everything `gmhf domains NAME` shows: factors, observables and the benchmark truth text."""
    factors = [{"name": f.name, "kind": f.kind, "bounds": f.bounds_text(),
                "low": None if f.kind == "categorical" else f.low,
                "high": None if f.kind == "categorical" else f.high,
                "levels": list(f.levels), "source": str(f.source), "unit": f.unit, "description": f.description}
               for f in domain.space]
    observables = [{"name": o.name, "shape": o.shape, "description": o.description}
                   for o in domain.space.observables]
    return {"name": domain.name, "description": domain.description, "factors": factors,
            "observables": observables, "truth": domain.truth_spec()}


def find_domain(installed: dict[str, Domain], name: str) -> Domain:
    """The installed domain `name`, or a `UsageError` with "did you mean" and the installed names."""
    if name in installed:
        return installed[name]
    close = difflib.get_close_matches(name, list(installed), n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    raise UsageError(f"no domain called `{name}`.{hint} Installed: {', '.join(sorted(installed)) or 'none'}.")


@click.command(epilog=EPILOG)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the domains (or the one domain) as one JSON document.")
def domains(name: str | None, as_json: bool) -> None:
    """List the installed domains, or show one: its factors, observables and benchmark truth.

    Without NAME: each domain's name, description, number of factors and whether it ships a
    benchmark truth spec. With NAME: each factor's kind, physical bounds, source distribution, unit
    and description, the observables `expect` statements may name, and the truth spec's text.

    \b
    Examples:
      gmhf domains
      gmhf domains duffing --json
    """
    from gmhf.plugins.manager import plugin_host

    installed = dict(plugin_host().registry.domains)
    if name is None:
        rows = [summary(installed[key]) for key in sorted(installed)]
        if as_json:
            echo_json({"domains": rows})
        else:
            for row in rows:
                truth = "benchmark truth" if row["truth"] else "no benchmark truth"
                click.echo(f"{row['name']}: {row['factors']} factors, {truth}\n  {row['description']}")
        sys.exit(ExitCode.OK)
    info = details(find_domain(installed, name))
    if as_json:
        echo_json(info)
    else:
        click.echo(_details_text(info), nl=False)
    sys.exit(ExitCode.OK)


def _details_text(info: dict[str, Any]) -> str:
    lines = [f"{info['name']}: {info['description']}", "", "factors:"]
    for f in info["factors"]:
        unit = f" [{f['unit']}]" if f["unit"] else ""
        lines.append(f"  {f['name']} ({f['kind']}) {f['bounds']}{unit}, source {f['source']}"
                     + (f" — {f['description']}" if f["description"] else ""))
    lines += ["", "observables:"]
    lines += [f"  {o['name']} ({o['shape']})" + (f" — {o['description']}" if o["description"] else "")
              for o in info["observables"]] or ["  none"]
    lines += ["", "benchmark truth:"]
    truth = info["truth"]
    lines += ["  " + line if line else "" for line in truth.rstrip("\n").split("\n")] if truth else ["  none"]
    return "\n".join(lines) + "\n"


@click.command(epilog=EPILOG)
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("-n", "count", type=click.IntRange(min=1, max=1000), default=4, show_default=True,
              help="How many environments to draw and picture.")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Folder for the PNGs [default: views/<spec stem>/].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the draw and the simulation.")
@click.option("--domain", help="Domain for a spec without a `domain` line.")
@click.option("--json", "as_json", is_flag=True, help='Print {"domain": ..., "views": [{"path": ..., "theta": ...}]}.')
def view(spec: str, count: int, out: str | None, seed: int, domain: str | None, as_json: bool) -> None:
    """Draw N environments from SPEC, simulate them, and write each one's picture as a PNG.

    The pictures are the domain's own `view` (what an expert of the domain would recognise), so
    you can see what a spec means before any feedback loop. Each file's path is printed.

    \b
    Example:
      gmhf view examples/specs/sinusoid.guide -n 4 --out views/
    """
    set_torch_threads()

    import gmhf
    from gmhf.core.generator import SimulatorGenerator
    from gmhf.core.seeding import named_stream

    guidance = gmhf.load(Path(spec), domain=domain)  # a Path: always a file
    theta = guidance.sample(count, seed=seed)
    stream = named_stream("gmhf-view", seed)  # the data's noise: any int seed, apart from θ's stream
    data = SimulatorGenerator(guidance.domain).generate(theta.values, generator=stream)
    folder = Path(out) if out is not None else Path("views") / Path(spec).stem
    folder.mkdir(parents=True, exist_ok=True)
    views = []
    for index, record in enumerate(theta.to_records()):
        path = folder / f"{Path(spec).stem}-{index}.png"
        write_atomic(path, guidance.domain.view(theta.values, data, index))
        views.append({"path": str(path), "theta": record})
        if not as_json:
            click.echo(str(path))
    if as_json:
        echo_json({"domain": guidance.domain.name, "views": views})
    sys.exit(ExitCode.OK)
