"""Abuse limits: per-client rate limiting on the question routes, body and question limits
under concurrent load, slow clients (stalled or trickled headers and bodies) cut off with a
408 without holding anything, and a per-request deadline (504) for questions.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.encoding import Embedder
from qa.http.app import create_app
from qa.http.server import _protocol_class
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import free_port

QUESTION = "How many cities does the G60 corridor connect?"
ASK = {"question": QUESTION, "top_k": 3}


@contextlib.contextmanager
def serve(app: Any, **config: Any) -> Iterator[tuple[str, int]]:
    """A real uvicorn server in a thread (with extra uvicorn config); yields (base URL, port)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **config
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def app_with(seed_index_dir: Path, service: QAService, **overrides: Any) -> Any:
    return create_app(make_settings(seed_index_dir, **overrides), service)


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            found = (
                dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
                if "{" in line
                else {}
            )
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


# --------------------------------------------------------------------------- raw sockets


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP response (the server closes or sends Content-Length bytes)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def has_response(sock: socket.socket) -> bool:
    """True when the server has sent something (or closed) on ``sock``."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def post_head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


# --------------------------------------------------------------------------- rate limiting


def test_rate_limit_one_budget_per_client_and_cheap_routes_cost_less(
    seed_index_dir: Path, seed_service: QAService
) -> None:
    app = app_with(
        seed_index_dir,
        seed_service,
        rate_limit_per_minute=6,
        rate_limit_burst=3,
        api_key="limits-key",
    )
    client = TestClient(app)
    assert [client.post("/v1/ask", json=ASK).status_code for _ in range(2)] == [200, 200]
    assert client.get("/v1/search", params={"q": "Casarte"}).status_code == 200  # one shared budget
    limited = client.get("/v1/search", params={"q": "Casarte"})
    error = error_of(limited, 429, "rate_limited")
    wait = int(limited.headers["retry-after"])
    assert 1 <= wait <= 10  # one token every 10 s at 6 per minute
    assert f"try again in {wait} s" in error["message"]
    error_of(client.post("/v1/ask", json=ASK), 429, "rate_limited")
    assert client.get("/healthz").status_code == 200  # liveness is free
    preflight = client.options(
        "/v1/ask", headers={"Origin": "http://x.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code != 429
    # another client has its own budget, and lookups cost a fifth of a question
    other = TestClient(app, client=("10.1.2.3", 40000))
    assert other.post("/v1/ask", json=ASK).status_code == 200
    passage = seed_service.search(QUESTION, top_k=1).passages[0].passage_id
    paths = [
        "/readyz",
        "/v1/collections",
        "/v1/config",
        "/v1/collections/default",
        f"/v1/passages/{passage}",
    ]
    assert {other.get(path).status_code for path in paths * 2} == {
        200
    }  # 10 lookups = 2 questions' worth
    admin = TestClient(app, client=("10.1.2.4", 40000))
    metrics = admin.get("/metrics", headers={"Authorization": "Bearer limits-key"}).text
    assert metric(metrics, "qa_rate_limited_total", route="/v1/search") == 1
    assert metric(metrics, "qa_rate_limited_total", route="/v1/ask") == 1


def test_rate_limit_is_configured_by_environment(
    seed_index_dir: Path, seed_service: QAService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_RATE_LIMIT_PER_MINUTE", "120")
    monkeypatch.setenv("QA_RATE_LIMIT_BURST", "2")
    settings = Settings(index_dir=seed_index_dir)
    assert (settings.rate_limit_per_minute, settings.rate_limit_burst) == (120, 2)
    client = TestClient(create_app(settings, seed_service))
    assert [client.get("/v1/search", params={"q": "Haier"}).status_code for _ in range(2)] == [
        200,
        200,
    ]
    limited = client.get("/v1/search", params={"q": "Haier"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"  # 2 tokens a second

    monkeypatch.setenv("QA_RATE_LIMIT_PER_MINUTE", "0")  # 0 disables the limiter
    client = TestClient(create_app(Settings(index_dir=seed_index_dir), seed_service))
    assert {
        client.get("/v1/search", params={"q": "Haier", "top_k": 1}).status_code for _ in range(8)
    } == {200}


def test_rate_limit_holds_under_concurrent_load(
    seed_index_dir: Path, seed_service: QAService
) -> None:
    """40 simultaneous requests from one client with a burst of 5: exactly the burst gets through."""
    app = app_with(
        seed_index_dir,
        seed_service,
        rate_limit_per_minute=1,
        rate_limit_burst=5,
        api_key="limits-key",
    )
    with serve(app) as (base, _):

        def call(i: int) -> httpx.Response:
            with httpx.Client(base_url=base, timeout=120) as http:
                if i % 2:
                    return http.post("/v1/ask", json=ASK)
                return http.get("/v1/search", params={"q": "G60 corridor"})

        with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
            responses = list(pool.map(call, range(40)))
        statuses = Counter(r.status_code for r in responses)
        assert set(statuses) == {200, 429}
        assert 5 <= statuses[200] <= 6  # 6 only if the run took over a minute (one token refilled)
        for response in responses:
            if response.status_code == 429:
                error_of(response, 429, "rate_limited")
                assert int(response.headers["retry-after"]) >= 1
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/v1/collections").status_code == 429  # lookups share the budget
        metrics = httpx.get(
            f"{base}/metrics", headers={"Authorization": "Bearer limits-key"}
        ).text  # admin: not limited
        assert metric(metrics, "qa_rate_limited_total") == statuses[429] + 1
        assert metric(metrics, "qa_errors_total", status="429") == statuses[429] + 1


# --------------------------------------------------------------------------- body and question limits


def oversized_chunks() -> Iterator[bytes]:
    yield b'{"question": "x", "pad": "'
    for _ in range(80):
        yield b"z" * 1024
    yield b'"}'


CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("valid", {"json": ASK}, 200, ""),
    ("question over 2000 chars", {"json": {"question": "q" * 2001}}, 422, "validation_error"),
    (
        "21 history turns",
        {"json": {"question": "q", "history": [{"role": "user", "content": "h"}] * 21}},
        422,
        "validation_error",
    ),
    (
        "turn over 8000 chars",
        {"json": {"question": "q", "history": [{"role": "user", "content": "h" * 8001}]}},
        422,
        "validation_error",
    ),
    (
        "body over 64 KiB",
        {
            "content": json.dumps({"question": "q", "pad": "p" * 70_000}),
            "headers": {"content-type": "application/json"},
        },
        413,
        "payload_too_large",
    ),
    (
        "chunked body over 64 KiB",
        {"content": "chunks", "headers": {"content-type": "application/json"}},
        413,
        "payload_too_large",
    ),
    (
        "malformed JSON",
        {"content": b'{"question": ', "headers": {"content-type": "application/json"}},
        400,
        "malformed_json",
    ),
    (
        "not JSON",
        {"content": b"question=hi", "headers": {"content-type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    (
        "bad Content-Length",
        {"content": b"{}", "headers": {"content-type": "application/json", "content-length": "x"}},
        400,
        "bad_request",
    ),
]


def test_body_and_question_limits_hold_under_load(live_server: str) -> None:
    with httpx.Client(timeout=120) as http:
        alone = http.post(f"{live_server}/v1/ask", json=ASK).json()

    def send(i: int) -> tuple[str, int, str, httpx.Response]:
        name, kwargs, status, code = CASES[i % len(CASES)]
        kwargs = dict(kwargs)
        if kwargs.get("content") == "chunks":
            kwargs["content"] = oversized_chunks()
        with httpx.Client(timeout=120) as http:
            if name == "bad Content-Length":  # httpx won't send a bad header: write it by hand
                sock = connect(int(live_server.rsplit(":", 1)[1]))
                with sock:
                    sock.sendall(
                        b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: x\r\n\r\n{}"
                    )
                    got, headers, body = read_response(sock)
                response = httpx.Response(got, headers=headers, content=body)
            else:
                response = http.post(f"{live_server}/v1/ask", **kwargs)
        return name, status, code, response

    with concurrent.futures.ThreadPoolExecutor(max_workers=36) as pool:
        results = list(pool.map(send, range(len(CASES) * 8)))
    for name, status, code, response in results:
        if status == 200:
            assert response.status_code == 200, (name, response.text)
            assert [p["passage_id"] for p in response.json()["passages"]] == [
                p["passage_id"] for p in alone["passages"]
            ]
        else:
            assert response.status_code == status, (name, response.status_code, response.text[:200])
            if code != "bad_request" or response.headers.get("content-type", "").startswith(
                "application/json"
            ):
                error_of(response, status, code)
    assert httpx.get(f"{live_server}/healthz").status_code == 200


# --------------------------------------------------------------------------- slow clients


@pytest.fixture(scope="module")
def quick_timeout_server(
    seed_index_dir: Path, seed_service: QAService
) -> Iterator[tuple[str, int]]:
    """A real server whose request headers and body must each arrive within 1 s, as `qa serve` runs it."""
    app = app_with(seed_index_dir, seed_service, body_read_timeout_s=1.0)
    with serve(app, http=_protocol_class(1.0), limit_concurrency=16) as server:
        yield server


def test_stalled_body_gets_408(quick_timeout_server: tuple[str, int]) -> None:
    _, port = quick_timeout_server
    with connect(port) as sock:
        sock.sendall(post_head("/v1/ask", 100) + b'{"question"')  # 11 of 100 bytes, then nothing
        status, headers, body = read_response(sock)
    assert status == 408 and headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout" and "within 1 s" in error["message"]


def test_trickled_body_gets_408(quick_timeout_server: tuple[str, int]) -> None:
    """One byte every 0.1 s never stalls long, but the whole body has a deadline."""
    _, port = quick_timeout_server
    body = json.dumps({"question": QUESTION + " " * 400}).encode()
    with connect(port) as sock:
        sock.sendall(post_head("/v1/ask", len(body)))
        sent = 0
        while sent < len(body) and not has_response(sock):
            with contextlib.suppress(OSError):  # the server may close as we write
                sock.sendall(body[sent : sent + 1])
            sent += 1
            time.sleep(0.1)
        status, _, answer = read_response(sock)
    assert sent < len(body), "the server waited for the whole trickled body"
    assert status == 408 and json.loads(answer)["error"]["code"] == "request_timeout"


def test_trickled_headers_get_408_and_free_their_connection(
    quick_timeout_server: tuple[str, int],
) -> None:
    """Slowloris: more half-sent requests than the server's connection limit (16)."""
    base, port = quick_timeout_server
    stalled = [connect(port) for _ in range(20)]
    try:
        for sock in stalled:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the blank line never comes
        for sock in stalled:
            status, headers, body = read_response(sock)
            assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"
            assert headers["connection"] == "close"
            assert sock.recv(1) == b""  # and disconnected
    finally:
        for sock in stalled:
            sock.close()
    with httpx.Client(base_url=base, timeout=60) as http:  # the slots are free again: no 503
        assert http.post("/v1/ask", json=ASK).status_code == 200
        assert (
            http.get("/healthz").status_code == 200
        )  # keep-alive requests on one connection still work
        assert http.get("/healthz").status_code == 200


