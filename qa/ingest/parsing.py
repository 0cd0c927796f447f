"""Parse files in worker processes, each file within a time and a memory budget.

Parsers are C libraries and large Python ones (libxml2, pypdf) fed files from anyone: a
file that makes one loop or balloon must cost one skipped file, not a stuck ``qa index`` or
a server out of memory. So files are parsed in worker processes:

* each a fresh interpreter (``python -c`` started with ``subprocess``, which execs at once:
  the process that starts it, a server with threads, is never forked) that imports only
  :mod:`qa.ingest.documents` and the parsers, never torch. (``multiprocessing``'s "spawn" start
  method also execs, but then runs the parent's ``__main__`` again in the worker: whatever
  a script imports at the top, torch included, and a script read from stdin can't start
  workers at all.) Messages go over a socket pair as ``multiprocessing`` connections:
  plain tuples and dicts, and a file's bytes as raw bytes;
* with their address space capped (``RLIMIT_AS``) at what they use once started plus
  ``QA_PARSE_MEMORY_MB``;
* killed, and started again for the next file, when a file takes longer than
  ``QA_PARSE_TIMEOUT_S``.

A file over the budget becomes a :class:`~qa.ingest.documents.Skip` saying so. Workers are
reused across files (start-up is paid once per worker); :class:`ParserPool` parses a list
of files on several workers at once and yields the results in input order.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Self

from qa.ingest.documents import DEFAULT_MAX_FILE_BYTES, SUPPORTED_SUFFIXES, Document, Skip
from qa.ingest.parse_process import _stop_all, _Worker, timeout_reason

if TYPE_CHECKING:
    from qa.config import Settings

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MEMORY_MB = 1024
AHEAD = 8  # results parsed ahead of the one being waited for, per worker


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


class ParserPool:
    """Worker processes that parse files within a time and a memory budget.

    Thread-safe: each call takes an idle worker (waiting for one when all are busy).
    Workers start on first use and are reused; close the pool (or use it as a context
    manager) to stop them.
    """

    def __init__(
        self,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        workers: int | None = None,
    ) -> None:
        if timeout_s <= 0 or memory_mb <= 0:
            raise ValueError("the parse timeout and memory cap must be positive")
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self._workers = [_Worker(self.memory_mb) for _ in range(workers or default_workers())]
        self._idle = list(self._workers)
        self._available = threading.Condition()
        self._closed = False
        # stop the processes if the pool is dropped without close() (or at exit); a worker
        # whose parent dies without either exits by itself within a second
        self._finalizer = weakref.finalize(self, _stop_all, list(self._workers))

    @classmethod
    def from_settings(cls, settings: Settings, workers: int | None = None) -> ParserPool:
        return cls(settings.parse_timeout_s, settings.parse_memory_mb, workers)

    @property
    def size(self) -> int:
        return len(self._workers)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (those in use are killed when their caller is done)."""
        with self._available:
            self._closed = True
            idle, self._idle = self._idle, []
            self._available.notify_all()
        for worker in idle:
            worker.shutdown()
        self._finalizer.detach()

    def _take(self, block: bool = True) -> _Worker | None:
        with self._available:
            while not self._idle:
                if self._closed:
                    raise RuntimeError("the parser pool is closed")
                if not block:
                    return None
                self._available.wait()
            if self._closed:
                raise RuntimeError("the parser pool is closed")
            return self._idle.pop()

    def _give_back(self, worker: _Worker) -> None:
        with self._available:
            if self._closed:
                worker.shutdown()
                return
            self._idle.append(worker)
            self._available.notify()

    def parse_bytes(self, path: Path, doc_id: str, data: bytes) -> Document:
        """Parse a file's content (named ``path``, not read from it); raises :class:`Skip`."""
        return self._one(("bytes", str(path), doc_id, 0), data)

    def parse_path(
        self, path: Path, doc_id: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES
    ) -> Document:
        """Read and parse the file at ``path`` (the worker reads it); raises :class:`Skip`."""
        return self._one(("path", str(path), doc_id, max_bytes), None)

    def _one(self, request: tuple[str, str, str, int], data: bytes | None) -> Document:
        worker = self._take()
        assert worker is not None
        try:
            result = self._run(worker, request, data)
        except BaseException:  # e.g. Ctrl-C mid-file: its reply must not reach the next caller
            worker.stop()
            raise
        finally:
            self._give_back(worker)
        if isinstance(result, Skip):
            raise result
        return result

    def _run(
        self, worker: _Worker, request: tuple[str, str, str, int], data: bytes | None
    ) -> Document | Skip:
        worker.submit(request, data)
        conn = worker.conn
        assert conn is not None
        if conn.poll(self.timeout_s):
            return worker.receive(request[1])
        worker.stop()
        return Skip(request[1], timeout_reason(self.timeout_s))

    def parse_files(
        self,
        items: Iterable[tuple[Path, str] | Document | Skip],
        max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> Iterator[Document | Skip]:
        """Parse ``(path, document id)`` pairs on all free workers; results in input order.

        For single-document files (not JSONL). A :class:`Document` or :class:`Skip` among
        the items is passed through in its place, so a caller can stream what it already
        knows (a JSONL file's documents, a broken link) with the files to parse. Each file
        has the whole time budget from when a worker starts on it. Stopping the iteration
        early kills the workers that were still parsing (they start again when next needed).
        """
        first = self._take()
        assert first is not None
        held = [first]
        while (extra := self._take(block=False)) is not None:
            held.append(extra)
        for worker in held:  # start them side by side, not one after the other
            worker.launch()
        batch = _Batch(iter(items), held, self.timeout_s, max_bytes)
        try:
            while True:
                batch.fill()
                yield from batch.ready()
                if not batch.busy:
                    if batch.finished:
                        return
                    continue
                batch.collect()
        finally:
            for worker in batch.busy.values():
                worker.stop()  # abandoned mid-file: its reply would confuse the next caller
            for worker in held:
                self._give_back(worker)


class _Batch:
    """The bookkeeping of one :meth:`ParserPool.parse_files` call: items handed to idle
    workers (at most ``AHEAD`` per worker beyond the one awaited), results kept by position."""

    def __init__(
        self,
        pending: Iterator[tuple[Path, str] | Document | Skip],
        workers: list[_Worker],
        timeout_s: float,
        max_bytes: int,
    ) -> None:
        self.pending = pending
        self.idle = list(workers)
        self.size = len(workers)
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.busy: dict[Connection, _Worker] = {}
        self.done: dict[int, Document | Skip] = {}
        self.submitted = self.returned = 0
        self.exhausted = False

    @property
    def finished(self) -> bool:
        return self.exhausted and self.returned == self.submitted

    def fill(self) -> None:
        """Hand items to idle workers (pass documents and skips straight through)."""
        while (
            self.idle and not self.exhausted and self.submitted - self.returned < AHEAD * self.size
        ):
            try:
                item = next(self.pending)
            except StopIteration:
                self.exhausted = True
                return
            if isinstance(item, (Document, Skip)):
                self.done[self.submitted] = item
            else:
                self._submit(Path(item[0]), item[1])
            self.submitted += 1

    def _submit(self, path: Path, doc_id: str) -> None:
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES - {".jsonl"}:
            self.done[self.submitted] = Skip(
                str(path), f"unsupported file type {suffix or '(none)'!r}"
            )
            return
        worker = self.idle.pop()
        worker.submit(("path", str(path), doc_id, self.max_bytes))
        worker.request = (self.submitted, path)
        worker.deadline = time.monotonic() + self.timeout_s
        assert worker.conn is not None
        self.busy[worker.conn] = worker

    def ready(self) -> Iterator[Document | Skip]:
        """The results that are next in input order."""
        while self.returned in self.done:
            result = self.done.pop(self.returned)
            self.returned += 1
            yield result

    def collect(self) -> None:
        """Wait for the next reply (or deadline); a worker past its deadline is killed."""
        nearest = min(worker.deadline for worker in self.busy.values())
        for conn in wait(list(self.busy), timeout=max(0.0, nearest - time.monotonic())):
            worker = self.busy.pop(conn)  # type: ignore[arg-type]
            assert worker.request is not None
            index, path = worker.request
            self.done[index] = worker.receive(str(path))
            worker.request = None
            self.idle.append(worker)
        now = time.monotonic()
        for conn, worker in list(self.busy.items()):
            if worker.deadline <= now:
                del self.busy[conn]
                assert worker.request is not None
                index, path = worker.request
                worker.stop()
                self.done[index] = Skip(str(path), timeout_reason(self.timeout_s))
                self.idle.append(worker)


def parse_files(
    items: Iterable[tuple[Path, str] | Document | Skip],
    settings: Settings | None = None,
    *,
    pool: ParserPool | None = None,
    max_bytes: int | None = None,
) -> Iterator[Document | Skip]:
    """Documents (or skips) of ``(path, document id)`` pairs, in order, each within the budget.

    Uses ``pool`` when given, else a pool made from ``settings`` (``QA_PARSE_TIMEOUT_S``,
    ``QA_PARSE_MEMORY_MB``, ``QA_MAX_FILE_MB``) for this call only.
    """
    if max_bytes is None:
        max_bytes = (
            int(settings.max_file_mb * 2**20) if settings is not None else DEFAULT_MAX_FILE_BYTES
        )
    if pool is not None:
        yield from pool.parse_files(items, max_bytes)
        return
    if settings is not None:
        owned = ParserPool.from_settings(settings)
    else:
        owned = ParserPool()
    with owned:
        yield from owned.parse_files(items, max_bytes)
