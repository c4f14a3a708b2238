"""Issue 13's new commands and CLI fixes: `domains`, `view`, `train --resume --steps`, `explain` extras."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from gmhf.cli import cli
from gmhf.core.trainer import TrainConfig
from gmhf.errors import UsageError
from gmhf.runner import resume_training, start_training

SPEC = "examples/specs/sinusoid.guide"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def final_model(run: Path) -> dict[str, torch.Tensor]:
    last = max((run / "checkpoints").glob("step-*.pt"))
    state: dict[str, torch.Tensor] = torch.load(last, weights_only=True)["model"]
    return state


# -- gmhf domains -------------------------------------------------------------------------------


def test_domains_lists_every_installed_domain() -> None:
    done = invoke("domains", "--json")
    assert done.exit_code == 0, done.output
    rows = {row["name"]: row for row in json.loads(done.output)["domains"]}
    assert rows["sinusoid"]["factors"] == 4 and rows["sinusoid"]["truth"] is True
    assert rows["duffing"]["factors"] == 7 and rows["duffing"]["description"]
    text = invoke("domains")
    assert "sinusoid: 4 factors, benchmark truth" in text.output


def test_domains_name_shows_factors_observables_and_truth() -> None:
    done = invoke("domains", "duffing", "--json")
    assert done.exit_code == 0, done.output
    info = json.loads(done.output)
    omega = next(f for f in info["factors"] if f["name"] == "omega")
    assert omega["kind"] == "real" and omega["bounds"] == "(0, 3]" and omega["source"] == "uniform(0.9, 1.1)"
    assert omega["unit"] and omega["description"] == "forcing frequency"
    assert {o["name"] for o in info["observables"]} >= {"x", "v", "amplitude"}
    assert info["truth"].lstrip().startswith("#") and "domain duffing" in info["truth"]
    text = invoke("domains", "sinusoid").output
    assert "amplitude (real) [0, 10]" in text and "benchmark truth:" in text and "observables:" in text


def test_an_unknown_domain_exits_2_with_did_you_mean() -> None:
    done = subprocess.run([sys.executable, "-m", "gmhf", "domains", "dufing"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "did you mean `duffing`" in done.stderr.lower() and "Traceback" not in done.stderr


def test_domains_imports_no_torch() -> None:
    code = ("import sys; from gmhf.cli import main\n"
            "try:\n    main(['domains', 'duffing', '--json'])\nexcept SystemExit: pass\n"
            "sys.stderr.write('TORCH' if 'torch' in sys.modules else 'CLEAN')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stderr.endswith("CLEAN"), done.stderr


# -- gmhf view ----------------------------------------------------------------------------------


def test_view_writes_one_png_per_environment(tmp_path: Path) -> None:
    done = invoke("view", SPEC, "-n", "3", "--out", str(tmp_path / "v"), "--seed", "1", "--json")
    assert done.exit_code == 0, done.output
    views = json.loads(done.output)["views"]
    assert len(views) == 3 and set(views[0]["theta"]) == {"amplitude", "phase", "frequency", "noise"}
    for item in views:
        assert Path(item["path"]).read_bytes().startswith(b"\x89PNG")
    again = invoke("view", SPEC, "-n", "3", "--out", str(tmp_path / "w"), "--seed", "1", "--json")
    assert [v["theta"] for v in json.loads(again.output)["views"]] == [v["theta"] for v in views]


def test_view_defaults_to_views_spec_stem_and_prints_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = Path(SPEC).resolve()
    monkeypatch.chdir(tmp_path)
    done = invoke("view", str(spec), "-n", "2")
    assert done.exit_code == 0, done.output
    assert done.output.split() == [str(Path("views/sinusoid/sinusoid-0.png")), str(Path("views/sinusoid/sinusoid-1.png"))]
    assert (tmp_path / "views" / "sinusoid" / "sinusoid-1.png").is_file()


# -- gmhf train --resume --steps ----------------------------------------------------------------


def small(**changes: Any) -> TrainConfig:
    settings: dict[str, Any] = dict(spec=SPEC, steps=10, meta_batch=4, pool_size=32, refresh_every=7,
                                    checkpoint_every=10, eval_tasks=16, hidden=(16,))
    return TrainConfig(**{**settings, **changes})


def test_extending_a_finished_run_equals_a_straight_run(tmp_path: Path) -> None:
    start_training(small(), tmp_path / "straight").trainer.run()
    start_training(small(steps=6), tmp_path / "short").trainer.run()
    digests = json.loads((tmp_path / "short" / "config.json").read_text())["specs"]
    result = resume_training(tmp_path / "short", steps=10).trainer.run()
    assert result.step == 10
    saved = json.loads((tmp_path / "short" / "config.json").read_text())
    assert saved["gmhf_config"]["steps"] == 10 and saved["specs"] == digests
    for name, value in final_model(tmp_path / "straight").items():
        assert torch.equal(value, final_model(tmp_path / "short")[name]), name
    lines = [json.loads(line) for line in (tmp_path / "short" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "deployment" in line] == [6, 10]  # the intermediate line stays
    assert resume_training(tmp_path / "short").trainer.run().step == 10  # finished again: nothing to do


def test_resume_steps_must_extend_the_run(tmp_path: Path) -> None:
    start_training(small(steps=4), tmp_path / "run").trainer.run()
    with pytest.raises(UsageError, match="does not extend"):
        resume_training(tmp_path / "run", steps=4)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["gmhf_config"]["steps"] == 4


def test_train_resume_steps_on_the_command_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--meta-batch", "2", "--pool-size", "16", "--hidden", "8", "--learner", "reptile", "--json"]
    assert invoke("train", SPEC, "--run", str(run), "--steps", "3", *args).exit_code == 0
    done = invoke("train", "--resume", "--run", str(run), "--steps", "5", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["step"] == 5
    refused = invoke("train", "--resume", "--run", str(run), "--steps", "5", "--meta-batch", "3")
    assert "drop --meta-batch" in str(refused.exception)


# -- gmhf explain: effective marginals, prefer effects, expect rejections, comparisons ----------

RARE_SPEC = """domain sinusoid
shift amplitude in 0 .. 10
require amplitude * frequency > 11.5
prefer phase < 1 weight 2
"""


def test_explain_json_keeps_its_keys_and_adds_the_effects(tmp_path: Path) -> None:
    spec = tmp_path / "rare.guide"
    spec.write_text(RARE_SPEC)
    done = invoke("explain", str(spec), "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert {"domain", "trust", "factors", "joint", "truncate", "prefer", "expect", "acceptance_rate"} <= set(data)
    amplitude = next(f for f in data["effective"] if f["factor"] == "amplitude")
    assert 9.5 < amplitude["q05"] < amplitude["q50"] < amplitude["q95"] <= 10  # the require, in effect
    assert len(amplitude["histogram"]) == 20 and sum(amplitude["histogram"]) == 4000
    assert len(amplitude["sparkline"]) == 20
    (prefer,) = data["prefer_effect"]
    assert prefer["where"].endswith(":4") and prefer["holds_before"] < 0.15 < 0.6 < prefer["holds_after"]
    assert any("accepts only" in w and ":3" in w for w in data["warnings"])
    assert "expect_rejection" not in data


def test_explain_text_shows_quantiles_histograms_and_warnings(tmp_path: Path) -> None:
    spec = tmp_path / "rare.guide"
    spec.write_text(RARE_SPEC)
    done = subprocess.run([sys.executable, "-m", "gmhf", "explain", str(spec)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Effective marginals" in done.stdout and "holds in" in done.stdout
    assert "warning:" in done.stderr and "accepts only" in done.stderr


def test_explain_data_reports_each_expects_rejection_rate(tmp_path: Path) -> None:
    spec = tmp_path / "tight.guide"
    spec.write_text("domain sinusoid\nshift amplitude in 1 .. 3\nexpect max(abs(y)) < 2\n")
    plain = json.loads(invoke("explain", str(spec), "--json").output)
    assert "expect_rejection" not in plain
    done = invoke("explain", str(spec), "--json", "--data")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)["expect_rejection"]
    (row,) = report["expect"]
    assert report["generated"] == 256 and 0.2 < row["rejection_rate"] < 0.8


def test_explain_compares_two_specs_with_their_overlap() -> None:
    done = invoke("explain", "examples/specs/duffing.guide", "examples/specs/duffing_vague.guide", "--json")
    assert done.exit_code == 0, done.output
    rows = {row["factor"]: row for row in json.loads(done.output)["compare"]}
    assert rows["delta"]["overlap"] == pytest.approx(1.0) and rows["delta"]["interval_overlap"] == 1.0
    assert rows["gamma"]["overlap"] < 0.5 and rows["beta"]["interval_overlap"] < 0.5
    other = invoke("explain", SPEC, "examples/specs/duffing.guide")
    assert other.exit_code != 0 and "different domains" in str(other.exception)


def test_explain_domain_option_serves_a_spec_without_a_domain_line(tmp_path: Path) -> None:
    spec = tmp_path / "bare.guide"
    spec.write_text("shift amplitude in 1 .. 2\n")
    done = invoke("explain", str(spec), "--domain", "sinusoid", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["domain"] == "sinusoid"


# -- item 12: docs and CLI fixes ----------------------------------------------------------------


def test_check_reports_a_missing_file_as_a_finding_and_checks_the_rest(tmp_path: Path) -> None:
    broken = tmp_path / "broken.guide"
    broken.write_text("domain sinusoid\nsift noise in 0 .. 1\n")
    args = [sys.executable, "-m", "gmhf", "check", SPEC, str(tmp_path / "missing.guide"), str(broken), str(tmp_path)]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert f"{SPEC}: ok" in done.stdout
    assert "missing.guide: error: no such file" in done.stderr and "unknown keyword `sift`" in done.stderr
    assert "a directory, not a spec file" in done.stderr
    report = json.loads(subprocess.run([*args, "--json"], capture_output=True, text=True).stdout)
    assert [f["ok"] for f in report["files"]] == [True, False, False, False]
    assert report["files"][1]["diagnostics"][0]["message"].startswith("no such file")


def test_sample_says_how_many_environments_were_generated_to_keep_n(tmp_path: Path) -> None:
    from gmhf.cli import COMMANDS, resolve

    spec = tmp_path / "e.guide"
    spec.write_text("domain sinusoid\nexpect max(abs(y)) < 3\n")
    applying = ["--expect"] if any(p.name == "apply_expects" for p in resolve(COMMANDS["sample"]).params) else []
    done = subprocess.run([sys.executable, "-m", "gmhf", "sample", str(spec), "-n", "5", "--seed", "0", *applying],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "environments were generated to keep 5" in done.stderr


def test_domain_option_on_sample_and_train(tmp_path: Path) -> None:
    spec = tmp_path / "bare.guide"
    spec.write_text("shift amplitude in 1 .. 2\n")
    sampled = invoke("sample", str(spec), "--domain", "sinusoid", "-n", "3", "--seed", "0", "--json")
    assert sampled.exit_code == 0, sampled.output
    assert all(1 <= row["amplitude"] <= 2 for row in json.loads(sampled.output)["samples"])
    run = tmp_path / "run"
    trained = invoke("train", str(spec), "--domain", "sinusoid", "--run", str(run), "--steps", "2", "--meta-batch",
                     "2", "--pool-size", "16", "--hidden", "8", "--json")
    assert trained.exit_code == 0, trained.output
    assert json.loads((run / "config.json").read_text())["gmhf_config"]["domain"] == "sinusoid"
    resumed = invoke("train", "--resume", "--run", str(run), "--steps", "3", "--json")
    assert resumed.exit_code == 0, resumed.output  # the saved domain serves the resumed run


def test_resume_of_a_directory_without_a_run_exits_1(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gmhf", "train", "--resume", "--run", str(tmp_path / "none")],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "holds no run to resume" in done.stderr


def test_use_accepts_dot_dot_and_absolute_paths_that_stay_inside_the_folder(tmp_path: Path) -> None:
    import gmhf

    (tmp_path / "sub").mkdir()
    (tmp_path / "b.guide").write_text("shift amplitude in 1 .. 2\n")
    (tmp_path / "c.guide").write_text("shift noise in 0 .. 0.05\n")
    main = tmp_path / "main.guide"
    main.write_text(f'domain sinusoid\nuse "sub/../b.guide"\nuse "{tmp_path / "c.guide"}"\n')
    assert gmhf.load(main).explain()["factors"][0]["target"] != "= source"
    outside = tmp_path / "sub" / "out.guide"
    outside.write_text('domain sinusoid\nuse "../b.guide"\n')
    done = subprocess.run([sys.executable, "-m", "gmhf", "check", str(outside)], capture_output=True, text=True)
    assert done.returncode == 1 and "reaches outside the spec's folder" in done.stderr
