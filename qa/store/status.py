"""The status of every source a collection knows: indexed, unchanged, skipped or failed, why,
how many passages, its content hash, and when it was last checked and last changed.

Kept in ``index/<collection>/sources.sqlite`` beside the generations, written under the
writer lock by every indexing run in one transaction (SQLite's journal makes it atomic),
also by a run that found nothing to change (it still checked every file), and stamped with
the generation it describes. A run over a few documents rewrites only their rows: at a
million passages the whole status is 65 MB, which a JSON file had to read and write again
every time. When the stamp is not the live generation (a collection built before the status
existed, or a crash between the switch and this write) the listing falls back to what the
live generation's documents table knows: every document, indexed, without times. A
``sources.json`` of earlier versions is read until the next run moves it into the table.

A record's fields are the ones a crawled URL's state has too (``source``, ``state``,
``reason``, ``passages``, ``content_hash``, ``checked_at``, ``changed_at``), so web sources
can be listed the same way.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from qa.config import Settings, validate_collection_name
from qa.errors import CollectionNotFound, StoreError, UnknownCollection
from qa.ingest.documents import Skip
from qa.store.layout import DELETIONS, SEGMENTS, current_generation, list_collections
from qa.store.manifest import read_manifest
from qa.store.segment import SQLITE
from qa.store.sql import Database
from qa.store.status_table import (
    STATUS,
    SourceRecord,
    State,
    StatusTable,
    read_status,
)

if TYPE_CHECKING:
    from qa.store.changes import Update
    from qa.store.report import IndexReport

log = logging.getLogger("qa.sources")

STATES: tuple[State, ...] = ("failed", "skipped", "indexed", "unchanged")  # listing order
# A skip whose reason starts with one of these was chosen (a rule, a copy, a kind of file
# that is not indexed, nothing to index); any other reason is a file that could not be read.
CHOSEN = (
    "excluded by",
    "ignored by",
    "not matched by",
    "duplicate",
    "symbolic link to a path outside",
    "unsupported file type",
    "empty",
    "file is ",  # over QA_MAX_FILE_MB
    "HTML page has no visible text",
    "no text to index",
    "not a regular file",
)


class SourceListing:
    """Listing a collection's sources (mixed into :class:`~qa.service.QAService`)."""

    settings: Settings

    def sources(
        self, collection: str | None = None, state: State | None = None
    ) -> tuple[str, str, list[SourceRecord]]:
        """The collection's name, live generation and sources (failures first)."""
        return collection_sources(self.settings, collection, state)


def collection_sources(
    settings: Settings, collection: str | None = None, state: State | None = None
) -> tuple[str, str, list[SourceRecord]]:
    """A collection's name, live generation and sources, read from disk (no model needed)."""
    try:
        name = validate_collection_name(collection or settings.collection)
    except ValueError:
        raise UnknownCollection(str(collection), list_collections(settings.index_dir)) from None
    directory = settings.collection_dir(name)
    if current_generation(directory) is None:
        raise UnknownCollection(name, list_collections(settings.index_dir))
    generation, records = list_sources(directory, state)
    return name, generation, records


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def state_of(skip: Skip) -> State:
    """``skipped`` when a rule or the file's kind left it out, ``failed`` when it could not be read."""
    if skip.failed is not None:  # the reader said (a crawled page: qa/store/sites.py)
        return "failed" if skip.failed else "skipped"
    return "skipped" if skip.reason.startswith(CHOSEN) else "failed"


def live_documents(
    directory: Path, generation: str, ids: Iterable[str] | None = None
) -> dict[str, tuple[str, str, int]]:
    """``{document_id: (source, content_hash, passages)}`` of a generation (of its documents
    ``ids`` only, when given), from its segments' SQLite files (no vectors are loaded)."""
    manifest = read_manifest(directory, generation)
    try:
        deletions = json.loads((directory / generation / DELETIONS).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"collection {directory.name!r}: {DELETIONS} unreadable ({exc})") from None
    out: dict[str, tuple[str, str, int]] = {}
    sql = (
        "SELECT d.id, d.source, d.content_hash, COUNT(p.id) AS n FROM documents d "
        "LEFT JOIN passages p ON p.document_id = d.id {where} GROUP BY d.id"
    )
    wanted = None if ids is None else sorted(set(ids))
    for ref in manifest.segments:
        hidden = set(deletions.get(ref.name, ()))
        database = Database(directory / SEGMENTS / ref.name / SQLITE)
        try:
            if wanted is None:
                rows = database.select(sql.format(where=""))
            else:
                rows = database.select_in(sql.format(where="WHERE d.id IN ({marks})"), wanted)
            for row in rows:
                if row["id"] not in hidden:
                    out[row["id"]] = (row["source"], row["content_hash"], int(row["n"]))
        finally:
            database.close()
    return out


