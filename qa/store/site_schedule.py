"""Websites kept current: the service's sync of a collection built from a URL (one at a time
per collection), and ``qa serve``'s thread that re-syncs such collections on a schedule: each
at its own interval (``qa index URL --sync-every``, kept in its ``site_state.json``), else at
the server's (``--sync-every`` / ``QA_SYNC_EVERY``). A failed sync leaves the live generation
as it was; it is logged and kept in the collection's ``site_state.json``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from qa.config import Settings, validate_collection_name
from qa.errors import InvalidInput, QAError
from qa.ingest.web import is_url
from qa.ingest.web.state import read_interval
from qa.store.indexer import Indexer
from qa.store.layout import list_collections
from qa.store.manifest import read_manifest
from qa.store.report import IndexReport
from qa.store.sites import sync_site

log = logging.getLogger("qa.store.sites")

MAX_TICK = 30.0  # seconds between the scheduler's looks for a collection whose time has come
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
        every: float | None = None,
    ) -> IndexReport:
        """Crawl ``url`` (default: the one the collection was built from) into the collection,
        after any sync of it in progress; ``every`` sets its own schedule (0 clears it)."""
        name = validate_collection_name(collection or self.settings.collection)
        directory = self.settings.collection_dir(name)
        url = url or site_source(directory)
        if url is None:
            raise InvalidInput(f"collection {name!r} was not built from a website")
        with sync_lock(directory):
            return self._written(sync_site(self.indexer, name, url, full, progress, every))

    def start_site_sync(self) -> None:
        """Start re-syncing website collections on their schedules (``qa serve``)."""
        if self.scheduler is None:
            self.scheduler = SyncScheduler(self, self.settings.sync_every)


class SyncScheduler:
    """A daemon thread that syncs the service's website collections, each at its own interval
    or ``every`` seconds (``None``: only those with their own), the first time one interval
    after it starts."""

    def __init__(self, service: SiteSync, every: float | None) -> None:
        self.service = service
        self.every = every
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._last: dict[str, float] = {}  # when each collection's last scheduled sync began
        self.rounds = 0  # rounds that synced something (tests wait on it)
        self._thread = threading.Thread(target=self._run, name="qa-site-sync", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def interval(self, directory: Path) -> float | None:
        """How often a collection is re-synced: its own schedule, else the server's."""
        return read_interval(directory) or self.every

    def _tick(self) -> float:
        settings = self.service.settings
        names = list_collections(settings.index_dir)
        every = [self.interval(settings.collection_dir(name)) for name in names]
        return min([e for e in every if e] + [MAX_TICK])

    def _run(self) -> None:
        while not self._stop.wait(self._tick()):
            if self.run_once(due_only=True):
                self.rounds += 1

    def run_once(self, due_only: bool = False) -> int:
        """Sync each website collection that has a schedule (with ``due_only``, those whose
        interval has passed); one already syncing is left to that sync. Returns how many
        syncs ran."""
        settings = self.service.settings
        ran = 0
        for name in list_collections(settings.index_dir):
            directory = settings.collection_dir(name)
            url, every = site_source(directory), self.interval(directory)
            if url is None or every is None or self._stop.is_set():
                continue
            if due_only and time.monotonic() - self._last.get(name, self._started) < every:
                continue
            self._last[name] = time.monotonic()
            ran += self._sync(name, directory, url)
        return ran

    def _sync(self, name: str, directory: Path, url: str) -> int:
        """One scheduled sync (0 when one of the collection is already running)."""
        lock = sync_lock(directory)
        if not lock.acquire(blocking=False):
            log.info("collection %r is already syncing; this round skips it", name)
            return 0
        try:
            self.service._written(sync_site(self.service.indexer, name, url))
        except QAError as exc:  # logged as JSON by the sync; the live generation stays
            log.warning("scheduled sync of %r failed: %s", name, exc)
        except Exception:
            log.exception("scheduled sync of %r failed", name)
        finally:
            lock.release()
        return 1
