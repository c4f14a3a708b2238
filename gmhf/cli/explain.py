"""`gmhf explain`: what a spec believes, and what it does in effect; or what several specs believe pooled.

Imports torch inside the command body, after setting the thread count.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from gmhf.cli.common import echo_json, set_torch_threads
from gmhf.errors import EXIT_CODES_EPILOG as EPILOG
from gmhf.errors import ExitCode

if TYPE_CHECKING:
    from gmhf.core.guidance import Guidance


@click.command(epilog=EPILOG)
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as one JSON document.")
@click.option("--data", "with_data", is_flag=True,
              help="Also generate 256 environments and report the share each `expect` rejects.")
@click.option("--domain", help="Domain for specs without a `domain` line.")
def explain(specs: tuple[str, ...], as_json: bool, with_data: bool, domain: str | None) -> None:
    """Show, per factor, the source distribution next to the believed target.

    Also lists which statements touched each factor, which factors the steering agent will refine
    (shifted or given a prior), the joint constraints with their acceptance rates, and the trust;
    then the effective marginals after every `require` and `prefer` (quantiles and a histogram
    from 4,000 fixed-seed draws), each `prefer`'s effect, and warnings for rare constraints. With
    several SPECS (of one domain), shows the belief `gmhf run` starts from: their mixture weighted
    by trust, with each spec's weight and target and the pooled marginals; two SPECS are also
    compared factor by factor, with the overlap of their marginals.

    \b
    Examples:
      gmhf explain examples/specs/sinusoid.guide
      gmhf explain examples/specs/duffing.guide --data
      gmhf explain examples/specs/duffing.guide examples/specs/duffing_vague.guide
    """
    set_torch_threads()
    import gmhf
    from gmhf.core import effects

    guidances = [gmhf.load(Path(path), domain=domain) for path in specs]  # a Path: always a file
    if len(specs) > 1:
        _explain_pooled(specs, guidances, as_json, with_data)
    guidance = guidances[0]
    data = guidance.explain()
    data["effective"] = effects.effective_marginals(guidance)
    data["prefer_effect"] = effects.prefer_effects(guidance)
    if with_data and guidance.expects:
        data["expect_rejection"] = effects.expect_rejections(guidance)
    data["warnings"] = effects.rare_constraints(data, data["prefer_effect"])
    if as_json:
        echo_json(data)
        sys.exit(ExitCode.OK)
    from gmhf.render import explain_tables

    explain_tables(data, specs[0])
    click.echo(_effects_text(data, with_data), nl=False)
    for warning in data["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    sys.exit(ExitCode.OK)


def _number(value: float) -> str:
    return f"{value:.4g}"


def _marginal_lines(effective: list[dict[str, Any]], width: int, columns: tuple[str, ...]) -> list[str]:
    """One line per factor: the level shares, or the `columns` (e.g. quantiles) and a histogram of its range."""
    lines = []
    for f in effective:
        if f["kind"] == "categorical":
            shares = ", ".join(f"{level} {share:.0%}" for level, share in f["levels"].items())
            lines.append(f"  {f['factor']:<{width}}  {shares}")
        else:
            low, high = (_number(v) for v in f["range"])
            values = " | ".join(_number(f[column]) for column in columns)
            lines.append(f"  {f['factor']:<{width}}  {values}  {low} [{f['sparkline']}] {high}")
    return lines


def _effects_text(data: dict[str, Any], with_data: bool) -> str:
    lines = ["", "Effective marginals after require and prefer (4,000 draws, seed 0): 5% | 50% | 95%  histogram"]
    width = max(len(f["factor"]) for f in data["effective"])
    lines += _marginal_lines(data["effective"], width, ("q05", "q50", "q95"))
    for p in data["prefer_effect"]:
        if p["holds_before"] is not None:
            lines.append(f"prefer at {p['where']}: holds in {p['holds_before']:.1%} of draws before weighting, "
                         f"{p['holds_after']:.1%} after")
    report = data.get("expect_rejection")
    if report is not None:
        for e in report["expect"]:
            lines.append(f"expect at {e['where']}: rejects {e['rejection_rate']:.1%} of {e['generated']} "
                         f"generated environments")
        if report["diverged"]:
            lines.append(f"{report['diverged']} of {report['generated']} generated environments diverged")
    elif data["expect"] and not with_data:
        lines.append("(rerun with --data to generate environments and see what each `expect` rejects)")
    return "\n".join(lines) + "\n"


def _compare_text(specs: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    lines = [f"a = {specs[0]}", f"b = {specs[1]}", "factor: a 5% | 50% | 95%  vs  b 5% | 50% | 95%  "
             "overlap (coefficient; 5-95% intervals)"]
    for row in rows:
        a, b = row["a"], row["b"]
        if "levels" in a:
            text = (", ".join(f"{k} {v:.0%}" for k, v in a["levels"].items()) + "  vs  "
                    + ", ".join(f"{k} {v:.0%}" for k, v in b["levels"].items()))
            overlap = f"{row['overlap']:.0%}"
        else:
            text = (f"{_number(a['q05'])} | {_number(a['q50'])} | {_number(a['q95'])}  vs  "
                    f"{_number(b['q05'])} | {_number(b['q50'])} | {_number(b['q95'])}")
            overlap = f"{row['overlap']:.0%}; {row['interval_overlap']:.0%}"
        lines.append(f"  {row['factor']}: {text}  overlap {overlap}")
        if "sparkline" in a:
            lines.append(f"    a [{a['sparkline']}]  b [{b['sparkline']}]")
    return "\n".join(lines) + "\n"


def _explain_pooled(specs: tuple[str, ...], guidances: list[Guidance], as_json: bool, with_data: bool) -> NoReturn:
    from gmhf.core import effects
    from gmhf.core.pooling import PooledBelief

    pooled = PooledBelief(guidances, names=list(specs))
    data: dict[str, Any] = {"specs": list(specs), **pooled.explain()}
    as_guidance = cast("Guidance", pooled)  # effects reads only `space`, `domain`, `expects` and `sample`
    data["effective"] = effects.effective_marginals(as_guidance)
    means = pooled.sample(effects.SAMPLES, seed=0).values.mean(0)  # the same draws as `effective`
    for i, row in enumerate(data["effective"]):
        if row["kind"] != "categorical":
            row["mean"] = float(means[i])
    if with_data and pooled.expects:
        data["expect_rejection"] = effects.expect_rejections(as_guidance)
    data["warnings"] = [warning for g in guidances
                        for warning in effects.rare_constraints(g.explain(), effects.prefer_effects(g))]
    if len(specs) == 2:
        data["compare"] = effects.compare(*guidances)
    if as_json:
        echo_json(data)
        sys.exit(ExitCode.OK)
    click.echo(_pooled_text(data, with_data), nl=False)
    if len(specs) == 2:
        click.echo("\n" + _compare_text(specs, data["compare"]), nl=False)
    for warning in data["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    sys.exit(ExitCode.OK)


def _label(index: int) -> str:
    return chr(ord("a") + index) if index < 26 else f"s{index + 1}"


EFFECTS = {"joint": "rejects", "truncate": "truncates one factor", "prefer": "soft: reweights",
           "expect": "checked on generated data"}


def _pooled_text(data: dict[str, Any], with_data: bool) -> str:
    from gmhf.core.budget import share_text

    weights = data["weights"]
    lines = [f"Pooled belief of {len(weights)} specs (domain {data['domain']}): linear pooling, weights "
             f"proportional to trust; pooled trust {data['trust']:.3g} (weighted mean)"]
    lines += [f"  {_label(i)} = {w['spec']}: weight {w['weight']:.3g}, trust {w['trust']:g}, its joint constraints "
              f"accept {share_text(w['acceptance_rate'])}" for i, w in enumerate(weights)]
    width = max(len(f["factor"]) for f in data["factors"])
    lines += ["", "Believed target per spec; steered = the pool's steering (union of flags, invariant in all):"]
    for f in data["factors"]:
        steered = "never (invariant)" if f["invariant"] else "yes" if f["flagged"] else "no"
        targets = "; ".join(f"{_label(i)}: {t}" for i, t in enumerate(f["targets"]))
        lines.append(f"  {f['factor']:<{width}}  {steered:<17}  {targets}")
    statements = [(i, what, entry) for i, w in enumerate(weights)
                  for what in ("joint", "truncate", "prefer", "expect") for entry in w[what]]
    if statements:
        lines += ["", "Constraints per spec:"]
        lines += [f"  {_label(i)} line {e['where'].rsplit(':', 1)[-1]}: {e['statement']} ({EFFECTS[what]})"
                  for i, what, e in statements]
    lines += [f"expect (pooled): {e['statement']}" for e in data["expect"] if e["where"].startswith("pooled")]
    lines += ["", "Pooled marginals (4,000 mixture draws, seed 0): mean | 5% | 50% | 95%  histogram"]
    lines += _marginal_lines(data["effective"], width, ("mean", "q05", "q50", "q95"))
    report = data.get("expect_rejection")
    if report is not None:
        lines += [f"expect {e['where']}: rejects {e['rejection_rate']:.1%} of {e['generated']} generated "
                  f"environments" for e in report["expect"]]
    elif data["expect"] and not with_data:
        lines.append("(rerun with --data to generate environments and see what the `expect`s reject)")
    return "\n".join(lines) + "\n"
