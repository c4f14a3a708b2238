"""The feedback store: append-only, idempotent on resume, and nothing committed is lost to a SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from gmhf.core.experts import Question
from gmhf.core.store import FeedbackRecord, FeedbackStore
from gmhf.errors import GmhfError

ROOT = Path(__file__).resolve().parents[1]


def question(sample_id: str, *values: float, round_: int = 0) -> Question:
    theta = {f"f{i}": v for i, v in enumerate(values)}
    return Question(sample_id=sample_id, round=round_, theta=theta,
                    values=torch.tensor(values, dtype=torch.float64), view=lambda: b"")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeedbackStore]:
    with FeedbackStore(tmp_path / "feedback.sqlite") as opened:
        yield opened


def test_round_trip(store: FeedbackStore) -> None:
    """What is asked and answered comes back with its round, θ (exactly) and times."""
    store.asked(2, "sim", [question("r002-00", 0.1, 1 / 3, round_=2), question("r002-01", 0.5, 2.0, round_=2)])
    store.answered("sim", "r002-00", "accept")
    assert store.answer_for("sim", "r002-00") == "accept"
    assert store.answer_for("sim", "r002-01") is None
    assert store.answer_for("other", "r002-00") is None
    [record] = store.records()
    assert isinstance(record, FeedbackRecord)
    assert (record.round, record.expert, record.sample_id, record.answer) == (2, "sim", "r002-00", "accept")
    assert record.theta == {"f0": 0.1, "f1": 1 / 3}
    assert record.values == [0.1, 1 / 3]
    assert record.asked_at.endswith("+00:00") and record.asked_at <= record.answered_at
    assert store.count() == 1 and store.unanswered() == ["r002-01"]


def test_asked_is_idempotent(store: FeedbackStore) -> None:
    """Recording a round again (a resumed run) adds nothing and keeps the answers."""
    batch = [question("r000-00", 1.0), question("r000-01", 2.0)]
    store.asked(0, "sim", batch)
    store.answered("sim", "r000-00", "reject")
    store.asked(0, "sim", batch)
    store.asked(0, "sim", batch[:1])
    assert store.unanswered() == ["r000-01"]
    assert store.answer_for("sim", "r000-00") == "reject"
    store.asked(0, "other", batch)  # the same ids put to another expert are other questions
    assert store.unanswered() == ["r000-01", "r000-00", "r000-01"]


def test_conflicting_values_refused(store: FeedbackStore) -> None:
    """Another θ under a recorded id means another run; the whole batch is refused."""
    store.asked(0, "sim", [question("r000-00", 1.0)])
    with pytest.raises(GmhfError, match=r"'r000-00' to expert 'sim' was recorded with θ = \[1.0\].*\[1.5\]"):
        store.asked(0, "sim", [question("r000-01", 3.0), question("r000-00", 1.5)])
    assert store.unanswered() == ["r000-00"]
    assert store.records() == []


def test_answers_never_overwritten(store: FeedbackStore) -> None:
    """The same answer again is a no-op; a different one, an unknown word or an unasked question is refused."""
    store.asked(0, "sim", [question("r000-00", 1.0)])
    store.answered("sim", "r000-00", "unsure")
    store.answered("sim", "r000-00", "unsure")
    with pytest.raises(GmhfError, match="already answered 'unsure'; answers are never overwritten"):
        store.answered("sim", "r000-00", "accept")
    with pytest.raises(GmhfError, match=r"`answer` must be one of accept, reject, unsure, got 'yes'\."):
        store.answered("sim", "r000-00", "yes")
    with pytest.raises(GmhfError, match="'r000-09' to expert 'sim' was never recorded"):
        store.answered("sim", "r000-09", "accept")
    assert store.count() == 1 and store.answer_for("sim", "r000-00") == "unsure"


def test_rows_cannot_be_deleted_or_updated(store: FeedbackStore) -> None:
    """Even raw SQL cannot truncate the store: triggers refuse UPDATE and DELETE."""
    store.asked(0, "sim", [question("r000-00", 1.0)])
    store.answered("sim", "r000-00", "accept")
    store.close()
    db = sqlite3.connect(store.path)
    try:
        for sql in ("DELETE FROM answers", "UPDATE answers SET answer = 'reject'", "DELETE FROM questions"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(sql)
    finally:
        db.close()


def test_answers_survive_reopen(tmp_path: Path) -> None:
    """A closed and reopened store holds everything, in WAL mode."""
    path = tmp_path / "feedback.sqlite"
    with FeedbackStore(path) as store:
        store.asked(0, "sim", [question(f"r000-{i:02d}", float(i)) for i in range(4)])
        for i in range(3):
            store.answered("sim", f"r000-{i:02d}", "accept")
    with FeedbackStore(path) as store:
        assert store.count() == 3 and store.unanswered() == ["r000-03"]
        assert store._conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_records_in_the_order_answered(store: FeedbackStore) -> None:
    """Records come in the order answered, not asked, and filter by expert."""
    store.asked(0, "a", [question(f"r000-{i:02d}", float(i)) for i in range(3)])
    store.asked(0, "b", [question("r000-00", 0.0)])
    store.answered("a", "r000-02", "reject")
    store.answered("b", "r000-00", "accept")
    store.answered("a", "r000-00", "accept")
    assert [(r.expert, r.sample_id) for r in store.records()] == [("a", "r000-02"), ("b", "r000-00"),
                                                                   ("a", "r000-00")]
    assert [r.sample_id for r in store.records(expert="a")] == ["r000-02", "r000-00"]
    assert store.count("a") == 2 and store.count("b") == 1 and store.count("c") == 0


def test_unanswered(store: FeedbackStore) -> None:
    """Asked but unanswered ids, in the order asked, per expert or all."""
    store.asked(0, "a", [question("r000-00", 0.0), question("r000-01", 1.0)])
    store.asked(1, "b", [question("r001-00", 2.0)])
    store.answered("a", "r000-00", "accept")
    assert store.unanswered() == ["r000-01", "r001-00"]
    assert store.unanswered("a") == ["r000-01"] and store.unanswered("b") == ["r001-00"]
    assert store.unanswered("c") == []


def test_repr(tmp_path: Path) -> None:
    """Angle brackets, the path and the answer count; a closed store says so."""
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    store.asked(0, "sim", [question("r000-00", 0.0)])
    store.answered("sim", "r000-00", "accept")
    assert repr(store) == f"<FeedbackStore {str(tmp_path / 'feedback.sqlite')!r} answers=1>"
    store.close()
    assert repr(store).endswith(" closed>")
    with pytest.raises(GmhfError, match="is closed"):
        store.count()


CHILD = textwrap.dedent("""
    import os, signal, sys, torch
    from gmhf.core.experts import Question
    from gmhf.core.store import FeedbackStore
    store = FeedbackStore(sys.argv[1])
    n, kill_at = int(sys.argv[2]), int(sys.argv[3])
    store.asked(0, "sim", [Question(f"q{i:05d}", 0, {"x": float(i)}, torch.tensor([float(i)], dtype=torch.float64),
                                    lambda: b"") for i in range(n)])
    for i in range(n):
        store.answered("sim", f"q{i:05d}", ("accept", "reject", "unsure")[i % 3])
        print(i, flush=True)  # after the commit: every printed answer must survive
        if i == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
