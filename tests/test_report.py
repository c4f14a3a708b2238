"""`gmhf report`: statistics over seeds, a self-contained report.html that opens offline, results.md, plots."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gmhf.report.stats import answers_needed, mean_se, paired, rows
from gmhf.sweep import available_methods

if TYPE_CHECKING:
    from gmhf.report import Report

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "CI": "1", "GMHF_THREADS": "1", "PYTHONPATH": str(ROOT)}
SPEC = str(ROOT / "examples" / "specs" / "sinusoid_vague.guide")
TRUTH = str(ROOT / "gmhf" / "domains" / "sinusoid_truth.guide")
#: A sweep too small to mean anything, big enough to give every figure something to draw.
#: The figures of a sweep: two more for the `reinforce` agent's rounds when gmhf run offers it.
REINFORCE = "gmhf-reinforce" in available_methods()
PLOTS = {"loss_vs_reliability.png", "mmd_vs_round.png", "answers_vs_reliability.png", "bound_terms.png",
         "factors_at_end.png"} | ({"mmd_vs_round_reinforce.png", "answers_vs_reliability_reinforce.png"}
                                  if REINFORCE else set())
TINY: dict[str, Any] = dict(steps=4, meta_batch=4, pool_size=32, eval_tasks=16, hidden=(8,), checkpoint_every=2)


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gmhf.core.trainer import TrainConfig
    from gmhf.sweep import SweepConfig, sweep

    root = tmp_path_factory.mktemp("sweep") / "s"
    config = SweepConfig(train=TrainConfig(spec=SPEC, truth=TRUTH, **TINY), reliabilities=(0.5, 1.0), seeds=2,
                         rounds=2, answers_per_round=3)
    sweep(config, root)
    return root


@pytest.fixture(scope="module")
def tiny_report(tiny_sweep: Path) -> Report:
    from gmhf.report import report

    return report(tiny_sweep)


class Links(HTMLParser):
    """Every attribute that can fetch something, and every tag name."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in {"src", "href", "srcset", "data", "poster", "action", "xlink:href"} and value is not None:
                self.urls.append((tag, name, value))


def test_mean_se_and_pairing_follow_their_definitions() -> None:
    """SE = sample standard deviation / √n; pairing uses the seeds both sides have, nothing else."""
    summary = mean_se([1.0, 2.0, 4.0, None, float("nan")])
    assert summary is not None and summary.n == 3 and summary.mean == pytest.approx(7 / 3)
    assert summary.stderr == pytest.approx((((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2 / 3) ** 0.5)
    assert mean_se([]) is None and mean_se([5.0]).stderr is None  # type: ignore[union-attr]
    mine = [{"seed": 0, "deployment_loss": 1.0}, {"seed": 1, "deployment_loss": 2.0}, {"seed": 2, "deployment_loss": 9.0}]
    other = [{"seed": 0, "deployment_loss": 0.5}, {"seed": 1, "deployment_loss": 1.0}]
    difference = paired(mine, other)
    assert difference is not None and difference.n == 2 and difference.mean == pytest.approx(0.75)


def test_rows_are_ordered_labelled_and_paired_against_spec_only_and_the_oracle() -> None:
    def record(method: str, p: float | None, seed: int, loss: float) -> dict:
        return {"method": method, "reliability": p, "seed": seed, "deployment_loss": loss,
                "deployment_loss_k0": loss + 1, "mmd": None, "answers": 0}

    records = [record("oracle", None, s, 1.0 + s) for s in range(2)] + \
        [record("gmhf", 1.0, s, 1.5 + s) for s in range(2)] + [record("spec-only", None, s, 2.0 + s) for s in range(2)]
    table = rows(records)
    assert [row.label for row in table] == ["spec-only", "gmhf p=1", "oracle (upper bound)"]
    gmhf = table[1]
    assert gmhf.minus_spec_only.mean == pytest.approx(-0.5) and gmhf.minus_spec_only.stderr == 0  # type: ignore[union-attr]
    assert gmhf.minus_oracle.mean == pytest.approx(0.5)  # type: ignore[union-attr]
    assert table[0].minus_spec_only is None and table[2].minus_oracle is None


def test_answers_needed_is_the_first_round_with_90_percent_in_support() -> None:
    rounds: list[dict[str, Any]] = [{"answers": 5, "in_support": 0.2}, {"answers": 10, "in_support": None},
              {"answers": 15, "in_support": 0.91}, {"answers": 20, "in_support": 0.5}]
    assert answers_needed(rounds) == 15 and answers_needed(rounds[:2]) is None


def test_a_sweep_report_is_self_contained_and_every_image_decodes(tiny_sweep: Path, tiny_report: Report) -> None:
    """No external reference anywhere in report.html; every <img> is an embedded PNG that decodes."""
    from matplotlib import image

    written = tiny_report
    text = written.html.read_text(encoding="utf-8")
    parser = Links()
    parser.feed(text)
    assert not {"script", "link", "iframe", "object", "embed"} & parser.tags
    images = [value for tag, name, value in parser.urls if tag == "img"]
    assert len(images) == len(written.plots) == len(PLOTS)
    assert all(tag == "img" and name == "src" for tag, name, _ in parser.urls)  # nothing but embedded images
    for value in images:
        assert value.startswith("data:image/png;base64,")
        png = base64.b64decode(value.split(",", 1)[1], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert image.imread(io.BytesIO(png), format="png").shape[0] > 100
    without_images = re.sub(r'src="data:[^"]*"', "", text)
    assert not re.search(r"(https?:)?//|url\(|@import", without_images)
    names = {path.name for path in written.plots}
    assert names == PLOTS
    assert all((tiny_sweep / "plots" / name).stat().st_size > 1000 for name in names)


def test_results_md_has_the_table_paired_columns_and_links_to_the_plots(tiny_sweep: Path, tiny_report: Report) -> None:
    markdown = (tiny_sweep / "results.md").read_text(encoding="utf-8")
    assert "| method | p | seeds | loss k=0 | loss k=K |" in markdown
    assert "− spec-only (paired)" in markdown and "oracle (upper bound)" in markdown
    records = json.loads((tiny_sweep / "results.json").read_text())
    feedback = 2 if REINFORCE else 1
    assert len(records) == feedback * 2 * 2 + 4 * 2  # feedback methods at two reliabilities, four baselines, 2 seeds
    for line in ("| gmhf | 0.5 | 2 |", "| gmhf | 1 | 2 |", "| source-only |  | 2 |", "| domain-randomisation |  | 2 |"):
        assert line in markdown
    for link in re.findall(r"\]\((plots/[^)]+)\)", markdown):
        assert (tiny_sweep / link).exists()
    assert "gmhf-reinforce" in markdown  # said present or said absent, never silently missing


def test_a_single_run_gets_rounds_factors_and_its_deployment_table(tmp_path: Path) -> None:
    import gmhf
    from gmhf.report import report

    run = tmp_path / "run"
    gmhf.run(SPEC, experts=["simulated:1.0"], rounds=2, answers_per_round=3, run_dir=run, **TINY)
    written = report(run)
    assert written.kind == "run" and {p.name for p in written.plots} == {"rounds.png", "factors.png"}
    markdown = written.markdown.read_text(encoding="utf-8")
    assert re.search(r"\| gmhf \| \d", markdown) and "| method | k0 | k5 |" in markdown


def test_the_cli_refuses_a_folder_that_is_neither_a_sweep_nor_a_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gmhf", "report", str(tmp_path)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "neither a sweep" in done.stderr and "Traceback" not in done.stderr
