"""The HTTP API over a real uvicorn server (and in-process for the error matrix)."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import SEED_FILE, SEED_TITLE

QUESTION = "How many cities does the G60 corridor connect?"


@pytest.fixture(scope="module")
def client(seed_settings: Settings, seed_service: QAService) -> TestClient:
    return TestClient(create_app(seed_settings, seed_service))


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"]
    return str(body["error"]["message"])


# --------------------------------------------------------------------------- the real server


def test_ask_over_real_server(live_server: str) -> None:
    response = httpx.post(f"{live_server}/v1/ask", json={"question": QUESTION}, timeout=60)
    assert response.status_code == 200
    reply = response.json()
    assert reply["query"] == QUESTION
    first = reply["passages"][0]
    assert "connects nine cities" in first["text"]
    assert first["citation"]["title"] == SEED_TITLE
    assert "nine" in reply["answer"]["text"]
    assert reply["answer"]["passage_id"] == first["passage_id"]
    assert (
        first["text"][reply["answer"]["start"] : reply["answer"]["end"]] == reply["answer"]["text"]
    )
    assert [reply["answer"]["start"], reply["answer"]["end"]] in first["highlights"]
    assert set(reply["timings_ms"]) >= {"embed", "search", "answer", "total"}
    # the citation's offsets reproduce the passage from the document itself
    document = httpx.get(
        f"{live_server}/v1/documents/{first['citation']['document_id']}", timeout=30
    ).json()
    citation = first["citation"]
    assert document["text"][citation["char_start"] : citation["char_end"]] == first["text"]
    assert document["text"] == SEED_FILE.read_text(encoding="utf-8")


def test_a_name_the_documents_never_mention_gets_a_notice(live_server: str) -> None:
    question = "What does the --fast-track option of the G60 corridor do?"
    response = httpx.post(f"{live_server}/v1/ask", json={"question": question}, timeout=60)
    assert response.status_code == 200
    reply = response.json()
    assert reply["answer"] is None
    assert reply["notice"].startswith("The documents never mention --fast-track.")
    assert reply["passages"]  # the closest passages are still listed


def test_fifty_concurrent_requests_match_the_lone_answer(live_server: str) -> None:
    questions = [QUESTION, "What brand is the Haier factory for?", "How much rent do talents pay?"]
    with httpx.Client(timeout=120) as http:
        alone = {
            q: http.post(f"{live_server}/v1/ask", json={"question": q, "top_k": 3}).json()
            for q in questions
        }

    def ask(i: int) -> tuple[str, httpx.Response]:
        question = questions[i % len(questions)]
        with httpx.Client(timeout=120) as http:
            return question, http.post(
                f"{live_server}/v1/ask", json={"question": question, "top_k": 3}
            )

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(ask, range(50)))
    for question, response in results:
        assert response.status_code == 200
        body = response.json()
        expected = alone[question]
        assert [p["passage_id"] for p in body["passages"]] == [
            p["passage_id"] for p in expected["passages"]
        ]
        assert body["answer"]["text"] == expected["answer"]["text"]
        for got, want in zip(body["passages"], expected["passages"]):
            assert got["score"] == pytest.approx(want["score"], abs=1e-4)


def test_search_and_passage_context(live_server: str) -> None:
    found = httpx.get(
        f"{live_server}/v1/search", params={"q": "Casarte brand", "top_k": 2}, timeout=30
    ).json()
    assert found["query"] == "Casarte brand" and len(found["passages"]) == 2
    first = found["passages"][0]
    assert "Casarte" in first["text"]
    context = httpx.get(
        f"{live_server}/v1/passages/{first['passage_id']}",
        params={"before": 2, "after": 1},
        timeout=30,
    ).json()
    assert context["passage"]["text"] == first["text"]
    assert [p["ordinal"] for p in context["before"]] == [
        context["passage"]["ordinal"] - 2,
        context["passage"]["ordinal"] - 1,
    ]
    assert [p["ordinal"] for p in context["after"]] == [context["passage"]["ordinal"] + 1]
    assert context["title"] == SEED_TITLE


def test_collections(live_server: str) -> None:
    listing = httpx.get(f"{live_server}/v1/collections", timeout=30).json()
    assert listing["default"] == "default"
    (info,) = listing["collections"]
    assert info["documents"] == 1 and info["passages"] == 19
    assert (
        info["model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
        and info["model"]["dimension"] == 384
    )
    assert info["created_at"].endswith("Z")
    assert httpx.get(f"{live_server}/v1/collections/default", timeout=30).json()["passages"] == 19


def test_operations(seed_settings: Settings, seed_service: QAService) -> None:
    key = "operations-key-29f1"
    client = TestClient(
        create_app(make_settings(seed_settings.index_dir, api_key=key), seed_service)
    )
    assert client.get("/healthz").json() == {"status": "ok", "detail": {}}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["detail"]["collection"] == "default"
    assert ready["detail"]["query_encoder"] == "onnx"  # the test fixture's float32 export
    client.post("/v1/ask", json={"question": "How many cities does the G60 corridor connect?"})
    client.post("/v1/ask", content=b"{", headers={"content-type": "application/json"})
    assert client.get("/metrics").status_code == 401  # the admin key is needed
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).text
    assert 'qa_requests_total{method="POST",route="/v1/ask",status="200"}' in metrics
    assert 'qa_requests_total{method="POST",route="/v1/ask",status="400"}' in metrics
    assert 'qa_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/ask"}' in metrics
    assert 'qa_collection_passages{collection="default"} 19.0' in metrics
    assert 'qa_errors_total{route="/v1/ask",status="400"}' in metrics


def test_docs_and_schema(live_server: str) -> None:
    assert httpx.get(f"{live_server}/docs").status_code == 200
    schema = httpx.get(f"{live_server}/openapi.json").json()
    assert {"/v1/ask", "/v1/search", "/v1/collections", "/v1/passages/{passage_id}"} <= set(
        schema["paths"]
    )
    ask = schema["paths"]["/v1/ask"]["post"]
    assert ask["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AskResponse"
    )


# --------------------------------------------------------------------------- bad input (in-process)


def test_malformed_json_is_400(client: TestClient) -> None:
    message = _error(
        client.post(
            "/v1/ask", content=b'{"question": ', headers={"content-type": "application/json"}
        ),
        400,
        "malformed_json",
    )
    assert "not valid JSON" in message


def test_wrong_content_type_is_415(client: TestClient) -> None:
    response = client.post(
        "/v1/ask",
        content=b"question=hi",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert "application/json" in _error(response, 415, "unsupported_media_type")
    _error(
        client.post("/v1/ask", content=json.dumps({"question": "hi"}).encode()),
        415,
        "unsupported_media_type",
    )


def test_body_over_limit_is_413(client: TestClient) -> None:
    big = json.dumps({"question": "x", "history": [{"role": "user", "content": "y" * 70_000}]})
    assert "65536-byte limit" in _error(
        client.post("/v1/ask", content=big, headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )


def test_body_over_limit_without_content_length_is_413(live_server: str) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"question": "x", "pad": "'
        for _ in range(80):
            yield b"z" * 1024
        yield b'"}'

    response = httpx.post(
        f"{live_server}/v1/ask",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    _error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   \n\t "}, "question: the question is empty"),
        ({"question": "q" * 2001}, "question"),
        ({"question": "q", "top_k": 0}, "top_k"),
        ({"question": "q", "top_k": 51}, "top_k"),
        ({"question": "q", "history": [{"role": "user", "content": "h"}] * 21}, "history"),
        ({"question": "q", "history": [{"role": "system", "content": "h"}]}, "history.0.role"),
        ({"question": "q", "unknown": 1}, "unknown"),
        ({"top_k": 3}, "question"),
        ([1, 2], "body"),
        ({"question": 5}, "question"),
    ],
)
def test_validation_errors_are_422(client: TestClient, body: object, field: str) -> None:
    assert field in _error(client.post("/v1/ask", json=body), 422, "validation_error")


def test_search_validation(client: TestClient) -> None:
    _error(client.get("/v1/search", params={"q": "  "}), 422, "validation_error")
    _error(client.get("/v1/search"), 422, "validation_error")
    _error(client.get("/v1/search", params={"q": "x", "top_k": 99}), 422, "validation_error")


def test_unknown_things_are_404(client: TestClient) -> None:
    message = _error(
        client.post("/v1/ask", json={"question": "q", "collection": "nope"}),
        404,
        "unknown_collection",
    )
    assert "available collections: 'default'" in message
    _error(
        client.post("/v1/ask", json={"question": "q", "collection": "../../etc"}),
        404,
        "unknown_collection",
    )
    _error(client.get("/v1/collections/nope"), 404, "unknown_collection")
    _error(client.get("/v1/passages/999999"), 404, "unknown_passage")
    _error(client.get("/v1/documents/no/such/doc.txt"), 404, "unknown_document")
    _error(client.get("/v1/nothing-here"), 404, "not_found")
    _error(client.get("/v1/passages/not-a-number"), 422, "validation_error")


def test_method_not_allowed_is_json(client: TestClient) -> None:
    _error(client.get("/v1/ask"), 405, "method_not_allowed")


def test_history_is_accepted(client: TestClient) -> None:
    history = [
        {"role": "user", "content": "What is the G60 corridor?"},
        {"role": "assistant", "content": "A corridor."},
    ]
    response = client.post(
        "/v1/ask", json={"question": "How many cities does it connect?", "history": history}
    )
    assert response.status_code == 200


# --------------------------------------------------------------------------- CORS


def test_cors_allow_list(seed_index_dir: Path, seed_service: QAService) -> None:
    allowed = "http://docs.example.com"
    settings = make_settings(seed_index_dir, cors_origins=[allowed])
    with TestClient(create_app(settings, seed_service)) as http:
        ok = http.post("/v1/ask", json={"question": "Casarte"}, headers={"Origin": allowed})
        assert ok.headers["access-control-allow-origin"] == allowed
        denied = http.post(
            "/v1/ask", json={"question": "Casarte"}, headers={"Origin": "http://evil.example"}
        )
        assert "access-control-allow-origin" not in denied.headers
        preflight = http.options(
            "/v1/ask",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert (
            preflight.status_code == 200
            and preflight.headers["access-control-allow-origin"] == allowed
        )


def test_default_is_same_origin_only(client: TestClient) -> None:
    response = client.post(
        "/v1/ask", json={"question": "Casarte"}, headers={"Origin": "http://elsewhere.example"}
    )
    assert "access-control-allow-origin" not in response.headers
