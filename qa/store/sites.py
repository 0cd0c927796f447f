"""A collection built from a website: crawl it, and make the collection mirror it.

A sync crawls the site (conditional requests for the pages it knows), then commits one
generation through the indexer: pages whose extracted text changed are split and embedded
again, the others stay as they are (their content hash is unchanged), pages gone (404/410),
out of scope or disallowed by robots.txt are removed, and a page that failed this time
(a 500, a timeout) keeps its last good version. Nothing reaches the live generation before
the switch, so a sync that fails leaves it untouched.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from qa.config import Settings
from qa.errors import CollectionNotFound, QAError, SourceUnavailable, StoreError
from qa.ingest.documents import Document, Skip
from qa.ingest.parsing import ParserPool
from qa.ingest.web import (
    CrawlParams,
    CrawlResult,
    FetchParams,
    Known,
    PageResult,
    SiteState,
    canonical,
    crawl,
)
from qa.ingest.web.state import PageState, now
from qa.store.changes import Update, as_document
from qa.store.collection import Collection
from qa.store.indexer import Indexer
from qa.store.report import IndexReport

log = logging.getLogger("qa.store.sites")


def crawl_params(settings: Settings) -> CrawlParams:
    """The crawler's limits from ``QA_CRAWL_*``."""
    fetch = FetchParams(
        max_bytes=int(settings.crawl_max_page_mb * 2**20),
        timeout_s=settings.crawl_timeout_s,
        delay_s=settings.crawl_delay_s,
    )
    return CrawlParams(
        max_pages=settings.crawl_max_pages,
        max_depth=settings.crawl_max_depth,
        concurrency=settings.crawl_concurrency,
        fetch=fetch,
    )


class _PdfParser:
    """PDFs of a site parsed within QA_PARSE_TIMEOUT_S and QA_PARSE_MEMORY_MB, like files: one
    worker process, started when the first PDF arrives (most syncs have none)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: ParserPool | None = None
        self.lock = threading.Lock()

    def parse(self, name: Path, document_id: str, data: bytes) -> Document:
        with self.lock:
            if self.pool is None:
                self.pool = ParserPool.from_settings(self.settings, workers=1)
        return self.pool.parse_bytes(name, document_id, data)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


@dataclass
class SyncPlan:
    """What one sync writes: documents to (re)index and the ids kept or removed."""

    fetched: list[Document] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    kept: list[str] = field(default_factory=list)  # live ids that stay as they are


def sync_site(
    indexer: Indexer,
    collection: str,
    url: str,
    full: bool = False,
    progress: bool = False,
    every: float | None = None,
) -> IndexReport:
    """Crawl ``url`` and commit what changed into ``collection``; the per-URL state and a
    JSON summary line are written when the sync is done. ``every`` (seconds; 0 clears it)
    becomes the collection's own re-sync schedule, kept in its state file."""
    root = canonical(url)
    if root is None:
        raise SourceUnavailable(f"not an http(s) address: {url!r}")
    started = time.perf_counter()
    directory = indexer.settings.collection_dir(collection)
    state = SiteState.load(directory, root)
    if every is not None:
        state.sync_every = every or None
    previous = _live(directory)
    pdfs = _PdfParser(indexer.settings)
    try:
        live = previous.document_hashes() if previous is not None else {}
        known = _known(state, live, full)
        params = replace(crawl_params(indexer.settings), pdf_reader=pdfs.parse)
        result = crawl(root, params, known, _log_page if progress else None)
        plan = _plan(result, live)
        _check_readable(result, root)
        skipped = [_skip(page) for page in result.pages if page.result in ("skipped", "failed")]
        update = Update(
            _documents(plan, previous),
            remove_missing=True,  # every live document is given: the others are removed
            full=full,
            progress=progress,
            sources=[root],
            skipped=skipped,  # listed by qa sources beside the pages indexed
        )
        report = indexer.apply(collection, update)
    except QAError as exc:
        _record_failure(directory, state, str(exc))
        raise
    finally:
        pdfs.close()
        if previous is not None:
            previous.close()
    report.skipped = update.skipped + report.skipped
    _record(directory, state, result, report, time.perf_counter() - started)
    return report


def _live(directory: Path) -> Collection | None:
    try:
        return Collection.load(directory, verify=False)
    except (CollectionNotFound, StoreError):
        return None


def _known(state: SiteState, live: dict[str, str], full: bool) -> dict[str, Known]:
    """The URLs of the last sync; validators only for pages whose document is live (a
    ``304`` then means: keep it), and none for a full sync."""
    known = {}
    for url, page in state.pages.items():
        validated = not full and page.document_id in live and page.state != "skipped"
        known[url] = Known(
            page.etag if validated else None,
            page.last_modified if validated else None,
            page.document_id,
        )
    return known


