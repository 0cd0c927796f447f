"""Feedback records in SQLite beside a collection's index: ``index/<collection>/feedback.sqlite``.

Not inside a generation, so the records outlive every switch to a new generation (the
indexer only ever removes ``gen-*`` and ``.building-*`` folders). Written in WAL mode with
one short transaction per record and a busy timeout, so readers (``qa report``, the admin
API) never block writers and concurrent posts simply queue for a few milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from qa.errors import StorageFull
from qa.feedback.records import FeedbackIn, FeedbackRecord, Kind

FEEDBACK = "feedback.sqlite"
BUSY_TIMEOUT_S = 10.0  # a writer waits this long for another one (each holds the lock for ~1 ms)
SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    rating TEXT,
    reason TEXT,
    comment TEXT,
    question TEXT NOT NULL,
    history TEXT NOT NULL,
    passage_ids TEXT NOT NULL,
    answer TEXT,
    collection TEXT NOT NULL,
    generation TEXT
);
CREATE INDEX IF NOT EXISTS feedback_by_time ON feedback(created_at);
"""
COLUMNS = (
    "created_at, kind, rating, reason, comment, question, history, passage_ids, answer, "
    "collection, generation"
)


def now() -> str:
    """The current UTC time as stored (ISO 8601, seconds; sorts as text)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FeedbackStore:
    """The feedback of one collection (a connection per call: safe across threads and
    processes, and nothing stays open between requests)."""

    def __init__(self, collection_dir: Path, max_records: int = 100_000) -> None:
        self.path = collection_dir / FEEDBACK
        self.max_records = max_records

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not write and not self.path.exists():
            yield sqlite3.connect(":memory:")  # nothing stored yet: an empty table to read
            return
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint
            connection.executescript(SCHEMA)
            yield connection
        finally:
            connection.close()

    def add(self, item: FeedbackIn, collection: str, kind: Kind = "feedback") -> FeedbackRecord:
        """Store one record (what the client sent, and the time); :class:`~qa.errors.StorageFull` when
        the collection already holds ``max_records``."""
        answer = item.answer.model_dump_json(exclude_none=True) if item.answer else None
        values = (
            now(),
            kind,
            item.rating if kind == "feedback" else None,
            item.reason,
            item.comment,
            item.question,
            json.dumps([t.model_dump() for t in item.history], ensure_ascii=False),
            json.dumps(item.passage_ids),
            answer,
            collection,
            item.generation,
        )
        with self._connect(write=True) as db:
            db.execute("BEGIN IMMEDIATE")  # the count and the insert in one short transaction
            try:
                (count,) = db.execute("SELECT COUNT(*) FROM feedback").fetchone()
                if count >= self.max_records:
                    raise StorageFull(
                        f"collection {collection!r} holds {count} feedback records, the limit "
                        "(QA_FEEDBACK_MAX_RECORDS); export and clear them to take more",
                        code="feedback_full",
                    )
                marks = ", ".join("?" * len(values))
                cursor = db.execute(f"INSERT INTO feedback ({COLUMNS}) VALUES ({marks})", values)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            row_id = int(cursor.lastrowid or 0)
        return self.get(row_id)  # type: ignore[return-value]

    def get(self, record_id: int) -> FeedbackRecord | None:
        """One record by id."""
        with self._connect() as db:
            rows = _select(db, "WHERE id = ?", (record_id,), 1)
        return rows[0] if rows else None

    def records(
        self, since: str | None = None, after: int = 0, limit: int = 100
    ) -> list[FeedbackRecord]:
        """Records with an id above ``after`` (and stored at or after ``since``), oldest first:
        keyset pages that stay stable while new records arrive."""
        where, params = "WHERE id > ?", [after]
        if since is not None:
            where += " AND created_at >= ?"
            params.append(since)  # type: ignore[arg-type]
        with self._connect() as db:
            return _select(db, where, tuple(params), limit)

    def count(self) -> int:
        """How many records the collection holds."""
        if not self.path.exists():
            return 0
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])


def _select(
    db: sqlite3.Connection, where: str, params: tuple[object, ...], limit: int
) -> list[FeedbackRecord]:
    """Records matching ``where``, by id, as models."""
    db.executescript(SCHEMA)  # a fresh in-memory database has no table yet
    db.row_factory = sqlite3.Row
    rows = db.execute(
        f"SELECT id, {COLUMNS} FROM feedback {where} ORDER BY id LIMIT ?", (*params, limit)
    ).fetchall()
    return [_record(row) for row in rows]


def _record(row: sqlite3.Row) -> FeedbackRecord:
    """A row as a model (JSON columns parsed)."""
    data = dict(row)
    data["history"] = json.loads(data["history"])
    data["passage_ids"] = json.loads(data["passage_ids"])
    data["answer"] = json.loads(data["answer"]) if data["answer"] else None
    return FeedbackRecord.model_validate(data)
