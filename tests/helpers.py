"""Helpers shared by the tests: a real uvicorn server in a thread, free ports, paths."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
FIXTURES_DIR = ROOT / "tests" / "fixtures"
SEED_FILE = CORPUS / "songjiang-g60-innovation-corridor.txt"
SEED_TITLE = "Songjiang vows to boost global cooperation on sci-tech innovation"
SHARED = Path(os.environ.get("QA_SHARED_DIR", ROOT.parent / "shared"))
SCIFACT = SHARED / "datasets" / "scifact"


def assert_linear(run: Callable[[int], object]) -> None:
    """``run(20_000)`` takes well under 40× ``run(2_000)`` (linear time allows 10×; a pattern
    that backtracks on its input takes 100× and more)."""

    def seconds(repeat: int) -> float:
        start = time.perf_counter()
        run(repeat)
        return time.perf_counter() - start

    small, large = seconds(2_000), seconds(20_000)
    assert large < 40 * max(small, 1e-4)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: object, port: int | None = None) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on loopback; yields its base URL."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(  # as qa serve: forwarded headers are the app's business (QA_TRUSTED_PROXIES)
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        proxy_headers=False,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_http(url: str, timeout: float = 120.0) -> None:
    """Wait until ``url`` answers (any status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(url)


def qa(*args: str, index_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The ``qa`` command in a real subprocess over ``index_dir`` (``env`` on top)."""
    environment = {**os.environ, "QA_INDEX_DIR": str(index_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "qa", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )


def environment(index_dir: Path, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    return {**base, "QA_INDEX_DIR": str(index_dir), **env}


@contextlib.contextmanager
def running(
    index_dir: Path, *args: str, **env: str
) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(index_dir, **env),
    )
    log: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if re.search(r"open http://127\.0\.0\.1:\d+/ in a browser", line):
                found.set()
        found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(300), "".join(log)
        match = re.search(r"open (http://127\.0\.0\.1:\d+)/", "".join(log))
        assert match, "server exited:\n" + "".join(log)
        yield process, match.group(1), log
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
        reader.join(timeout=10)
