"""The parent's handle on one parser worker process (see :mod:`qa.ingest.parsing`): start
it without forking, send it requests, read its replies, kill it when it overruns."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from qa.ingest.documents import Document, Skip

START_TIMEOUT_S = 120.0  # a worker's own start-up (not counted in any file's budget)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where ``qa`` is imported from


def timeout_reason(seconds: float) -> str:
    return (
        f"parsing took longer than {seconds:g} s; skipped (raise QA_PARSE_TIMEOUT_S to allow more)"
    )


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
            f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); from qa.ingest.parse_worker import worker_main; "
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
