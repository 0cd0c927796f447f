"""Following the folders a collection was built from (``qa watch``, ``qa serve --watch``).

The operating system reports file events (``watchfiles``: inotify on Linux); a burst of them
(an editor's save, a copy of a whole folder, a rename) is grouped until the folders have been
quiet for ``QA_WATCH_DEBOUNCE_MS``, then applied as one update through the ordinary indexing
path: the folders are read again with the collection's recorded options, only documents whose
content hash changed are embedded, vanished ones are removed, and the new generation is
switched in atomically, so readers never see a half-applied change and never fail. Events
that arrive during an update are grouped into the next one; one update at a time per
collection (each collection has one thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import watchfiles

from qa.errors import Busy, QAError
from qa.ingest.selection import IGNORE_FILE
from qa.store.background import SegmentMaintenance
from qa.store.layout import current_generation, list_collections
from qa.store.manifest import read_manifest
from qa.store.report import IndexReport
from qa.store.status import SourceListing

log = logging.getLogger("qa.store.watch")

MAX_WAIT_FACTOR = 10  # a folder that never goes quiet is still updated every 10 debounces
BUSY_RETRY_S = 1.0  # another writer (the write API) holds the lock: try again this much later


class FolderWatcher:
    """One collection's folders followed in a thread of their own."""

    def __init__(
        self,
        name: str,
        roots: list[Path],
        update: Callable[[], IndexReport],
        debounce_ms: int,
        ignore: list[Path] | None = None,
    ) -> None:
        self.name = name
        self.roots = [r.resolve() for r in roots]
        self.update = update
        self.debounce_ms = debounce_ms
        self.ignore = [p.resolve() for p in ignore or []]
        self.updates = 0  # updates applied (tests count them: 20 saves, one update)
        self.last: IndexReport | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()  # the first catch-up is done and events are followed
        self._busy = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"qa-watch-{name}", daemon=True)

    def start(self) -> FolderWatcher:
        self._thread.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the watcher follows events (after its first catch-up)."""
        return self._ready.wait(timeout)

    def wait_idle(self, quiet_s: float, timeout: float) -> bool:
        """Block until no update has started for ``quiet_s`` and none runs (tests)."""
        deadline = time.monotonic() + timeout
        seen, since = self.updates, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if self.updates != seen or self._busy.locked():
                seen, since = self.updates, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return True
        return False

    def close(self) -> None:
        """Stop after the update in progress, if any."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def relevant(self, change: watchfiles.Change, path: str) -> bool:
        """Whether an event can change the collection: not a hidden file or folder (but a
        .qaignore) and not inside the index folder (its writes would wake the watcher forever)."""
        where = Path(path)
        if any(where == p or p in where.parents for p in self.ignore):
            return False
        root = next((r for r in self.roots if r == where or r in where.parents), None)
        parts = where.relative_to(root).parts if root is not None else where.parts
        hidden = [part for part in parts if part.startswith(".")]
        return not hidden or (hidden == [IGNORE_FILE] and where.name == IGNORE_FILE)

    def _run(self) -> None:
        try:
            self._follow()
        except Exception:  # e.g. the OS's limit of watched folders (fs.inotify.max_user_watches)
            log.exception("collection %r: watching stopped", self.name)
        finally:
            self._ready.set()  # nobody waits for a watcher that has stopped

    def _follow(self) -> None:
        events = watchfiles.watch(
            *self.roots,
            watch_filter=self.relevant,
            step=self.debounce_ms,
            debounce=self.debounce_ms * MAX_WAIT_FACTOR,
            stop_event=self._stop,
            rust_timeout=500,  # how often an idle watcher looks at the stop event
            yield_on_timeout=True,
            raise_interrupt=False,
        )
        for changes in events:  # the first yield comes once the OS watch is in place
            if self._stop.is_set():
                return
            if not self._ready.is_set():
                self._apply("catch-up")  # what changed while nobody watched
                self._ready.set()
            elif changes:
                log.info("collection %r: %d file events", self.name, len(changes))
                self._apply(f"{len(changes)} file events")

    def _apply(self, why: str) -> None:
        """One update; another writer's lock is waited out, any other failure is logged (the
        live generation stays as it was) and the next event tries again."""
        with self._busy:
            while not self._stop.is_set():
                try:
                    report = self.update()
                except Busy:
                    time.sleep(BUSY_RETRY_S)
                    continue
                except QAError as exc:
                    log.warning("collection %r: update after %s failed: %s", self.name, why, exc)
                except Exception:
                    log.exception("collection %r: update after %s failed", self.name, why)
                else:
                    self.updates += 1
                    self.last = report
                    log.info("collection %r (%s): %s", self.name, why, report.summary())
                return


class FolderWatching(SegmentMaintenance, SourceListing):
    """Following collections' folders (mixed into :class:`~qa.service.QAService`)."""

    def watch(self, names: list[str] | None = None) -> dict[str, FolderWatcher]:
        """Start following the folders of ``names`` (default: every collection built from
        folders); returns the watchers started."""
        watchers: dict[str, FolderWatcher] = vars(self).setdefault("watchers", {})
        for name in names or list_collections(self.settings.index_dir):
            directory = self.settings.collection_dir(name)
            if name in watchers or current_generation(directory) is None:
                continue
            sources = [Path(s) for s in read_manifest(directory).sources]
            roots = [s for s in sources if s.is_absolute() and s.exists()]
            if not roots:
                log.info("collection %r has no folder to watch", name)
                continue
            watchers[name] = FolderWatcher(
                name,
                roots,
                lambda n=name: self.sync_folders(n),  # type: ignore[misc]
                self.settings.watch_debounce_ms,
                ignore=[self.settings.index_dir],
            ).start()
            log.info("watching %s for collection %r", ", ".join(map(str, roots)), name)
        return watchers

    def sync_folders(self, name: str) -> IndexReport:
        """Index the collection's recorded folders again with its recorded options."""
        manifest = read_manifest(self.settings.collection_dir(name))
        sources = [Path(s) for s in manifest.sources]
        options = manifest.source_options
        return self._written(self.indexer.index_paths(name, sources, options=options))

    def stop_watching(self) -> None:
        """Stop every watcher (after the update each is applying)."""
        for watcher in vars(self).pop("watchers", {}).values():
            watcher.close()
