"""The SQLite part of a generation: documents and passages, written once, then read-only.

Rows are mapped to :class:`DocumentRow` / :class:`PassageRow` by column name, never by
position.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

SCHEMA = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    text TEXT NOT NULL,
    body_start INTEGER NOT NULL,
    pages TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    groups TEXT NOT NULL DEFAULT '["public"]',
    tags TEXT NOT NULL DEFAULT '[]',
    date TEXT NOT NULL DEFAULT ''
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,
    document_id TEXT NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL,
    paragraph INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    page INTEGER,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    embed_hash TEXT NOT NULL
);
CREATE INDEX passages_by_document ON passages(document_id, ordinal);
"""

# values per ``IN (...)``: under SQLite's historical limit of 999 host parameters per statement
CHUNK = 500


@dataclass(frozen=True)
class DocumentRow:
    """A document as stored: its text is what passages' offsets refer to."""

    id: str
    title: str
    source: str
    format: str
    text: str
    body_start: int
    pages: list[int]  # char offset where each PDF page starts (a JSON array in SQLite)
    content_hash: str
    # who may read it, its tags and date (JSON arrays in SQLite); segments written before
    # access lists have no such columns and read as public, untagged, undated
    groups: list[str] = field(default_factory=lambda: ["public"])
    tags: list[str] = field(default_factory=list)
    date: str = ""


@dataclass(frozen=True)
class PassageRow:
    """A passage as stored, with its document's title and source."""

    id: int
    document_id: str
    ordinal: int
    paragraph: int
    char_start: int
    char_end: int
    page: int | None
    text: str
    hash: str
    embed_hash: str
    title: str = ""  # of its document (not a column of ``passages``)
    source: str = ""  # of its document, as readers may see it


DOCUMENT_COLUMNS = tuple(f.name for f in fields(DocumentRow))
PASSAGE_COLUMNS = tuple(f.name for f in fields(PassageRow))[:-2]  # title and source: documents'
PASSAGES_WITH_DOCUMENT = (
    "SELECT "
    + ", ".join(f"p.{column}" for column in PASSAGE_COLUMNS)
    + ", d.title, d.source FROM passages p JOIN documents d ON d.id = p.document_id"
)


def _insert(table: str, columns: Sequence[str]) -> str:
    """An ``INSERT`` of named parameters, one per column."""
    names = ", ".join(columns)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + c for c in columns)})"


def create_database(path: Path) -> sqlite3.Connection:
    """A new, empty ``store.sqlite`` open for writing (commit and close it when done)."""
    connection = sqlite3.connect(path)
    # the file is fsynced with its segment before any generation lists it: no journal needed
    connection.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
    return connection


def insert_rows(
    connection: sqlite3.Connection, documents: Iterable[DocumentRow], passages: Iterable[PassageRow]
) -> None:
    """Insert document and passage rows."""
    connection.executemany(
        _insert("documents", DOCUMENT_COLUMNS),
        (
            {**vars(d), "pages": json.dumps(d.pages), "groups": json.dumps(d.groups)}
            | {"tags": json.dumps(d.tags)}
            for d in documents
        ),
    )
    connection.executemany(_insert("passages", PASSAGE_COLUMNS), (vars(p) for p in passages))


def write_database(path: Path, documents: list[DocumentRow], passages: list[PassageRow]) -> None:
    """Create a ``store.sqlite`` holding ``documents`` and ``passages``."""
    connection = create_database(path)
    try:
        insert_rows(connection, documents, passages)
        connection.commit()
    finally:
        connection.close()


def document_row(row: sqlite3.Row, source: str) -> DocumentRow:
    """A ``documents`` row, with ``source`` as readers may see it."""
    present = set(row.keys())
    values = {column: row[column] for column in DOCUMENT_COLUMNS if column in present}
    for name in ("pages", "groups", "tags"):
        if name in values:
            values[name] = json.loads(values[name])
    return DocumentRow(**{**values, "source": source})


def passage_row(row: sqlite3.Row, source: str) -> PassageRow:
    """A row of :data:`PASSAGES_WITH_DOCUMENT`, with ``source`` as readers may see it."""
    values = {column: row[column] for column in PASSAGE_COLUMNS}
    return PassageRow(**values, title=row["title"], source=source)


class Database:
    """A read-only connection to a generation's SQLite file, shared by the request threads."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(
            f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        self._connection.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection (after the last reader is done with it)."""
        with self._lock:
            self._connection.close()

    def select(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Every row ``sql`` returns."""
        with self._lock:
            return self._connection.execute(sql, tuple(params)).fetchall()

    def select_in(self, sql: str, values: Iterable[object]) -> list[sqlite3.Row]:
        """Rows of ``sql`` (with ``IN ({marks})`` in it) for every value, asked in chunks.

        The chunks' rows follow one another in the order of ``values``.
        """
        wanted = list(values)
        rows: list[sqlite3.Row] = []
        for begin in range(0, len(wanted), CHUNK):
            chunk = wanted[begin : begin + CHUNK]
            rows.extend(self.select(sql.format(marks=",".join("?" * len(chunk))), chunk))
        return rows
