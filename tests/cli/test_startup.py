"""Startup and shutdown of real `qa serve` processes: a clear message and a non-zero exit for
a corrupt or damaged index, an unusable index folder, a folder that isn't a model, a model
other than the index's, broken weights and bad settings; and on SIGTERM, requests in flight
finish with 200 before the process exits 0.

(tests/test_serve.py covers a taken port, an unknown collection and a missing model folder.)
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from qa.encoding import Embedder
from qa.store import current_generation
from tests.helpers import environment, running

QUESTION = "How many cities does the G60 corridor connect?"


def serve(
    index_dir: Path, *args: str, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `qa serve` to its exit (these runs are expected to fail before serving)."""
    return subprocess.run(
        [sys.executable, "-m", "qa", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=environment(index_dir, **env),
        timeout=timeout,
        check=False,
    )


def assert_clear_failure(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    message = result.stderr
    assert result.returncode == code, message
    assert "Traceback" not in message, message
    error_lines = [line for line in message.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, message
    for word in words:
        assert word in error_lines[0], message
    return error_lines[0]


@pytest.fixture
def index_copy(tmp_path: Path, seed_index_dir: Path, embedder: Embedder) -> Path:
    """A private copy of the seed index, with the exported ONNX query encoder beside it."""
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    if embedder.cache_dir is not None and Path(embedder.cache_dir).is_dir():
        shutil.copytree(embedder.cache_dir, index / ".models", dirs_exist_ok=True)
    return index


def live(index: Path) -> Path:
    return index / "default" / str(current_generation(index / "default"))


# --------------------------------------------------------------------------- startup failures


def first_segment(index: Path) -> Path:
    """The folder of the live generation's first segment."""
    manifest = json.loads((live(index) / "manifest.json").read_text(encoding="utf-8"))
    return index / "default" / "segments" / manifest["segments"][0]["name"]


@pytest.mark.parametrize("damaged", ["dense.faiss", "store.sqlite", "lexical/rows.npy"])
def test_corrupt_index_file_is_named(index_copy: Path, damaged: str) -> None:
    segment = first_segment(index_copy)
    target = segment / damaged
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    target.write_bytes(bytes(data))
    where = f"segments/{segment.name}/{damaged}"
    line = assert_clear_failure(serve(index_copy), 1, "corrupt", where, "qa index --full")
    assert "checksum" in line


def test_unreadable_manifest_is_named(index_copy: Path) -> None:
    manifest = live(index_copy) / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    assert_clear_failure(serve(index_copy), 1, "damaged", "manifest.json", "rebuild")


def test_missing_generation_is_reported(index_copy: Path) -> None:
    shutil.rmtree(live(index_copy))  # CURRENT names a generation that is gone
    assert_clear_failure(serve(index_copy), 1, "collection 'default'", "rebuild")


def test_index_folder_that_is_a_file(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "index"
    not_a_folder.write_text("oops")
    assert_clear_failure(
        serve(not_a_folder), 1, str(not_a_folder), "Not a directory", "QA_INDEX_DIR"
    )


def test_folder_that_is_not_a_model(index_copy: Path, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "notes.txt").write_text("no model here")
    assert_clear_failure(
        serve(index_copy, "--model", str(folder)), 2, "not a sentence-transformers model folder"
    )


def test_model_other_than_the_index_was_built_with(index_copy: Path, tiny_model_dir: Path) -> None:
    line = assert_clear_failure(
        serve(index_copy, "--model", str(tiny_model_dir)), 1, "was built with the model"
    )
    assert "384-d" in line and "32-d" in line and "QA_MODEL" in line


def test_model_with_broken_weights(tmp_path: Path, embedder: Embedder) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(embedder.path, broken)
    for weights in [*broken.glob("*.safetensors"), *broken.glob("pytorch_model.bin")]:
        weights.write_bytes(weights.read_bytes()[:1000])
    assert_clear_failure(
        serve(tmp_path / "index", "--model", str(broken)),
        2,
        "could not load the model",
        str(broken),
    )


def test_invalid_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qa", "serve"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(tmp_path, QA_PORT="eighty"),
        check=False,
    )
    assert_clear_failure(result, 2, "invalid setting", "port")


# --------------------------------------------------------------------------- graceful shutdown


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_sigterm_finishes_requests_in_flight_then_exits_0(index_copy: Path) -> None:
    with running(index_copy, QA_BODY_READ_TIMEOUT_S="5") as (process, base, log):
        port = int(base.rsplit(":", 1)[1])
        assert (
            httpx.post(f"{base}/v1/ask", json={"question": QUESTION}, timeout=60).status_code == 200
        )

        # `qa serve` cuts off a client that never finishes its headers (slowloris)
        with socket.create_connection(("127.0.0.1", port), timeout=60) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            status, _, body = read_response(slow)
            assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"

        # requests in flight: each connection first gets an answer (so it is surely accepted),
        # then sends a question's headers and half its body
        body = json.dumps({"question": QUESTION, "top_k": 3}).encode()
        head = (
            f"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        clients = []
        for _ in range(6):
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 200
            sock.sendall(head + body[: len(body) // 2])
            clients.append(sock)
        time.sleep(1.0)  # let the server read the headers: the requests are now in flight

        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        for sock in clients:
            sock.sendall(body[len(body) // 2 :])
        for sock in clients:
            status, headers, answer = read_response(sock)
            assert status == 200, answer
            assert "connects nine cities" in json.loads(answer)["passages"][0]["text"]
            assert headers.get("connection") == "close"
            sock.close()

        assert process.wait(timeout=60) == 0, "".join(log)
        assert "qa stopped" in "".join(log)
        with pytest.raises(OSError):  # no longer listening
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
