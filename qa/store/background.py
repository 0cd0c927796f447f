"""Merging segments in the background of a server: after a write, the collection's segments
are merged by the size-tiered policy in a thread of its own, while readers go on reading the
live generation and writers go on writing (a merge takes the writer lock only to commit)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from qa.config import Settings, validate_collection_name
from qa.errors import UnknownCollection
from qa.store.dense import DenseParams
from qa.store.indexer import Indexer, IndexReport
from qa.store.layout import current_generation, list_collections
from qa.store.merge import MergePolicy, MergeReport, optimize

log = logging.getLogger("qa.store.background")


class BackgroundMerger:
    """One daemon thread that merges the collections it is told were written."""

    def __init__(self, params: DenseParams, policy: MergePolicy) -> None:
        self.params = params
        self.policy = policy
        self._pending: set[Path] = set()
        self._wake = threading.Condition()
        self._stopped = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="qa-merger", daemon=True)
        self._thread.start()

    def request(self, collection_dir: Path) -> None:
        """Merge ``collection_dir`` if its policy says so (soon, in the merger's thread)."""
        with self._wake:
            self._pending.add(collection_dir)
            self._idle.clear()
            self._wake.notify()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every requested merge is done (tests, shutdown)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Stop after the merge in progress, if any."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopped:
                    self._idle.set()
                    self._wake.wait()
                if self._stopped:
                    self._idle.set()
                    return
                collection_dir = self._pending.pop()
            try:
                report = optimize(collection_dir, self.params, self.policy)
                if report.merges:
                    log.info("collection %r: %s", collection_dir.name, report.summary())
            except Exception:
                log.exception("background merge of %s failed", collection_dir.name)


class SegmentMaintenance:
    """The service's segment upkeep (mixed into :class:`~qa.service.QAService`)."""

    settings: Settings
    indexer: Indexer
    merger: BackgroundMerger | None

    def optimize(self, collection: str | None = None, everything: bool = False) -> MergeReport:
        """Merge the collection's segments by the size-tiered policy (all into one with
        ``everything``); readers keep answering from the live generation meanwhile."""
        name = validate_collection_name(collection or self.settings.collection)
        directory = self.settings.collection_dir(name)
        if current_generation(directory) is None:
            raise UnknownCollection(name, list_collections(self.settings.index_dir))
        policy = MergePolicy(factor=self.settings.merge_factor)
        return optimize(directory, self.indexer.dense_params(), policy, everything)

    def start_background_merges(self) -> None:
        """Merge segments in a thread of their own after every write (``qa serve``)."""
        policy = MergePolicy(factor=self.settings.merge_factor)
        if self.settings.background_merge and self.merger is None:
            self.merger = BackgroundMerger(self.indexer.dense_params(), policy)

    def _written(self, report: IndexReport) -> IndexReport:
        """After a write: ask the background merger to look at the collection."""
        if self.merger is not None and report.changed:
            self.merger.request(self.settings.collection_dir(report.collection))
        return report
