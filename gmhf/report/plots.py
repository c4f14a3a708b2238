"""The report's figures, each rendered to PNG bytes (matplotlib, Agg: no display needed).

Sweep figures: deployment loss against reliability (absolute, and paired against spec-only), MMD
against round per reliability, answers needed against reliability, the bound's terms against the
measured loss, and each flagged factor's π against the truth. Run figures: π's rounds and factors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gmhf.core.figures import new_figure, render
from gmhf.report.stats import UPPER_BOUND, Row, answers_needed, mean_se, paired

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from gmhf.report.data import FactorSamples

__all__ = ["answers_plot", "bound_plot", "factors_plot", "loss_plot", "mmd_plot", "rounds_plot"]

AGENTS = ("gmhf", "gmhf-reinforce")
#: π's histograms, none of them the truth's green or q_H's orange.
PI_COLOURS = ("tab:blue", "tab:red", "tab:purple", "tab:brown")
COLOURS = {"source-only": "tab:gray", "spec-only": "tab:orange", "domain-randomisation": "tab:brown",
           "oracle": "tab:green", "gmhf": "tab:blue", "gmhf-reinforce": "tab:purple"}


def _baseline_lines(axes: Axes, rows: Sequence[Row], value: str = "loss") -> None:
    for row in rows:
        summary = getattr(row, value)
        if row.reliability is not None or summary is None:
            continue
        colour = COLOURS.get(row.method, "black")
        axes.axhline(summary.mean, color=colour, linestyle="--", linewidth=1, label=row.label)
        if summary.stderr is not None:
            axes.axhspan(summary.mean - summary.stderr, summary.mean + summary.stderr, color=colour, alpha=0.12)


def loss_plot(rows: Sequence[Row], records: Sequence[dict[str, Any]]) -> bytes:
    """Deployment loss (k = K) against reliability per agent, baselines as lines; right: paired vs spec-only."""
    figure = new_figure((10.0, 3.8))
    left, right = figure.subplots(1, 2)
    _baseline_lines(left, rows)
    spec_only = [r for r in records if r["method"] == "spec-only"]
    for agent in AGENTS:
        mine = [row for row in rows if row.method == agent and row.loss is not None]
        if not mine:
            continue
        xs = [row.reliability for row in mine]
        left.errorbar(xs, [row.loss.mean for row in mine], [row.loss.stderr or 0 for row in mine],  # type: ignore[union-attr]
                      marker="o", capsize=3, color=COLOURS[agent], label=agent)
        differences = [paired([r for r in records if r["method"] == agent and r["reliability"] == x], spec_only)
                       for x in xs]
        kept = [(x, d) for x, d in zip(xs, differences, strict=True) if d is not None]
        right.errorbar([x for x, _ in kept], [d.mean for _, d in kept], [d.stderr or 0 for _, d in kept],
                       marker="o", capsize=3, color=COLOURS[agent], label=f"{agent} − spec-only")
    oracle = [r for r in records if r["method"] == UPPER_BOUND]
    if oracle and spec_only and (gap := paired(oracle, spec_only)) is not None:
        right.axhline(gap.mean, color=COLOURS["oracle"], linestyle="--", linewidth=1,
                      label="oracle − spec-only (upper bound)")
    right.axhline(0.0, color="black", linewidth=0.8)
    left.set(xlabel="expert reliability p", ylabel="deployment loss (k = K)", title="mean ± SE over seeds")
    right.set(xlabel="expert reliability p", ylabel="paired difference", title="minus spec-only, same seed")
    for axes in (left, right):
        axes.legend(fontsize=7)
    return render(figure)


def mmd_plot(rounds: dict[float, list[list[dict[str, Any]]]],
             reference: Sequence[dict[str, Any]] = ()) -> bytes:
    """MMD² (generated data vs truth data; and θ vs truth) per round, mean over seeds, one line per reliability.

    `reference`: spec-only's records, drawn as a dashed line: where π starts (q_H) before any answer.
    """
    import matplotlib

    figure = new_figure((10.0, 3.6))
    data_axes, theta_axes = figure.subplots(1, 2)
    for axes, key in ((data_axes, "mmd_data"), (theta_axes, "mmd")):
        start = mean_se(record.get(key) for record in reference)
        if start is not None:
            axes.axhline(start.mean, color=COLOURS["spec-only"], linestyle="--", linewidth=1,
                         label="spec-only (q_H, no answers)")
    cmap = matplotlib.colormaps["viridis"]
    reliabilities = sorted(rounds)
    for index, p in enumerate(reliabilities):
        colour = cmap(index / max(len(reliabilities) - 1, 1))
        for axes, key in ((data_axes, "mmd_data"), (theta_axes, "mmd")):
            curve = _mean_curve(rounds[p], key)
            if curve:
                axes.plot([x + 1 for x, _ in curve], [y for _, y in curve], color=colour, label=f"p={p:g}")
    data_axes.set(xlabel="round", ylabel="MMD² (data)", title="generated data vs truth data")
    theta_axes.set(xlabel="round", ylabel="MMD² (θ, standardised)", title="π vs truth in θ")
    for axes in (data_axes, theta_axes):
        axes.axhline(0.0, color="black", linewidth=0.6)
        axes.legend(fontsize=7)
    return render(figure)


def _mean_curve(runs: list[list[dict[str, Any]]], key: str) -> list[tuple[int, float]]:
    length = min((len(rows) for rows in runs), default=0)
    curve = []
    for index in range(length):
        summary = mean_se(rows[index].get(key) for rows in runs)
        if summary is not None:
            curve.append((index, summary.mean))
    return curve


def answers_plot(rounds: dict[float, list[list[dict[str, Any]]]], budget: int | None) -> bytes:
    """Answers until 90 % of π lies in the truth's support, per reliability (runs that never got there marked)."""
    figure = new_figure((5.5, 3.6))
    axes = figure.subplots()
    for p in sorted(rounds):
        needed = [answers_needed(rows) for rows in rounds[p]]
        reached = [n for n in needed if n is not None]
        if reached:
            summary = mean_se(reached)
            assert summary is not None
            axes.errorbar([p], [summary.mean], [summary.stderr or 0], marker="o", capsize=3, color="tab:blue")
        if len(reached) < len(needed) and budget is not None:
            axes.scatter([p], [budget], marker="x", color="tab:red")
            axes.annotate(f"{len(needed) - len(reached)}/{len(needed)} never", (p, budget), fontsize=7,
                          textcoords="offset points", xytext=(4, -10))
    if budget is not None:
        axes.axhline(budget, color="tab:red", linestyle=":", linewidth=1, label=f"budget ({budget} answers)")
        axes.legend(fontsize=7)
    axes.set(xlabel="expert reliability p", ylabel="answers", title="answers until 90 % of π in the truth's support")
    return render(figure)