def test_stalled_clients_do_not_hold_workers(seed_index_dir: Path, seed_service: QAService) -> None:
    """Many clients stalled mid-body (a long timeout this time) while others are answered."""
    app = app_with(seed_index_dir, seed_service, body_read_timeout_s=60.0)
    with serve(app, http=_protocol_class(60.0)) as (base, port):
        stalled = [connect(port) for _ in range(48)]  # more than the 40 worker threads
        try:
            for sock in stalled:
                sock.sendall(post_head("/v1/ask", 100) + b"{")
            with httpx.Client(base_url=base, timeout=60) as http:
                for _ in range(3):
                    assert http.post("/v1/ask", json=ASK).status_code == 200
                    assert http.get("/v1/search", params={"q": "Casarte"}).status_code == 200
            assert not any(
                has_response(sock) for sock in stalled
            )  # still waiting: nothing was refused
        finally:
            for sock in stalled:
                sock.close()


# --------------------------------------------------------------------------- request deadline


class SlowService(QAService):
    """Answers only after ``delay`` seconds (a stuck model, a huge query)."""

    delay = 30.0

    def search(self, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        time.sleep(self.delay)
        return super().search(*args, **kwargs)


def test_questions_not_answered_in_time_get_504(seed_index_dir: Path, embedder: Embedder) -> None:
    settings = make_settings(seed_index_dir, request_timeout_s=0.5, api_key="limits-key")
    service = SlowService(settings, embedder)
    client = TestClient(create_app(settings, service))
    started = time.monotonic()
    error = error_of(client.post("/v1/ask", json=ASK), 504, "timeout")
    assert "0.5 s" in error["message"]
    error_of(client.get("/v1/search", params={"q": "Casarte"}), 504, "timeout")
    assert (
        time.monotonic() - started < SlowService.delay
    )  # the clients were not kept for the whole delay
    assert client.get("/healthz").status_code == 200
    metrics = client.get("/metrics", headers={"Authorization": "Bearer limits-key"}).text
    assert metric(metrics, "qa_errors_total", status="504") == 2
    service.delay = 0.0
    assert client.post("/v1/ask", json=ASK).status_code == 200
