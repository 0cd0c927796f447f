"""`qa serve` as a user runs it: a real process that builds the default index, then answers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def start(index_dir: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "QA_INDEX_DIR": str(index_dir), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=environment,
    )


def address(process: subprocess.Popen[str], timeout: float = 300) -> tuple[str, list[str]]:
    """Read the log until the server prints the address to open."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            raise AssertionError("server exited:\n" + "".join(seen))
        seen.append(line)
        found = re.search(r"open (http://127\.0\.0\.1:\d+)/ in a browser", line)
        if found:
            return found.group(1), seen
    raise AssertionError("no address printed:\n" + "".join(seen))


def test_serve_builds_the_default_index_then_answers(tmp_path: Path) -> None:
    process = start(tmp_path / "index", "--port", "0", "--watch")
    try:
        base, log = address(process)
        assert "no index yet: building it" in "".join(log)
        assert "corpus for collection 'default'" in "".join(log)  # --watch follows its folder
        page = httpx.get(base + "/", timeout=30)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert (
            httpx.get(base + "/widget.js", timeout=30)
            .headers["content-type"]
            .startswith("text/javascript")
        )
        reply = httpx.post(
            f"{base}/v1/ask",
            json={"question": "How many cities does the G60 corridor connect?"},
            timeout=60,
        ).json()
        assert "connects nine cities" in reply["passages"][0]["text"]
        assert "nine" in reply["answer"]["text"]
        assert (tmp_path / "index" / "default" / "CURRENT").exists()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "qa", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            env={**os.environ, "QA_INDEX_DIR": str(tmp_path)},
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_unknown_collection_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qa", "serve", "--port", "0", "--collection", "missing"],
        capture_output=True,
        text=True,
        env={**os.environ, "QA_INDEX_DIR": str(tmp_path)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown collection 'missing'" in result.stderr


def test_bad_model_folder_exits_with_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qa", "serve", "--port", "0", "--model", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env={**os.environ, "QA_INDEX_DIR": str(tmp_path)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "model folder" in result.stderr and "does not exist" in result.stderr
