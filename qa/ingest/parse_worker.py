"""The worker side of :mod:`qa.ingest.parsing`: a fresh interpreter that parses the files it
is sent, with its address space capped, and replies with plain tuples and dicts."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from qa.ingest.documents import Skip

Request = tuple[str, str, str, int]  # (kind: "bytes" | "path", path, document id, max bytes)
Reply = tuple[str, object]


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


def _cap_memory(memory_mb: int) -> None:
    """Cap the address space at what this process uses now plus ``memory_mb``."""
    try:
        import resource

        limit = _address_space() + memory_mb * 2**20
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):  # no limit on this platform: the timeout still holds
        pass


def _parse(conn: Connection, request: Request) -> Reply:
    """Parse one requested file (its bytes follow on ``conn`` for a "bytes" request)."""
    from qa.ingest import readers

    kind, path, doc_id, max_bytes = request
    try:
        if kind == "bytes":
            document = readers.parse_bytes(Path(path), doc_id, conn.recv_bytes())
        else:
            document = readers.read_file(Path(path), doc_id, max_bytes)
        return ("document", dataclasses.asdict(document))
    except Skip as skip:
        return ("skip", dataclasses.asdict(skip))
    except MemoryError:
        return ("memory", None)
    except Exception as exc:  # noqa: BLE001 - a parser bug on one file must not stop the others
        return ("error", f"{exc.__class__.__name__}: {exc}")


def worker_main(fd: int, memory_mb: int, parent: int) -> None:
    """A worker's loop: parse each request and reply, until the connection closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    # the parsers are imported now, so that neither their import time nor their memory is
    # charged to the first file
    import lxml.etree  # noqa: F401
    import pypdf  # noqa: F401

    import qa.ingest.html
    import qa.ingest.readers  # noqa: F401

    _cap_memory(memory_mb)
    conn = Connection(fd)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        reply = _parse(conn, request)
        try:
            conn.send(reply)
        except MemoryError:
            reply = ("memory", None)
            conn.send(reply)
        if reply[0] == "memory":
            return  # the parent starts a fresh worker: memory may be fragmented or leaked
