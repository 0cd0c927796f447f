"""Websites kept current: the service's sync of a collection built from a URL (one at a time
per collection), and ``qa serve --sync-every``'s thread that re-syncs every such collection
on a schedule. A failed sync leaves the live generation as it was; it is logged and kept in
the collection's ``site_state.json``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from qa.config import Settings, validate_collection_name
from qa.errors import InvalidInput, QAError
from qa.ingest.web import is_url
from qa.store.indexer import Indexer
from qa.store.layout import list_collections
from qa.store.manifest import read_manifest
from qa.store.report import IndexReport
from qa.store.sites import sync_site

log = logging.getLogger("qa.store.sites")

_LOCKS: dict[Path, threading.Lock] = {}  # one sync at a time per collection folder
_LOCKS_GUARD = threading.Lock()


def sync_lock(collection_dir: Path) -> threading.Lock:
    """The lock a collection's syncs take (shared by every service of the process)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(collection_dir.resolve(), threading.Lock())


def site_source(collection_dir: Path) -> str | None:
    """The start URL a collection was built from (``None``: it was built from folders)."""
    try:
        sources = read_manifest(collection_dir).sources
    except QAError:
        return None
    return sources[0] if sources and all(is_url(s) for s in sources) else None


class SiteSync:
    """The service's website syncs (mixed into :class:`~qa.service.QAService`)."""

    settings: Settings
    indexer: Indexer
    _written: Callable[[IndexReport], IndexReport]
    scheduler: SyncScheduler | None = None

    def sync_site(
        self,
        url: str | None = None,
        collection: str | None = None,
        full: bool = False,
        progress: bool = False,
    ) -> IndexReport:
        """Crawl ``url`` (default: the one the collection was built from) into the collection,
        after any sync of it in progress."""
        name = validate_collection_name(collection or self.settings.collection)
        directory = self.settings.collection_dir(name)
        url = url or site_source(directory)
        if url is None:
            raise InvalidInput(f"collection {name!r} was not built from a website")
        with sync_lock(directory):
            return self._written(sync_site(self.indexer, name, url, full, progress))

    def start_site_sync(self) -> None:
        """Re-sync every collection built from a URL each ``QA_SYNC_EVERY`` (``qa serve``)."""
        every = self.settings.sync_every
        if every and self.scheduler is None:
            self.scheduler = SyncScheduler(self, every)


class SyncScheduler:
    """A daemon thread that syncs the service's website collections every ``every`` seconds
    (the first time one interval after it starts)."""

    def __init__(self, service: SiteSync, every: float) -> None:
        self.service = service
        self.every = every
        self._stop = threading.Event()
        self.rounds = 0  # finished rounds (tests wait on it)
        self._thread = threading.Thread(target=self._run, name="qa-site-sync", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.run_once()
            self.rounds += 1

    def run_once(self) -> None:
        """Sync each website collection once; one already syncing is left to that sync."""
        settings = self.service.settings
        for name in list_collections(settings.index_dir):
            directory = settings.collection_dir(name)
            url = site_source(directory)
            if url is None or self._stop.is_set():
                continue
            lock = sync_lock(directory)
            if not lock.acquire(blocking=False):
                log.info("collection %r is already syncing; this round skips it", name)
                continue
            try:
                self.service._written(sync_site(self.service.indexer, name, url))
            except QAError as exc:  # logged as JSON by the sync; the live generation stays
                log.warning("scheduled sync of %r failed: %s", name, exc)
            except Exception:
                log.exception("scheduled sync of %r failed", name)
            finally:
                lock.release()