""")


def run_child(path: Path, n: int, kill_at: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(n), str(kill_at)],
                            stdout=subprocess.PIPE, text=True, env=env)


def check_survivors(path: Path, printed: list[int]) -> None:
    with FeedbackStore(path) as store:
        assert store._conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        answers = {r.sample_id: r.answer for r in store.records()}
    for i in printed:
        assert answers[f"q{i:05d}"] == ("accept", "reject", "unsure")[i % 3]
    assert len(answers) <= len(printed) + 1  # at most the one committed before its line was printed


def test_sigkill_mid_way_loses_no_committed_answer(tmp_path: Path) -> None:
    """A process that kills itself with SIGKILL leaves every committed answer readable and the db intact."""
    path = tmp_path / "feedback.sqlite"
    child = run_child(path, 40, 23)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    printed = [int(line) for line in out.split()]
    assert printed == list(range(24))
    check_survivors(path, printed)
    with FeedbackStore(path) as store:
        assert store.count() == 24 and len(store.unanswered()) == 16


def test_sigkill_at_any_moment(tmp_path: Path) -> None:
    """Killed from outside while writing (possibly mid-transaction), the store keeps every committed answer."""
    path = tmp_path / "feedback.sqlite"
    child = run_child(path, 5000, -1)
    assert child.stdout is not None
    printed = [int(child.stdout.readline()) for _ in range(30)]
    child.send_signal(signal.SIGKILL)
    # read() and not communicate(timeout=): that reads the pipe's descriptor directly and loses the
    # lines readline() has already buffered, which then look like answers committed but never printed
    with child.stdout:
        rest = child.stdout.read()
    child.wait(timeout=60)
    printed += [int(line) for line in rest.split()]
    assert child.returncode == -signal.SIGKILL and len(printed) < 5000
    check_survivors(path, printed)


def test_garbage_file_refused_and_kept(tmp_path: Path) -> None:
    """A file that is not a database is refused by name and left byte for byte as it was."""
    path = tmp_path / "feedback.sqlite"
    garbage = bytes(range(256)) * 20
    path.write_bytes(garbage)
    with pytest.raises(GmhfError, match=r"feedback.sqlite' is not a gmhf feedback store \(file is not a database\)"):
        FeedbackStore(path)
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feedback.sqlite"]


def test_other_sqlite_database_refused_and_kept(tmp_path: Path) -> None:
    """Another program's SQLite database (no gmhf meta) is refused, not converted to WAL or re-created."""
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (name TEXT)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(GmhfError, match=r"other.db' is an SQLite database but not a gmhf feedback store"):
        FeedbackStore(path)
    assert path.read_bytes() == before


def test_newer_schema_refused(tmp_path: Path) -> None:
    """A store written by a newer gmhf is refused instead of being misread."""
    path = tmp_path / "feedback.sqlite"
    FeedbackStore(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', '99')")
    db.commit()
    db.close()
    with pytest.raises(GmhfError, match="written by a newer gmhf"):
        FeedbackStore(path)


def test_unopenable_path_named(tmp_path: Path) -> None:
    """A path in a missing folder fails with a GmhfError naming it."""
    with pytest.raises(GmhfError, match="cannot open the feedback store .*missing"):
        FeedbackStore(tmp_path / "missing" / "feedback.sqlite")


def test_import_is_torch_free() -> None:
    """The store imports without torch, so the web app and report can read it cheaply."""
    code = "import sys, gmhf.core.store; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
