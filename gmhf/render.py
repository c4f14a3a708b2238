"""Rich tables for the command line (imported only by commands that print them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from gmhf.plugins.manager import PluginInfo

__all__ = ["deployment_table", "explain_tables", "plugins_table", "sample_table"]


def _console() -> Console:
    console = Console(soft_wrap=False)
    return console if console.is_terminal else Console(soft_wrap=False, width=120)


def explain_tables(data: dict[str, Any], title: str) -> None:
    """Per-factor source vs target, then the joint constraints."""
    console = _console()
    table = Table(title=f"{title} (domain {data['domain']}, trust {data['trust']:g})", title_justify="left")
    for column in ("factor", "bounds", "source", "believed target", "steered", "statements"):
        table.add_column(column)
    for f in data["factors"]:
        steered = "never (invariant)" if f["invariant"] else "yes" if f["flagged"] else "no"
        table.add_row(f["factor"], f["bounds"], f["source"], f["target"], steered,
                      ", ".join(w.rsplit(":", 1)[-1] for w in f["statements"]) and
                      "line " + ", ".join(w.rsplit(":", 1)[-1] for w in f["statements"]))
    console.print(table)
    from gmhf.core.budget import share_text

    rows = [(j["statement"], j["where"].rsplit(":", 1)[-1], f"{share_text(j['accepted'])} of probe draws accepted")
            for j in data["joint"]]
    rows += [(t["statement"], t["where"].rsplit(":", 1)[-1], "truncates one factor (exact)")
             for t in data.get("truncate", [])]
    rows += [(p["statement"], p["where"].rsplit(":", 1)[-1], "soft: reweights") for p in data["prefer"]]
    rows += [(e["statement"], e["where"].rsplit(":", 1)[-1], "checked on generated data") for e in data["expect"]]
    if rows:
        joint = Table(title="Joint constraints", title_justify="left")
        for column in ("statement", "line", "effect"):
            joint.add_column(column)
        for row in rows:
            joint.add_row(*row)
        console.print(joint)
    console.print(f"Overall acceptance of joint constraints: {share_text(data['acceptance_rate'])}")


def sample_table(records: Sequence[dict[str, Any]], title: str) -> None:
    """One row per environment."""
    table = Table(title=title, title_justify="left")
    names = list(records[0]) if records else []
    for name in names:
        table.add_column(name, justify="right")
    for record in records:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in record.values()))
    _console().print(table)


def plugins_table(infos: Sequence[PluginInfo]) -> None:
    """One row per plugin, with its registrations and errors."""
    table = Table(title="gmhf plugins", title_justify="left")
    for column in ("plugin", "version", "origin", "registers", "errors"):
        table.add_column(column)
    for info in infos:
        registers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.registers.items())
        table.add_row(info.name, info.version or "?", info.origin, registers,
                      "\n".join(info.errors) if info.errors else "")
    _console().print(table)


def deployment_table(methods: dict[str, dict[str, float]], paired: dict[str, dict[str, float]], title: str) -> None:
    """Deployment loss per method (k = 0 and k = K), and each method's paired difference from gmhf."""
    console = _console()
    table = Table(title=title, title_justify="left")
    keys = list(next(iter(methods.values()))) if methods else []
    for column in ("method", *keys, "minus gmhf (paired, ± SE)"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, losses in methods.items():
        pair = paired.get(name)
        difference = "" if pair is None else f"{pair['minus_gmhf']:+.4g} ± {pair['stderr']:.2g}"
        label = f"{name} (upper bound)" if name == "oracle" else name
        table.add_row(label, *(f"{losses[k]:.4g}" for k in keys), difference)
    console.print(table)
