"""The feedback store: every question put to an expert and every answer, append-only, in SQLite.

An expert's answer is expensive human time that no run can compute again, so the store is the
one file of a run directory that is never cut back (see `gmhf.core.rundir`). The loop records
its questions before it asks and each answer before it uses it; a resumed run looks every
question up here first and asks only the ones without an answer, so nothing is lost or asked
twice. SQLite in WAL mode with `synchronous=FULL`: each write is one committed transaction, so a
SIGKILL or power cut leaves every committed answer readable. Rows are never updated or deleted
(triggers refuse it), and a file that is not a gmhf store is refused rather than re-created.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from gmhf.core.experts import ANSWERS, Answer, Question
from gmhf.errors import GmhfError

__all__ = ["FeedbackRecord", "FeedbackStore"]

#: What `meta.format` holds in a gmhf store, so another SQLite file is never mistaken for one.
FORMAT = "gmhf-feedback"
#: The schema this module writes; a store with a newer one is refused, not guessed at.
SCHEMA_VERSION = 1
_APPEND_ONLY = "BEGIN SELECT RAISE(ABORT, 'the feedback store is append-only'); END"
#: The tables, created in one transaction with the meta rows (a crash leaves an empty database).
SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE questions (
        id INTEGER PRIMARY KEY,
        round INTEGER NOT NULL,
        expert TEXT NOT NULL,
        sample_id TEXT NOT NULL,
        theta TEXT NOT NULL,
        "values" TEXT NOT NULL,
        asked_at TEXT NOT NULL,
        UNIQUE (expert, sample_id))""",
    f"""CREATE TABLE answers (
        id INTEGER PRIMARY KEY,
        question INTEGER NOT NULL UNIQUE REFERENCES questions (id),
        answer TEXT NOT NULL CHECK (answer IN ({", ".join(repr(a) for a in ANSWERS)})),
        answered_at TEXT NOT NULL)""",
    *(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} {_APPEND_ONLY}"
      for table in ("questions", "answers") for verb in ("UPDATE", "DELETE")),
)
_RECORDS = """SELECT q.round, q.expert, q.sample_id, q.theta, q."values", a.answer, q.asked_at, a.answered_at
    FROM answers a JOIN questions q ON q.id = a.question"""


@dataclass(frozen=True)
class FeedbackRecord:
    """One answered question, as the store holds it (times are UTC ISO 8601)."""

    round: int
    expert: str
    sample_id: str
    theta: dict[str, Any]
    values: list[float]
    answer: Answer
    asked_at: str
    answered_at: str