def _plan(result: CrawlResult, live: dict[str, str]) -> SyncPlan:
    """New and changed pages in; gone and out-of-scope pages out; the rest kept."""
    plan = SyncPlan()
    staying: set[str] = set()
    for page in result.pages:
        if page.document is not None:
            plan.fetched.append(page.document)
            staying.add(page.document.id)
        elif page.result in ("gone", "out_of_scope") and page.document_id:
            plan.removed.add(page.document_id)
        elif page.document_id:  # unchanged, failed, or a duplicate of another URL
            staying.add(page.document_id)
    plan.removed -= staying
    plan.kept = sorted(set(live) - plan.removed - {d.id for d in plan.fetched})
    return plan


def _check_readable(result: CrawlResult, root: str) -> None:
    """A sync that read no page at all (the site down, the start page failing) fails."""
    if any(p.result in ("fetched", "unchanged") for p in result.pages):
        return
    first = next((p for p in result.pages if p.url == root), None)
    why = first.reason if first is not None else "no page in scope"
    raise SourceUnavailable(f"could not read {root}: {why}; the collection is unchanged")


def _documents(plan: SyncPlan, previous: Collection | None) -> Iterator[Document]:
    """The fetched pages, then every live document that stays (unchanged by hash)."""
    yield from plan.fetched
    if previous is not None:
        for row in previous.iter_documents(plan.kept):
            yield as_document(row)


def _log_page(page: PageResult) -> None:
    if page.result in ("skipped", "failed", "gone", "out_of_scope"):
        log.warning("%s %s: %s", page.result.replace("_", " "), page.url, page.reason)


def _record(
    directory: Path, state: SiteState, result: CrawlResult, report: IndexReport, seconds: float
) -> None:
    """Keep what this sync learnt per URL, and log its summary as one JSON line."""
    stamp = now()
    passages = _passage_counts(directory, [p.document.id for p in result.pages if p.document])
    counts = {"fetched": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    for page in result.pages:
        old = state.pages.get(page.url)
        if page.result in ("gone", "out_of_scope"):
            state.pages.pop(page.url, None)
            continue
        entry = _entry(page, old, stamp, passages)
        counts[page.result if page.result in counts else "skipped"] += 1
        state.pages[page.url] = entry
    state.root = result.start
    state.last_sync = {
        "event": "site_sync",
        "collection": report.collection,
        "source": result.start,
        "generation": report.generation,
        "added": report.added,
        "updated": report.updated,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "skipped": counts["skipped"],
        "failed": counts["failed"],
        "pages_fetched": counts["fetched"],
        "not_modified": counts["unchanged"],
        "truncated": result.truncated,
        "seconds": round(seconds, 2),
        "finished_at": stamp,
        "ok": True,
    }
    state.save(directory)
    log.info("%s", json.dumps(state.last_sync))


def _entry(
    page: PageResult, old: PageState | None, stamp: str, passages: dict[str, int]
) -> PageState:
    """The state of one URL after this sync."""
    entry = PageState(page.url, "skipped", page.reason, page.document_id, status=page.status)
    entry.checked_at = stamp
    entry.etag, entry.last_modified = page.etag, page.last_modified
    if old is not None:
        entry.content_hash, entry.passages, entry.changed_at = (
            old.content_hash,
            old.passages,
            old.changed_at,
        )
    if page.document is not None:
        digest = page.document.content_hash
        entry.state = "unchanged" if old is not None and old.content_hash == digest else "indexed"
        if entry.state == "indexed":
            entry.changed_at = stamp
        entry.content_hash, entry.passages = digest, passages.get(page.document.id, 0)
    elif page.result == "unchanged":
        entry.state = "unchanged"
    elif page.result == "failed":
        entry.state = "failed"
        if old is not None:  # the last good version stays indexed, and is asked for next time
            entry.etag, entry.last_modified = old.etag, old.last_modified
    return entry


def _passage_counts(directory: Path, document_ids: list[str]) -> dict[str, int]:
    """Live passages of each document in the generation just committed."""
    live = _live(directory)
    if live is None:
        return {}
    try:
        counts: dict[str, int] = {}
        for passage in live.passages_of(document_ids):
            counts[passage.document_id] = counts.get(passage.document_id, 0) + 1
        return counts
    finally:
        live.close()


def _record_failure(directory: Path, state: SiteState, reason: str) -> None:
    """A failed sync is reported in the state (the pages' entries stay as they were)."""
    state.last_sync = {"event": "site_sync", "ok": False, "error": reason, "finished_at": now()}
    if directory.is_dir():
        state.save(directory)
    log.error("%s", json.dumps({**state.last_sync, "source": state.root}))


def _skip(page: PageResult) -> Skip:
    """A page left out (skipped) or that could not be read (failed), for the status listing."""
    failed = page.result == "failed"
    return Skip(page.url, f"failed: {page.reason}" if failed else page.reason, failed=failed)
