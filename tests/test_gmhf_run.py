"""`gmhf run`: answers are never lost or asked twice, a killed run resumes exactly, gmhf beats the baselines."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gmhf
from gmhf.core.store import FeedbackStore

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "run_driver.py"
ENV = {**os.environ, "CI": "1", "GMHF_THREADS": "1", "PYTHONPATH": str(ROOT)}


def drive(run: Path, log: Path, mode: str) -> dict:
    done = subprocess.run([sys.executable, str(DRIVER), str(run), str(log), mode], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    document: dict = json.loads(done.stdout.splitlines()[-1])
    return document


def answered(run: Path) -> int:
    if not (run / "feedback.sqlite").exists():
        return 0
    try:
        with sqlite3.connect(f"file:{run / 'feedback.sqlite'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM answers").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_a_killed_run_resumes_without_asking_again_and_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    reference = drive(tmp_path / "whole", tmp_path / "whole.log", "start")
    killed, log = tmp_path / "killed", tmp_path / "killed.log"
    command = [sys.executable, str(DRIVER), str(killed), str(log), "start"]
    with subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        deadline = time.monotonic() + 120
        while answered(killed) < 23:  # mid-round 5, some answers stored
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
    with FeedbackStore(killed / "feedback.sqlite") as store:
        stored_before = {record.sample_id for record in store.records()}
    assert 23 <= len(stored_before) < 60
    asked_before = log.read_text().split()
    resumed = drive(killed, log, "resume")
    asked_after = log.read_text().split()[len(asked_before):]
    assert not set(asked_after) & stored_before  # no stored question was asked again
    assert len(asked_after) == len(set(asked_after)) == 60 - len(stored_before)
    assert resumed == {**reference, "run": str(killed)}
    assert (killed / "metrics.jsonl").read_bytes() == (tmp_path / "whole" / "metrics.jsonl").read_bytes()


def test_resume_after_training_replays_the_store_without_asking(tmp_path: Path) -> None:
    """A finished run resumed asks nobody and reports the same result."""
    first = drive(tmp_path / "run", tmp_path / "log", "start")
    lines = (tmp_path / "log").read_text().split()
    again = drive(tmp_path / "run", tmp_path / "log", "resume")
    assert (tmp_path / "log").read_text().split() == lines and again == first
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rounds = [row for row in rows if "round" in row]
    assert [row["round"] for row in rounds] == list(range(12))
    assert [row["answers"] for row in rounds] == [5 * (i + 1) for i in range(12)]
    assert all({"in_support", "mmd", "mmd_data", "wasserstein", "agreement"} <= set(row) for row in rounds)
    assert rounds[-1]["agreement"] == 1.0  # a perfect expert agrees with the truth on every answer
    assert set(rounds[-1]["wasserstein"]) == {"beta", "gamma"}


@pytest.mark.slow
def test_gmhf_beats_spec_only_and_source_only_paired_on_the_vague_example(tmp_path: Path) -> None:
    """150 answers at p = 1, 300 meta-steps: paired over the same 256 truth tasks from the same weights.

    Measured (seed 0): gmhf 0.0376, spec-only 0.0559, source-only 0.0769, oracle 0.0379; the test asks
    each difference to exceed three of its standard errors.
    """
    result = gmhf.run("examples/specs/duffing_vague.guide", experts=["simulated:1.0"], rounds=30, steps=300,
                      meta_batch=16, baselines=True, run_dir=tmp_path / "run")
    for baseline in ("spec-only", "source-only"):
        pair = result.paired[baseline]
        assert pair["minus_gmhf"] > 3 * pair["stderr"], (baseline, pair)
    assert result.document()["in_support"] >= 0.85
    bound = result.bound
    assert bound is not None and bound["value"] >= bound["measured"]
    assert bound["measured"] == pytest.approx(result.deployment["k5"], rel=1e-6)


def test_the_cli_reports_rounds_and_strict_json(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gmhf", "run", "examples/specs/duffing_vague.guide", "--expert",
                           "simulated:0.9", "--rounds", "2", "--steps", "3", "--meta-batch", "2", "--pool-size", "32",
                           "--hidden", "8", "--run", str(tmp_path / "r"), "--json"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["answers"] == 10 and set(document["deployment"]) == {"k0", "k5"}
    assert {"run", "in_support", "mmd"} <= set(document)
    assert "round 2: 10 answers" in done.stderr


@pytest.mark.parametrize(("arguments", "message"), [
    (["--expert", "oracle"], "unknown expert 'oracle'"),
    (["--expert", "simulated"], "needs its reliability"),
    (["--expert", "simulated:1.5"], "must be a number in [0, 1]"),
    (["--expert", "simulated:0.9,speed=2"], "unknown expert option 'speed'"),
])
def test_bad_experts_are_clear_usage_errors(tmp_path: Path, arguments: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "gmhf", "run", "examples/specs/duffing_vague.guide", *arguments,
                           "--run", str(tmp_path / "r")], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_person_answers_by_key_quits_and_resumes_through_a_terminal(tmp_path: Path) -> None:
    """`--expert terminal` in a pseudo-terminal: a, r, then q stops (exit 130); --resume asks only the rest."""
    pexpect = pytest.importorskip("pexpect")
    from tests.terminal_driver import press

    run = tmp_path / "run"
    small = ["--rounds", "2", "--answers-per-round", "2", "--steps", "3", "--meta-batch", "2", "--pool-size", "32",
             "--hidden", "8"]
    env = {**ENV, "TERM": "dumb"}
    env.pop("TERM_PROGRAM", None)
    env.pop("KITTY_WINDOW_ID", None)

    def spawn(*arguments: str) -> pexpect.spawn:
        return pexpect.spawn(sys.executable, ["-m", "gmhf", "run", *arguments], cwd=str(ROOT), env=env,
                             encoding="utf-8", timeout=120, dimensions=(40, 200))

    child = spawn("examples/specs/duffing_vague.guide", "--expert", "terminal", "--run", str(run), *small)
    for key in ("a", "r", "q"):
        press(child, key)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    with FeedbackStore(run / "feedback.sqlite") as store:
        assert [(r.sample_id, r.answer) for r in store.records()] == [("r000-00", "accept"), ("r000-01", "reject")]
        assert store.unanswered() == ["r001-00", "r001-01"]
    assert len(list((run / "plots" / "questions").glob("*.png"))) == 3  # each picture shown was saved
    child = spawn("--resume", "--run", str(run))
    for key in ("u", "a"):
        press(child, key)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    with FeedbackStore(run / "feedback.sqlite") as store:
        assert [r.answer for r in store.records()] == ["accept", "reject", "unsure", "accept"]
        assert not store.unanswered()
