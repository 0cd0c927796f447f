"""Observability: one structured JSON access-log line per request (route, status, latency,
collection) that never carries a question's or a document's text, and /metrics counters
that follow errors (4xx and 5xx) and rate-limited requests.

Decision: the access log never records the question at all (not even a prefix): the route,
status, latency and collection are enough to operate the service, and questions can hold
personal data. The query string (``/v1/search?q=...``) is not logged either.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.encoding import Embedder
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings

KEY = "observability-key-0123456789"
SECRET_QUESTION = "What does the zebrafish-marker-7f3a say about quarterly revenue in Songjiang?"
SECRET_TEXT = (
    "The okapi-marker-91c2 ledger lists every shipment that left the harbour in March. " * 20
)
FIELDS = {"method", "route", "path", "status", "ms", "collection", "client"}


class FailingService(QAService):
    """Crashes on searches whose question says so, to produce a real 500."""

    def search(self, question: str, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        if "explode" in question:
            raise RuntimeError("boom")
        return super().search(question, *args, **kwargs)


@pytest.fixture(scope="module")
def app_and_service(
    tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path, embedder: Embedder
) -> tuple[Any, QAService]:
    index = tmp_path_factory.mktemp("observability") / "index"
    shutil.copytree(seed_index_dir, index)
    settings = make_settings(index, api_key=KEY, rate_limit_per_minute=60, rate_limit_burst=1000)
    service = FailingService(settings, embedder)
    return create_app(settings, service), service


def access_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "qa.access"]


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_one_json_line_per_request(
    app_and_service: tuple[Any, QAService], caplog: pytest.LogCaptureFixture
) -> None:
    app, service = app_and_service
    client = TestClient(app, raise_server_exceptions=False)
    passage = service.search("Casarte", top_k=1).passages[0].passage_id
    requests = [
        (
            lambda: client.post(
                "/v1/ask", json={"question": "How many cities does the G60 corridor connect?"}
            ),
            "/v1/ask",
            200,
            "default",
        ),
        (lambda: client.get("/v1/search", params={"q": "Casarte"}), "/v1/search", 200, "default"),
        (
            lambda: client.get(f"/v1/passages/{passage}"),
            "/v1/passages/{passage_id}",
            200,
            "default",
        ),
        (lambda: client.get("/v1/collections/default"), "/v1/collections/{name}", 200, "default"),
        (
            lambda: client.post("/v1/ask", json={"question": "q", "collection": "nope"}),
            "/v1/ask",
            404,
            None,
        ),
        (lambda: client.post("/v1/ask", json={"question": ""}), "/v1/ask", 422, None),
        (
            lambda: client.post(
                "/v1/ask", content=b"x" * 70_000, headers={"content-type": "application/json"}
            ),
            "/v1/ask",
            413,
            None,
        ),
        (lambda: client.get("/v1/ask"), "/v1/ask", 405, None),
        (lambda: client.get("/no/such/route"), "unmatched", 404, None),
        (lambda: client.get("/healthz"), "/healthz", 200, None),
    ]
    caplog.set_level(logging.INFO, logger="qa.access")
    caplog.clear()
    for call, _, status, _ in requests:
        assert call().status_code == status
    records = access_records(caplog)
    assert len(records) == len(requests)  # exactly one line per request
    for record, (_, route, status, collection) in zip(records, requests):
        assert set(record) == FIELDS
        assert (record["route"], record["status"], record["collection"]) == (
            route,
            status,
            collection,
        ), record
        assert isinstance(record["ms"], (int, float)) and record["ms"] >= 0
    for record in caplog.records:
        if record.name == "qa.access":
            assert "\n" not in record.getMessage()


def test_logs_never_hold_questions_or_document_text(
    app_and_service: tuple[Any, QAService], caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = app_and_service
    client = TestClient(app, raise_server_exceptions=False)
    caplog.set_level(logging.DEBUG)  # every logger, every level
    auth = {"Authorization": f"Bearer {KEY}"}
    added = client.post(
        "/v1/collections/default/documents",
        json={"id": "ledger", "title": "Ledger", "text": SECRET_TEXT},
        headers=auth,
    )
    assert added.status_code == 201, added.text
    assert client.post("/v1/ask", json={"question": SECRET_QUESTION}).status_code == 200
    assert (
        client.post(
            "/v1/ask",
            json={
                "question": SECRET_QUESTION,
                "history": [
                    {"role": "user", "content": SECRET_TEXT[:500]},
                    {"role": "assistant", "content": "ok"},
                ],
            },
        ).status_code
        == 200
    )
    assert client.get("/v1/search", params={"q": SECRET_QUESTION}).status_code == 200
    document = client.get("/v1/documents/ledger")
    assert "okapi-marker-91c2" in document.json()["text"]  # the text is served...
    assert (
        client.post("/v1/ask", json={"question": SECRET_QUESTION + " explode"}).status_code == 500
    )
    client_side = {"httpx", "httpx2", "httpcore", "asyncio"}  # the test client's own request log
    server_records = [r for r in caplog.records if r.name.split(".")[0] not in client_side]
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in server_records)
    assert access_records(caplog)
    assert "zebrafish-marker" not in logged  # ...but no question,
    assert "okapi-marker" not in logged  # and no document text, ever reaches the logs
    crash = [r for r in caplog.records if r.name == "qa.http.app" and r.levelno == logging.ERROR]
    assert crash and crash[0].exc_info  # the crash itself is logged, with its traceback


def test_metrics_count_errors_and_rate_limited_requests(
    seed_index_dir: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        seed_index_dir, rate_limit_per_minute=1, rate_limit_burst=3, api_key=KEY
    )
    app = create_app(settings, FailingService(settings, embedder))
    client = TestClient(app, raise_server_exceptions=False)
    caplog.set_level(logging.INFO, logger="qa.access")
    statuses = [
        client.get("/v1/search", params={"q": "Casarte"}).status_code,  # 200
        client.get("/v1/search", params={"q": "please explode"}).status_code,  # 500
        client.post("/v1/ask", json={"question": "q", "top_k": 99}).status_code,  # 422
    ]
    statuses += [
        client.get("/v1/search", params={"q": "Haier"}).status_code for _ in range(3)
    ]  # 429 x3
    other = TestClient(
        app, client=("10.0.0.8", 1), raise_server_exceptions=False
    )  # lookups are limited too
    statuses += [
        other.get("/v1/collections/nope").status_code,
        other.get("/v1/passages/x").status_code,
    ]  # 404, 422
    statuses.append(
        client.post("/v1/ask", content=b"{}", headers={"content-type": "text/plain"}).status_code
    )
    assert statuses == [
        200,
        500,
        422,
        429,
        429,
        429,
        404,
        422,
        429,
    ]  # a limited route refuses before parsing
    admin = TestClient(app, client=("10.0.0.9", 1))  # its own budget: the test client's is spent
    text = admin.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    assert metric(text, "qa_errors_total", route="/v1/search", status="500") == 1
    assert metric(text, "qa_errors_total", route="/v1/ask", status="422") == 1
    assert metric(text, "qa_errors_total", route="/v1/search", status="429") == 3
    assert metric(text, "qa_errors_total", route="/v1/ask", status="429") == 1
    assert metric(text, "qa_errors_total", route="/v1/collections/{name}", status="404") == 1
    assert metric(text, "qa_errors_total", route="/v1/passages/{passage_id}", status="422") == 1
    assert metric(text, "qa_errors_total") == 8
    assert metric(text, "qa_rate_limited_total", route="/v1/search") == 3
    assert metric(text, "qa_rate_limited_total", route="/v1/ask") == 1
    assert metric(text, "qa_requests_total", method="GET", route="/v1/search", status="200") == 1
    assert metric(text, "qa_request_duration_seconds_count", method="GET", route="/v1/search") == 5
    # and the access log says the same
    limited = [r for r in access_records(caplog) if r["status"] == 429]
    assert [r["route"] for r in limited] == ["/v1/search"] * 3 + ["/v1/ask"]


def test_plain_text_logs_when_json_is_off(
    seed_index_dir: Path, seed_service: QAService, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(create_app(make_settings(seed_index_dir, log_json=False), seed_service))
    caplog.set_level(logging.INFO, logger="qa.access")
    caplog.clear()
    client.get("/healthz")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "qa.access"]
    assert line.startswith("method=GET route=/healthz path=/healthz status=200 ms=")
