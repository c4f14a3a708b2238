"""The sections of a sweep's report and of a single run's report, from what `report.data` read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gmhf.report import plots
from gmhf.report.html import Figure, Section, Table
from gmhf.report.stats import UPPER_BOUND, Row, Summary, rows

if TYPE_CHECKING:
    from gmhf.report.data import FactorSamples, RunData, SweepData

__all__ = ["run_sections", "sweep_sections", "sweep_table"]


def _cell(summary: Summary | None, digits: int = 4) -> str:
    return "" if summary is None else summary.text(digits)


def sweep_table(table_rows: list[Row]) -> Table:
    """Deployment loss at k = 0 and k = K, MMD and answers (mean ± SE), paired differences (mean ± SE)."""
    headers = ("method", "p", "seeds", "loss k=0", "loss k=K", "MMD² θ", "answers", "− spec-only (paired)",
               "− oracle (paired)")
    body = tuple((row.method + (" (upper bound)" if row.method == UPPER_BOUND else ""),
                  "" if row.reliability is None else f"{row.reliability:g}", str(row.seeds),
                  _cell(row.loss_k0), _cell(row.loss), _cell(row.mmd, 3), "0" if row.reliability is None else _cell(row.answers, 3),
                  _cell(row.minus_spec_only, 3), _cell(row.minus_oracle, 3)) for row in table_rows)
    return Table(headers, body)


def _records_table(records: list[dict[str, Any]]) -> Table:
    def number(value: Any, digits: int = 4) -> str:
        return "" if value is None else f"{value:.{digits}g}"

    body = tuple((r["method"], "" if r["reliability"] is None else f"{r['reliability']:g}", str(r["seed"]),
                  number(r.get("deployment_loss_k0")), number(r.get("deployment_loss")), number(r.get("mmd"), 3),
                  str(r.get("answers", "")), number(r.get("seconds"), 3)) for r in records)
    return Table(("method", "p", "seed", "loss k=0", "loss k=K", "MMD² θ", "answers", "seconds"), body)


def _settings(data: SweepData) -> list[str]:
    train = data.config.get("train", {})
    seeds = data.config.get("seeds")
    return [f"Spec {train.get('spec')}; truth {train.get('truth')}; generator {train.get('generator', 'sim')}; "
            f"learner {train.get('learner', 'maml')}, {train.get('steps')} meta-steps of {train.get('meta_batch')} "
            f"tasks; {data.config.get('rounds')} feedback rounds of {data.config.get('answers_per_round')} answers; "
            f"reliabilities {', '.join(f'{p:g}' for p in data.config.get('reliabilities', []))}; {seeds} seeds.",
            "Each (method, reliability, seed) is one run. Within a seed every method starts from the same initial "
            "weights and is scored on the same truth tasks, so differences are paired seed by seed: a paired "
            "column is the mean ± standard error over seeds of (this method − the other, same seed). No model "
            "selection uses target data: every run trains a fixed number of steps. The oracle trains on the truth "
            "itself and is an upper bound no real run can reach, not a competitor."]


def _notes(data: SweepData, planned: int | None) -> list[str]:
    notes = []
    if "gmhf-reinforce" not in data.available:
        notes.append("gmhf-reinforce (the paper's policy-gradient agent) is absent: this installation's `gmhf run` "
                     "offers no `reinforce` agent, so the sweep could not run it.")
    elif "gmhf-reinforce" not in data.methods:
        notes.append("gmhf-reinforce (the paper's policy-gradient agent) was not among the methods chosen.")
    if planned is not None and len(data.records) < planned:
        notes.append(f"{len(data.records)} of {planned} runs are finished; rerun the same `gmhf sweep` command to "
                     f"finish the rest.")
    return notes


def _by_reliability(data: SweepData, agent: str) -> dict[float, list[list[dict[str, Any]]]]:
    grouped: dict[float, list[list[dict[str, Any]]]] = {}
    for record in data.records:
        if record["method"] == agent and data.rounds.get(record["run"]):
            grouped.setdefault(record["reliability"], []).append(data.rounds[record["run"]])
    return grouped


def sweep_sections(data: SweepData, planned: int | None,
                   samples: dict[str, FactorSamples], reference: FactorSamples | None) -> list[Section]:
    """Settings, the summary table, the five figures and every run's record."""
    table_rows = rows(data.records)
    sections = [Section("Sweep", _settings(data), _notes(data, planned))]
    summary = Section("Deployment loss", ["Query loss on held-out truth tasks before (k = 0) and after (k = K) "
                                          "adapting to their support set, mean ± SE over seeds."],
                      tables=[sweep_table(table_rows)])
    if table_rows:
        summary.figures.append(Figure("loss_vs_reliability.png", plots.loss_plot(table_rows, data.records),
                                      "Deployment loss (k = K) against the expert's reliability; baselines as "
                                      "dashed lines (band: ± SE). Right: the same, paired against spec-only "
                                      "seed by seed (below zero: better than the spec alone)."))
    sections.append(summary)
    budget = data.config.get("rounds", 0) * data.config.get("answers_per_round", 0) or None
    for agent in ("gmhf", "gmhf-reinforce"):
        grouped = _by_reliability(data, agent)
        if not grouped:
            continue
        suffix = "" if agent == "gmhf" else "_reinforce"
        sections.append(Section(f"Feedback rounds ({agent})", figures=[
            Figure(f"mmd_vs_round{suffix}.png",
                   plots.mmd_plot(grouped, [r for r in data.records if r["method"] == "spec-only"]),
                   f"{agent}: MMD² between data generated from π and from the truth (left) and between π and the "
                   "truth in θ (right), per round, mean over seeds, one line per reliability; dashed: the spec's "
                   "q_H, where π starts."),
            Figure(f"answers_vs_reliability{suffix}.png", plots.answers_plot(grouped, budget),
                   f"{agent}: answers until 90 % of π's draws fall in the truth's support (mean ± SE over the "
                   "seeds that got there; x: seeds that never did within the budget).")]))
    bounded = [r for r in data.records if r["method"] == "gmhf" and r.get("bound")]
    if bounded:
        sections.append(Section("The bound", ["The deployment bound (docs/method.md) on the clipped loss: "
                                              "E_target[ℓ_M] ≤ E_π[ℓ_M] + M·TV(π, target) + slack (95 %)."],
                                figures=[Figure("bound_terms.png", plots.bound_plot(bounded),
                                                "gmhf: the bound's terms stacked (mean over seeds) and the "
                                                "measured clipped deployment loss (dots), per reliability.")]))
    if samples and reference is not None:
        sections.append(Section("Where π ended", figures=[Figure(
            "factors_at_end.png", plots.factors_plot(samples, reference),
            "Each flagged factor at the end of the feedback rounds (seed 0): the truth (filled), the spec's q_H "
            "and π at the lowest and highest reliability (the environments training drew).")]))
    sections.append(Section("Every run", tables=[_records_table(data.records)]))
    return sections