def bound_plot(records: Sequence[dict[str, Any]]) -> bytes:
    """The bound's terms (train, shift, slack; clipped loss) stacked per reliability, measured loss as dots."""
    figure = new_figure((6.0, 3.6))
    axes = figure.subplots()
    reliabilities = sorted({r["reliability"] for r in records if r.get("bound")})
    bottom = [0.0] * len(reliabilities)
    for term, colour in (("train_term", "tab:blue"), ("shift_term", "tab:orange"), ("slack", "tab:gray")):
        heights = [_bound_mean(records, p, term) for p in reliabilities]
        axes.bar([str(p) for p in reliabilities], heights, bottom=bottom, color=colour, label=term.replace("_", " "))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.scatter([str(p) for p in reliabilities], [_bound_mean(records, p, "measured") for p in reliabilities],
                 color="black", zorder=3, label="measured (clipped)")
    axes.set(xlabel="expert reliability p", ylabel="loss", title="deployment bound vs measured (gmhf)")
    axes.legend(fontsize=7)
    return render(figure)


def _bound_mean(records: Sequence[dict[str, Any]], p: float, term: str) -> float:
    summary = mean_se(r["bound"].get(term) for r in records if r.get("bound") and r["reliability"] == p)
    return 0.0 if summary is None else summary.mean


def factors_plot(samples: dict[str, FactorSamples], reference: FactorSamples) -> bytes:
    """Each flagged factor: the truth, q_H and π of each labelled run (histograms on one axis)."""
    factors = reference.flagged or reference.names
    figure = new_figure((4.0 * len(factors), 3.2))
    axes_list = figure.subplots(1, len(factors), squeeze=False)[0]
    for axes, name in zip(axes_list, factors, strict=True):
        column = reference.names.index(name)
        if reference.truth is not None:
            axes.hist(reference.truth[:, column].numpy(), bins=40, density=True, color="tab:green", alpha=0.35,
                      label="truth")
        axes.hist(reference.spec[:, column].numpy(), bins=40, density=True, histtype="step", color="tab:orange",
                  linestyle="--", label="q_H (spec)")
        for (label, found), colour in zip(samples.items(), PI_COLOURS, strict=False):
            axes.hist(found.pi[:, column].numpy(), bins=40, density=True, histtype="step", linewidth=1.5,
                      color=colour, label=label)
        axes.set(xlabel=name, ylabel="density")
        axes.legend(fontsize=7)
    return render(figure)


def rounds_plot(rows: Sequence[dict[str, Any]]) -> bytes:
    """One run: the share of π in the truth's support and the MMDs, per round."""
    figure = new_figure((10.0, 3.4))
    left, right = figure.subplots(1, 2)
    xs = [row["round"] + 1 for row in rows]

    def values(key: str) -> list[float]:
        return [math.nan if row.get(key) is None else float(row[key]) for row in rows]

    left.plot(xs, values("in_support"), marker=".", color="tab:blue")
    left.set(xlabel="round", ylabel="share of π in the truth's support", ylim=(-0.02, 1.02))
    for key, label in (("mmd", "θ (standardised)"), ("mmd_data", "generated data")):
        right.plot(xs, values(key), marker=".", label=label)
    right.axhline(0.0, color="black", linewidth=0.6)
    right.set(xlabel="round", ylabel="MMD² to the truth")
    right.legend(fontsize=7)
    return render(figure)