class FeedbackStore:
    """The append-only store of a run's questions and expert answers (`RUN/feedback.sqlite`).

    Opens the store at `path`, creating it when the file is missing (or an empty database).
    Usable as a context manager, which closes it.

    Raises:
        GmhfError: `path` is not a gmhf feedback store (another file or SQLite database, or one
            written by a newer gmhf), or cannot be opened; the file is left untouched.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as error:
            raise GmhfError(f"cannot open the feedback store {self.path!r}: {error}.") from None
        try:
            self._open(db)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _open(self, db: sqlite3.Connection) -> None:
        # Read before writing anything: even turning on WAL would change a stranger's file.
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables:
                self._check_format(db, tables)
        except sqlite3.OperationalError as error:  # a missing folder, a directory, no permission
            raise GmhfError(f"cannot open the feedback store {self.path!r}: {error}.") from None
        except sqlite3.DatabaseError as error:
            raise GmhfError(f"{self.path!r} is not a gmhf feedback store ({error}); it was left as it is.") from None
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        if not tables:
            with _transaction(db):
                for statement in SCHEMA:
                    db.execute(statement)
                db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                               [("format", FORMAT), ("schema", str(SCHEMA_VERSION)), ("created_at", _now())])

    def _check_format(self, db: sqlite3.Connection, tables: set[str]) -> None:
        meta: dict[str, str] = {}
        with contextlib.suppress(sqlite3.OperationalError):  # another program's `meta` table, other columns
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
        if meta.get("format") != FORMAT:
            raise GmhfError(f"{self.path!r} is an SQLite database but not a gmhf feedback store; it was left as "
                            f"it is. Choose another run directory or move the file away.")
        if int(meta.get("schema", "0")) > SCHEMA_VERSION:
            raise GmhfError(f"the feedback store {self.path!r} was written by a newer gmhf (schema "
                            f"{meta['schema']}, this one reads {SCHEMA_VERSION}); upgrade gmhf to resume it.")

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise GmhfError(f"the feedback store {self.path!r} is closed.")
        return self._db

    def asked(self, round: int, expert: str, questions: Sequence[Question]) -> None:
        """Record `questions` as put to `expert` in `round`, before they are asked (one transaction).

        A question already recorded for this expert under the same sample id is left as it is
        (a resumed run records its rounds again).

        Raises:
            GmhfError: a recorded question has other θ values under the same sample id: the
                resumed run is not the run that asked it. Nothing of the batch is recorded then.
        """
        db = self._conn
        with _transaction(db):
            for q in questions:
                values = json.dumps([float(v) for v in q.values.tolist()])
                db.execute('INSERT INTO questions (round, expert, sample_id, theta, "values", asked_at) '
                           "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (expert, sample_id) DO NOTHING",
                           (round, expert, q.sample_id, json.dumps(q.theta), values, _now()))
                (stored,) = db.execute('SELECT "values" FROM questions WHERE expert = ? AND sample_id = ?',
                                       (expert, q.sample_id)).fetchone()
                if stored != values:
                    raise GmhfError(f"question {q.sample_id!r} to expert {expert!r} was recorded with θ = {stored} "
                                    f"but is now asked with θ = {values}; the run directory holds another run "
                                    f"(a changed spec, seed or gmhf?). Resume with what started it, or start a "
                                    f"new run directory.")

    def answered(self, expert: str, sample_id: str, answer: str) -> None:
        """Record `expert`'s answer to a recorded question, committed before it is used.

        The same answer again is a no-op (a resumed run may record it twice).

        Raises:
            GmhfError: `answer` is not one of `ANSWERS`, the question was never recorded with
                `asked`, or it already has a different answer (answers are never overwritten).
        """
        if answer not in ANSWERS:
            raise GmhfError(f"`answer` must be one of {', '.join(ANSWERS)}, got {answer!r}.")
        db = self._conn
        with _transaction(db):
            row = db.execute("SELECT id FROM questions WHERE expert = ? AND sample_id = ?",
                             (expert, sample_id)).fetchone()
            if row is None:
                raise GmhfError(f"question {sample_id!r} to expert {expert!r} was never recorded; record it with "
                                f"`asked` before asking.")
            db.execute("INSERT INTO answers (question, answer, answered_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (question) DO NOTHING", (row[0], answer, _now()))
            (stored,) = db.execute("SELECT answer FROM answers WHERE question = ?", row).fetchone()
            if stored != answer:
                raise GmhfError(f"question {sample_id!r} to expert {expert!r} was already answered {stored!r}; "
                                f"answers are never overwritten, so {answer!r} was not recorded.")

    def answer_for(self, expert: str, sample_id: str) -> Answer | None:
        """The stored answer to a question, or None if it has none (yet)."""
        row = self._conn.execute("SELECT a.answer FROM answers a JOIN questions q ON q.id = a.question "
                                 "WHERE q.expert = ? AND q.sample_id = ?", (expert, sample_id)).fetchone()
        return None if row is None else row[0]

    def records(self, *, expert: str | None = None) -> list[FeedbackRecord]:
        """Every answered question (of one expert, or all), in the order answered."""
        rows = self._conn.execute(f"{_RECORDS} WHERE ? IS NULL OR q.expert = ? ORDER BY a.id", (expert, expert))
        return [FeedbackRecord(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], r[6], r[7])
                for r in rows]

    def unanswered(self, expert: str | None = None) -> list[str]:
        """Sample ids asked but not answered (of one expert, or all), in the order asked."""
        rows = self._conn.execute("SELECT q.sample_id FROM questions q LEFT JOIN answers a ON a.question = q.id "
                                  "WHERE a.id IS NULL AND (? IS NULL OR q.expert = ?) ORDER BY q.id",
                                  (expert, expert))
        return [r[0] for r in rows]

    def count(self, expert: str | None = None) -> int:
        """How many answers are stored (of one expert, or all)."""
        (n,) = self._conn.execute("SELECT count(*) FROM answers a JOIN questions q ON q.id = a.question "
                                  "WHERE ? IS NULL OR q.expert = ?", (expert, expert)).fetchone()
        return int(n)

    def close(self) -> None:
        """Close the database; every answer is already committed, so this loses nothing."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._db is None else f"answers={self.count()}"
        return f"<FeedbackStore {self.path!r} {state}>"


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so a check and the insert it guards see the same rows.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
