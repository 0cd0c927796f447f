"""The status table: ``index/<collection>/sources.sqlite``, one row per source, stamped with
the generation it describes (see :mod:`qa.store.status`), and its records."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

State = Literal["indexed", "unchanged", "skipped", "failed"]

STATUS = "sources.sqlite"
LEGACY_STATUS = "sources.json"  # the whole status as one JSON file, before the table
BUSY_TIMEOUT_S = 30.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS stamp (generation TEXT NOT NULL, written_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    source TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, passages INTEGER NOT NULL,
    content_hash TEXT, checked_at TEXT, changed_at TEXT, document_id TEXT
);
CREATE INDEX IF NOT EXISTS sources_by_document ON sources (document_id);
CREATE INDEX IF NOT EXISTS sources_by_source ON sources (source);
"""
COLUMNS = "source, state, reason, passages, content_hash, checked_at, changed_at, document_id"
NAMES = tuple(COLUMNS.split(", "))
CHUNK = 500  # values per ``IN (...)``, below SQLite's limit on parameters


class SourceRecord(BaseModel):
    """One file (or document of a JSONL file, or URL) and what the last run made of it."""

    source: str  # as readers see it: the folder's name and the path inside it, or a URL
    state: State
    reason: str | None = None  # why it was skipped or failed
    passages: int = 0
    content_hash: str | None = None
    checked_at: str | None = None  # UTC, ISO 8601: when a run last looked at it
    changed_at: str | None = None  # when its content last changed in the index
    document_id: str | None = None


class SourceStatus(BaseModel):
    """The records of one generation (and the layout of the former ``sources.json``)."""

    generation: str
    written_at: str
    sources: list[SourceRecord] = []


def read_status(directory: Path) -> SourceStatus | None:
    """The recorded status (``None`` when there is none or it is unreadable)."""
    if not (directory / STATUS).exists():
        return _legacy_status(directory)
    try:
        with _reading(directory) as connection:
            stamp = connection.execute("SELECT generation, written_at FROM stamp").fetchone()
            if stamp is None:
                return None
            rows = connection.execute(f"SELECT {COLUMNS} FROM sources").fetchall()
    except sqlite3.Error:
        return None
    records = [SourceRecord(**dict(zip(NAMES, row))) for row in rows]
    return SourceStatus(generation=stamp[0], written_at=stamp[1], sources=records)


def _legacy_status(directory: Path) -> SourceStatus | None:
    try:
        return SourceStatus.model_validate_json((directory / LEGACY_STATUS).read_bytes())
    except (OSError, ValidationError):
        return None


def _in_chunks(
    connection: sqlite3.Connection, sql: str, values: Iterable[str]
) -> list[tuple[object, ...]]:
    """Run ``sql`` (with ``IN ({marks})`` in it) for every value, a chunk at a time; its rows."""
    wanted, rows = sorted(set(values)), []
    for begin in range(0, len(wanted), CHUNK):
        chunk = wanted[begin : begin + CHUNK]
        rows += connection.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)
    return rows


@contextmanager
def _reading(directory: Path) -> Iterator[sqlite3.Connection]:
    uri = f"file:{directory / STATUS}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)) as connection:
        yield connection


class StatusTable:
    """The status table, open for one run's write (the writer lock held)."""

    def __init__(self, directory: Path) -> None:
        self._connection = sqlite3.connect(
            directory / STATUS, timeout=BUSY_TIMEOUT_S, isolation_level=None
        )
        self._connection.executescript(SCHEMA)
        legacy = directory / LEGACY_STATUS
        if self.generation() is None and (old := _legacy_status(directory)) is not None:
            self.write(old.generation, old.written_at, old.sources, everything=True)
        legacy.unlink(missing_ok=True)

    def close(self) -> None:
        self._connection.close()

    def generation(self) -> str | None:
        """The generation the table describes (``None`` before the first run)."""
        row = self._connection.execute("SELECT generation FROM stamp").fetchone()
        return None if row is None else str(row[0])

    def documents(self, ids: Iterable[str] | None = None) -> dict[str, SourceRecord]:
        """The records of documents (of ``ids`` only, when given), by document id."""
        sql = f"SELECT {COLUMNS} FROM sources WHERE document_id IS NOT NULL"
        if ids is None:
            rows: Iterable[tuple[object, ...]] = self._connection.execute(sql)
        else:
            rows = _in_chunks(self._connection, sql + " AND document_id IN ({marks})", ids)
        records = (SourceRecord(**dict(zip(NAMES, row))) for row in rows)
        return {r.document_id: r for r in records if r.document_id}

    def count(self) -> int:
        """How many documents have a record."""
        sql = "SELECT COUNT(*) FROM sources WHERE document_id IS NOT NULL"
        return int(self._connection.execute(sql).fetchone()[0])

    def write(
        self,
        generation: str,
        written_at: str,
        records: Iterable[SourceRecord],
        everything: bool = False,
        replaced: Collection[str] = (),
        kept_skips: bool = False,
    ) -> None:
        """Stamp the table with ``generation`` and store ``records``, in one transaction.

        ``everything``: every earlier row goes; otherwise the rows of the documents
        ``replaced`` go, and skips go unless ``kept_skips`` (those of the sources named again
        go even then).
        """
        records = list(records)
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            if everything:
                connection.execute("DELETE FROM sources")
            else:
                gone = "DELETE FROM sources WHERE document_id IN ({marks})"
                _in_chunks(connection, gone, replaced)
                if not kept_skips:
                    connection.execute("DELETE FROM sources WHERE document_id IS NULL")
                named = "DELETE FROM sources WHERE document_id IS NULL AND source IN ({marks})"
                _in_chunks(connection, named, (r.source for r in records))
            connection.executemany(
                f"INSERT INTO sources ({COLUMNS}) VALUES ({', '.join('?' * len(NAMES))})",
                ([getattr(r, c) for c in NAMES] for r in records),
            )
            connection.execute("DELETE FROM stamp")
            connection.execute("INSERT INTO stamp VALUES (?, ?)", (generation, written_at))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
