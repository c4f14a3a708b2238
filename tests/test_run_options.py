"""`gmhf run` options of the steering-quality work: the second agent, several specs and experts, auto stop."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gmhf

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "CI": "1", "GMHF_THREADS": "1", "PYTHONPATH": str(ROOT)}
VAGUE = "examples/specs/duffing_vague.guide"
MODERATE = "examples/specs/duffing.guide"
TINY = ["--steps", "3", "--meta-batch", "2", "--pool-size", "32", "--hidden", "8"]


def gmhf_run(*arguments: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gmhf", "run", *arguments], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"round"' in line]


def test_the_reinforce_agent_runs_through_gmhf_run_and_resumes(tmp_path: Path) -> None:
    run = tmp_path / "r"
    done = gmhf_run(VAGUE, "--agent", "reinforce", "--rounds", "3", *TINY, "--run", str(run), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answers"] == 15
    assert json.loads((run / "config.json").read_text())["gmhf_run"]["agent"] == "reinforce"
    again = gmhf_run("--resume", "--run", str(run), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["deployment"] == json.loads(done.stdout)["deployment"]


def test_several_specs_start_from_their_pool_and_several_experts_each_answer(tmp_path: Path) -> None:
    run = tmp_path / "r"
    done = gmhf_run(VAGUE, MODERATE, "--expert", "simulated:0.9", "--expert", "simulated:0.5,claims=0.9",
                    "--rounds", "2", *TINY, "--run", str(run), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["answers"] == 20  # each expert answers its own 5 questions a round (a split panel)
    assert set(document["reliability"]) == {"0:simulated:0.9", "1:simulated:0.5,claims=0.9"}
    assert json.loads((run / "config.json").read_text())["gmhf_run"]["panel"] == "split"
    config = json.loads((run / "config.json").read_text())["gmhf_run"]["train"]
    assert config["pooled_with"] == [str((ROOT / MODERATE).resolve())]
    pooled = gmhf.pool(str((ROOT / VAGUE).resolve()), str((ROOT / MODERATE).resolve()))
    recorded = json.loads((run / "config.json").read_text())["specs"]["spec"]
    assert recorded == hashlib.sha256(str(pooled).encode()).hexdigest()  # the run's belief is the pool
    row = rows(run)[-1]
    assert {"reliability", "weights", "information", "misspecified"} <= set(row)


def test_answers_auto_needs_an_agent_that_can_say_what_an_answer_teaches(tmp_path: Path) -> None:
    done = gmhf_run(VAGUE, "--agent", "reinforce", "--answers", "auto", *TINY, "--run", str(tmp_path / "r"))
    assert done.returncode == 2 and "--answers auto" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_answers_auto_stops_asking_once_answers_would_teach_little(tmp_path: Path) -> None:
    """A perfect expert on the moderately vague spec: settled well before 60 rounds (measured: 9 rounds,
    45 answers, 83% of π in the truth's support)."""
    run = tmp_path / "r"
    done = gmhf_run(MODERATE, "--expert", "simulated:1.0", "--answers", "auto", "--rounds", "60", *TINY,
                    "--run", str(run), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["finished_asking"] == "auto" and document["answers"] < 300
    information = [r["information"] for r in rows(run)]
    assert all(i is not None and i < 0.06 for i in information[-3:]), information


def test_a_pooled_spec_of_another_domain_is_a_usage_error(tmp_path: Path) -> None:
    done = gmhf_run(VAGUE, "examples/specs/sinusoid.guide", *TINY, "--run", str(tmp_path / "r"))
    assert done.returncode == 2 and "domain" in done.stderr and "Traceback" not in done.stderr


def test_the_any_shape_runs_and_a_run_saved_before_shapes_and_panels_resumes_as_it_ran(tmp_path: Path) -> None:
    """`--shape any` is saved with the run; a config without `shape` or `panel` (saved before they existed)
    resumes as `any` and `shared`."""
    run = tmp_path / "r"
    done = gmhf_run(VAGUE, "--shape", "any", "--rounds", "2", *TINY, "--run", str(run), "--json")
    assert done.returncode == 0, done.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["gmhf_run"]["shape"] == "any"
    del config["gmhf_run"]["shape"], config["gmhf_run"]["panel"]
    (run / "config.json").write_text(json.dumps(config))
    from gmhf.core.rundir import RunDirectory
    from gmhf.pipeline import saved_config

    assert (saved_config(RunDirectory(run)).shape, saved_config(RunDirectory(run)).panel) == ("any", "shared")
    again = gmhf_run("--resume", "--run", str(run), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["deployment"] == json.loads(done.stdout)["deployment"]