def list_sources(directory: Path, state: State | None = None) -> tuple[str, list[SourceRecord]]:
    """The live generation's name and its sources (of ``state`` only, when given), failures
    first, then by source."""
    live = current_generation(directory)
    if live is None:
        raise CollectionNotFound(f"collection {directory.name!r} has not been indexed")
    status = read_status(directory)
    if status is not None and status.generation == live:
        records = status.sources
    else:  # no record of this generation: what its documents table knows
        records = [
            SourceRecord(
                source=source, state="indexed", passages=n, content_hash=digest, document_id=key
            )
            for key, (source, digest, n) in live_documents(directory, live).items()
        ]
    chosen = [r for r in records if state is None or r.state == state]
    return live, sorted(chosen, key=lambda r: (STATES.index(r.state), r.source))


def record_run(directory: Path, update: Update, report: IndexReport) -> None:
    """Write the status after a run (the writer lock held), and its one JSON log line. The
    run itself has succeeded by now: a status that can't be written is logged, not raised."""
    try:
        _record(directory, update, report)
    except (OSError, StoreError) as exc:
        log.warning("collection %r: source status not written (%s)", directory.name, exc)


def _record(directory: Path, update: Update, report: IndexReport) -> None:
    live = current_generation(directory)
    if live is None or update.plan is None:
        return
    try:
        table = StatusTable(directory)
    except sqlite3.DatabaseError:  # not a database any more: the status is derived, start again
        (directory / STATUS).unlink(missing_ok=True)
        table = StatusTable(directory)
    try:
        _record_into(table, directory, live, update, report)
    except sqlite3.Error as exc:
        raise StoreError(f"{STATUS}: {exc}") from None
    finally:
        table.close()


def _record_into(
    table: StatusTable, directory: Path, live: str, update: Update, report: IndexReport
) -> None:
    now, before, plan = _now(), table.generation(), update.plan
    assert plan is not None  # checked by the caller
    judged, previous = plan.judged, plan.previous
    # a few documents given, and the status of the generation they change: keep the rest
    partial = (
        before is not None
        and previous is not None
        and not update.remove_missing
        and before == previous.generation
    )
    touched = plan.hidden | set(judged) if partial else set()
    old = table.documents(touched if partial else None)
    records = []
    for key, (source, digest, n) in live_documents(
        directory, live, judged if partial else None
    ).items():
        last = old.get(key)
        verdict = judged.get(key)
        if verdict is None:  # not part of this run (an upload beside the folders)
            fresh = "indexed" if last is None else last.state
            checked, changed = (None, None) if last is None else (last.checked_at, last.changed_at)
        else:
            fresh = "indexed" if verdict in ("new", "changed") else "unchanged"
            checked = now
            changed = now if fresh == "indexed" else (last.changed_at if last else None)
        records.append(
            SourceRecord(
                source=source,
                state=fresh,
                passages=n,
                content_hash=digest,
                checked_at=checked,
                changed_at=changed,
                document_id=key,
            )
        )
    skips = _skip_records([*update.skipped, *report.skipped], now)
    table.write(
        live,
        now,
        records + skips,
        everything=not partial and update.remove_missing,
        replaced=touched if partial else old.keys(),
        # an upload: earlier skips still hold, unless their source is named again
        kept_skips=not update.remove_missing and before is not None,
    )
    _log_summary(directory.name, live, report, table.count(), skips)


def _skip_records(skips: Iterable[Skip], now: str) -> list[SourceRecord]:
    """One record per skipped source (the first reason given for it)."""
    out: dict[str, SourceRecord] = {}
    for skip in skips:
        out.setdefault(
            skip.source,
            SourceRecord(
                source=skip.source, state=state_of(skip), reason=skip.reason, checked_at=now
            ),
        )
    return list(out.values())


def _log_summary(
    name: str,
    generation: str,
    report: IndexReport,
    documents: int,
    skips: list[SourceRecord],
) -> None:
    """One JSON line a log collector can count: what the run added, updated, removed, left
    unchanged, skipped and failed."""
    line = {
        "event": "sources_synced",
        "collection": name,
        "generation": generation,
        "added": report.added,
        "updated": report.updated,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "skipped": sum(r.state == "skipped" for r in skips),
        "failed": sum(r.state == "failed" for r in skips),
        "documents": documents,
    }
    log.info("%s", json.dumps(line))
