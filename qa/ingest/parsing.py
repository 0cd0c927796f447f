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

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from qa.ingest.documents import DEFAULT_MAX_FILE_BYTES, SUPPORTED_SUFFIXES, Document, Skip

if TYPE_CHECKING:
    from qa.config import Settings

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MEMORY_MB = 1024
START_TIMEOUT_S = 120.0  # a worker's own start-up (not counted in any file's budget)
AHEAD = 8  # results parsed ahead of the one being waited for, per worker
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # where ``qa`` is imported from


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def timeout_reason(seconds: float) -> str:
    return f"parsing took longer than {seconds:g} s; skipped (raise QA_PARSE_TIMEOUT_S to allow more)"


def memory_reason(megabytes: int) -> str:
    return f"parsing needed more than {megabytes} MB; skipped (raise QA_PARSE_MEMORY_MB)"


def crash_reason(returncode: int | None, megabytes: int) -> str:
    if returncode is not None and returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exit code {returncode}"
    return (
        f"the parser process died ({how}); skipped (it may need more than {megabytes} MB: "
        "raise QA_PARSE_MEMORY_MB)"
    )


# --------------------------------------------------------------------------- the worker


def _address_space() -> int:
    """Bytes of address space this process uses now (0 when /proc can't tell)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _exit_with_parent(parent: int) -> None:
    """Exit once the process that started this worker is gone (even mid-file)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def worker_main(fd: int, memory_mb: int, parent: int) -> None:
    """A worker's loop: parse each request and reply, until the connection closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    # the parsers are imported now, so that neither their import time nor their memory is
    # charged to the first file
    import lxml.etree  # noqa: F401
    import pypdf  # noqa: F401

    import qa.ingest.html  # noqa: F401
    from qa.ingest import documents

    try:
        import resource

        limit = _address_space() + memory_mb * 2**20
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):  # no limit on this platform: the timeout still holds
        pass
    conn = Connection(fd)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        kind, path, doc_id, max_bytes = request
        reply: tuple[str, Any]
        try:
            if kind == "bytes":
                document = documents.parse_bytes(Path(path), doc_id, conn.recv_bytes())
            else:
                document = documents.read_file(Path(path), doc_id, max_bytes)
            reply = ("document", dataclasses.asdict(document))
            del document
        except Skip as skip:
            reply = ("skip", dataclasses.asdict(skip))
        except MemoryError:
            reply = ("memory", None)
        except Exception as exc:  # noqa: BLE001 - a parser bug on one file must not stop the others
            reply = ("error", f"{exc.__class__.__name__}: {exc}")
        try:
            conn.send(reply)
        except MemoryError:
            reply = ("memory", None)
            conn.send(reply)
        if reply[0] == "memory":
            return  # the parent starts a fresh worker: memory may be fragmented or leaked


class _Worker:
    """One worker process and the connection to it; used by one caller at a time."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.starting = False
        self.request: tuple[int, Path] | None = None  # (index, path) being parsed
        self.deadline = 0.0

    def launch(self) -> None:
        """Start the process if it isn't running (without waiting for it to be ready)."""
        if self.process is not None and self.process.poll() is None:
            return
        self.stop()
        ours, theirs = socket.socketpair()
        code = (
            f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); from qa.ingest.parsing import worker_main; "
            f"worker_main({theirs.fileno()}, {self.memory_mb}, {os.getpid()})"
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
            )
        finally:
            theirs.close()
        self.conn, self.starting = Connection(ours.detach()), True

    def ready(self) -> Connection:
        """The connection to a started worker, once it has imported its parsers."""
        self.launch()
        assert self.conn is not None and self.process is not None
        if self.starting:
            if not self.conn.poll(START_TIMEOUT_S):
                self.stop()
                raise RuntimeError(f"a parser process did not start within {START_TIMEOUT_S:g} s")
            try:
                self.conn.recv()
            except (EOFError, OSError):
                code = self.process.wait(timeout=10)
                self.stop()
                raise RuntimeError(f"a parser process failed to start (exit code {code})") from None
            self.starting = False
        return self.conn

    def submit(self, request: tuple[str, str, str, int], data: bytes | None = None) -> None:
        conn = self.ready()
        try:
            conn.send(request)
            if data is not None:
                conn.send_bytes(data)
        except OSError:  # it died while idle (killed from outside): once more, with a new one
            self.stop()
            conn = self.ready()
            conn.send(request)
            if data is not None:
                conn.send_bytes(data)

    def receive(self, source: str) -> Document | Skip:
        """The reply to the request sent (call once ``conn`` is readable)."""
        assert self.conn is not None and self.process is not None
        try:
            kind, value = self.conn.recv()
        except (EOFError, OSError):
            try:
                code: int | None = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                code = None
            self.stop()
            return Skip(source, crash_reason(code, self.memory_mb))
        if kind == "document":
            return Document(**value)
        if kind == "skip":
            return Skip(**value)
        if kind == "memory":
            self.stop()
            return Skip(source, memory_reason(self.memory_mb))
        return Skip(source, f"the parser failed ({value})")

    def stop(self) -> None:
        """Kill the process (if any) and forget it; the next request starts a new one."""
        process, conn = self.process, self.conn
        self.process = self.conn = None
        self.starting = False
        self.request = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()

    def shutdown(self) -> None:
        """Ask the process to exit, and kill it if it doesn't."""
        process, conn = self.process, self.conn
        if process is not None and conn is not None and self.request is None and not self.starting:
            try:
                conn.send(None)
                process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.stop()


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop()


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

    # ------------------------------------------------------------------ borrowing workers
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

    # ------------------------------------------------------------------ one file
    def parse_bytes(self, path: Path, doc_id: str, data: bytes) -> Document:
        """Parse a file's content (named ``path``, not read from it); raises :class:`Skip`."""
        return self._one(("bytes", str(path), doc_id, 0), data)

    def parse_path(self, path: Path, doc_id: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document:
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

    def _run(self, worker: _Worker, request: tuple[str, str, str, int], data: bytes | None) -> Document | Skip:
        worker.submit(request, data)
        conn = worker.conn
        assert conn is not None
        if conn.poll(self.timeout_s):
            return worker.receive(request[1])
        worker.stop()
        return Skip(request[1], timeout_reason(self.timeout_s))

    # ------------------------------------------------------------------ many files
    def parse_files(
        self, items: Iterable[tuple[Path, str] | Document | Skip], max_bytes: int = DEFAULT_MAX_FILE_BYTES
    ) -> Iterator[Document | Skip]:
        """Parse ``(path, document id)`` pairs on all free workers; results in input order.

        For single-document files (not JSONL). A :class:`Document` or :class:`Skip` among
        the items is passed through in its place, so a caller can stream what it already
        knows (a JSONL file's documents, a broken link) with the files to parse. Each file
        has the whole time budget from when a worker starts on it. Stopping the iteration
        early kills the workers that were still parsing (they start again when next needed).
        """
        pending = iter(items)
        held: list[_Worker] = []
        first = self._take()
        assert first is not None
        held.append(first)
        while (extra := self._take(block=False)) is not None:
            held.append(extra)
        for worker in held:  # start them side by side, not one after the other
            worker.launch()
        idle = list(held)
        busy: dict[Connection, _Worker] = {}
        done: dict[int, Document | Skip] = {}
        submitted = returned = 0
        exhausted = False
        try:
            while True:
                while idle and not exhausted and submitted - returned < AHEAD * len(held):
                    try:
                        item = next(pending)
                    except StopIteration:
                        exhausted = True
                        break
                    if isinstance(item, (Document, Skip)):
                        done[submitted] = item
                        submitted += 1
                        continue
                    path, doc_id = Path(item[0]), item[1]
                    if path.suffix.lower() not in SUPPORTED_SUFFIXES - {".jsonl"}:
                        done[submitted] = Skip(str(path), f"unsupported file type {path.suffix.lower() or '(none)'!r}")
                    else:
                        worker = idle.pop()
                        worker.submit(("path", str(path), doc_id, max_bytes))
                        worker.request = (submitted, path)
                        worker.deadline = time.monotonic() + self.timeout_s
                        assert worker.conn is not None
                        busy[worker.conn] = worker
                    submitted += 1
                while returned in done:
                    result = done.pop(returned)
                    returned += 1
                    yield result
                if not busy:
                    if exhausted and returned == submitted:
                        return
                    continue
                now = time.monotonic()
                nearest = min(worker.deadline for worker in busy.values())
                for conn in wait(list(busy), timeout=max(0.0, nearest - now)):
                    worker = busy.pop(conn)  # type: ignore[arg-type]
                    assert worker.request is not None
                    index, path = worker.request
                    done[index] = worker.receive(str(path))
                    worker.request = None
                    idle.append(worker)
                now = time.monotonic()
                for conn, worker in list(busy.items()):
                    if worker.deadline <= now:
                        del busy[conn]
                        assert worker.request is not None
                        index, path = worker.request
                        worker.stop()
                        done[index] = Skip(str(path), timeout_reason(self.timeout_s))
                        idle.append(worker)
        finally:
            for worker in busy.values():
                worker.stop()  # abandoned mid-file: its reply would confuse the next caller
            for worker in held:
                self._give_back(worker)


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
        max_bytes = int(settings.max_file_mb * 2**20) if settings is not None else DEFAULT_MAX_FILE_BYTES
    if pool is not None:
        yield from pool.parse_files(items, max_bytes)
        return
    if settings is not None:
        owned = ParserPool.from_settings(settings)
    else:
        owned = ParserPool()
    with owned:
        yield from owned.parse_files(items, max_bytes)