def run_sections(data: RunData, samples: FactorSamples | None) -> list[Section]:
    """One run: its settings, rounds, factors and deployment table."""
    run = data.config.get("gmhf_run")
    train = run["train"] if run else data.config.get("gmhf_config", {})
    settings = f"Spec {train.get('spec')}; truth {train.get('truth') or 'the domain benchmark truth'}."
    if run:
        settings += (f" Experts {', '.join(run['experts'])}; agent {run['agent']}; {run['rounds']} rounds of "
                     f"{run['answers_per_round']} answers.")
    sections = [Section("Run", [settings])]
    if data.rounds:
        sections.append(Section("Feedback rounds", figures=[Figure(
            "rounds.png", plots.rounds_plot(data.rounds),
            "Share of π's draws inside the truth's support (left) and MMD² to the truth (right) per round.")]))
    if samples is not None:
        sections.append(Section("π, q_H and the truth", figures=[Figure(
            "factors.png", plots.factors_plot({"π (final)": samples}, samples),
            "Each flagged factor: the truth, the spec's q_H and π at the end (the environments training drew).")]))
    pairs = (data.result or {}).get("paired") or {}

    def pair(name: str) -> tuple[str, ...]:
        found = pairs.get(name)
        return (f"{found['minus_gmhf']:+.4g} ± {found['stderr']:.2g}" if found else "",) if pairs else ()

    body = tuple((name + (" (upper bound)" if name == UPPER_BOUND else ""),
                  *(f"{value:.4g}" for value in losses.values()), *pair(name))
                 for name, losses in data.deployment.items())
    keys = tuple(next(iter(data.deployment.values()))) if data.deployment else ()
    headers = ("method", *keys, *(("minus gmhf (paired over tasks, ± SE)",) if pairs else ()))
    notes = [] if data.deployment else ["The run has not finished training: no deployment loss yet."]
    if len(data.deployment) > 1 and not pairs:
        notes.append("Paired differences need the per-task losses, which this run directory does not keep; "
                     "`gmhf run --baselines` prints them, and `gmhf sweep` keeps them.")
    sections.append(Section("Deployment loss", notes=notes, tables=[Table(headers, body)] if body else []))
    return sections
