"""Fuzzing the HTTP API from its own OpenAPI schema (schemathesis, in-process ASGI).

Every operation gets schema-valid and schema-violating requests; the write operations get
them twice, with the right API key and with a wrong one. Over all of them (more than 1,000
requests): no 5xx, no exception escapes, every error is JSON ``{"error": {"code",
"message"}}`` and every success matches its response schema. A second test sends raw
hostile bodies the schema can't describe (invalid UTF-8, lone surrogates, deep nesting,
NUL bytes, binary uploads). Runs are derandomized, so a failure reproduces.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from qa.encoding import Embedder
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings

KEY = "fuzz-key-0123456789abcdef"
WRONG_KEY = "not-the-key-0123456789"

# examples per generation mode (positive and negative) for each operation
BUDGET = {
    "POST /v1/ask": 130,
    "GET /v1/search": 130,
    "GET /v1/passages/{passage_id}": 70,
    "GET /v1/documents/{document_id}": 50,
    "GET /v1/collections/{name}": 40,
    "GET /v1/collections": 5,
    "GET /v1/config": 5,
    "GET /healthz": 5,
    "GET /readyz": 5,
    "GET /metrics": 5,
    "POST /v1/collections/{name}/documents": 40,
    "DELETE /v1/collections/{name}/documents/{document_id}": 40,
    "POST /v1/collections/{name}/reindex": 20,
    "POST /v1/feedback": 60,
    "POST /v1/chat/completions": 60,
    "GET /v1/models/{model}": 20,
    "GET /v1/models": 5,
}
# the OpenAI-compatible routes answer errors in OpenAI's shape
OPENAI = {"POST /v1/chat/completions", "GET /v1/models/{model}", "GET /v1/models"}
DEFAULT_BUDGET = 20  # an operation added since this list was written


def is_write(label: str) -> bool:
    method, path = label.split(" ", 1)
    # a question and a reader's verdict are public posts; every other write needs the key
    public = {"/v1/ask", "/v1/chat/completions", "/v1/feedback"}
    return method in {"POST", "PUT", "PATCH", "DELETE"} and path not in public


@pytest.fixture(scope="module")
def fuzz_app(
    tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path, embedder: Embedder
) -> Any:
    """The app over a private copy of the seed index (the fuzzer writes to it), writes enabled."""
    index = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(seed_index_dir, index)
    settings = make_settings(index, api_key=KEY)
    return create_app(settings, QAService(settings, embedder))


def content_type(response: Any) -> str:
    """The Content-Type of an httpx or schemathesis response (whose header values are lists)."""
    for name, value in response.headers.items():
        if name.lower() == "content-type":
            return str(value[0] if isinstance(value, list) else value)
    return ""


def _openai_error(status: int, body: Any) -> str | None:
    """What is wrong with an error in OpenAI's shape, or None."""
    error = body.get("error") if isinstance(body, dict) else None
    keys = {"message", "type", "param", "code"}
    if set(body) != {"error"} or not isinstance(error, dict) or set(error) != keys:
        return f"{status} error is not OpenAI's {{'error': {sorted(keys)}}}: {body!r:.300}"
    if not (error["message"] and error["type"] and isinstance(error["code"], str)):
        return f"{status} error has an empty message, type or code: {body!r:.300}"
    return None


def check_response(response: Any, case: Any) -> str | None:
    """What is wrong with a response, or None."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}: {response.content[:300]!r}"
    if status >= 400:
        if not content_type(response).startswith("application/json"):
            return f"{status} error is not JSON: {content_type(response)!r}"
        try:
            body = json.loads(response.content)
        except ValueError:
            return f"{status} error body is not JSON: {response.content[:200]!r}"
        error = body.get("error") if isinstance(body, dict) else None
        if case is not None and case.operation.label in OPENAI:
            return _openai_error(status, body)
        if (
            set(body) != {"error"}
            or not isinstance(error, dict)
            or set(error) != {"code", "message"}
        ):
            return f"{status} error is not {{'error': {{'code', 'message'}}}}: {body!r:.300}"
        if not (
            isinstance(error["code"], str)
            and error["code"]
            and isinstance(error["message"], str)
            and error["message"]
        ):
            return f"{status} error has an empty code or message: {body!r:.300}"
        return None
    try:
        case.validate_response(response, checks=[response_schema_conformance])
    except BaseException as exc:  # noqa: BLE001 - schemathesis raises a group of failures
        return f"{status} response does not match its schema: {str(exc)[:300]}"
    return None


def test_schemathesis_over_the_openapi_schema(fuzz_app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    requests: Counter[str] = Counter()
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert set(BUDGET) <= {op.label for op in operations}

    def fuzz_operation(
        operation: Any, mode: GenerationMode, key_name: str, key: str | None
    ) -> None:
        """Generate requests for one operation, mode and key; record statuses and failures."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        run = f"{operation.label} {mode.value} {key_name}".strip()
        budget = BUDGET.get(operation.label, DEFAULT_BUDGET)

        @settings(
            max_examples=budget if key != WRONG_KEY else budget // 2,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            requests[run] += 1
            try:
                response = case.call(headers=headers)
            except Exception as exc:  # noqa: BLE001 - an exception escaping the app is a 500
                failures.append(f"{run}: {type(exc).__name__}: {exc}\n  {case.as_curl_command()}")
                return
            statuses[(operation.label, response.status_code)] += 1
            problem = check_response(response, case)
            if problem:
                failures.append(f"{run}: {problem}\n  {case.as_curl_command()}")
            if key == WRONG_KEY and response.status_code not in {400, 401, 404, 405, 413, 415, 422}:
                failures.append(
                    f"{run}: a wrong key got {response.status_code}\n  {case.as_curl_command()}"
                )

        try:
            fuzz()
        except Unsatisfiable:
            pass  # nothing to negate (no parameters, or only free-form strings)

    for operation in operations:
        keys = (
            {"valid key": KEY, "wrong key": WRONG_KEY} if is_write(operation.label) else {"": None}
        )
        for key_name, key in keys.items():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz_operation(operation, mode, key_name, key)

    total = sum(requests.values())
    print(f"\nschemathesis: {total} requests over {len(operations)} operations")
    for run, count in sorted(requests.items()):
        print(f"  {count:5d}  {run}")
    print(
        "statuses: "
        + ", ".join(f"{label} {status}: {n}" for (label, status), n in sorted(statuses.items()))
    )
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:15])
    assert total >= 1000, requests
    # the valid key really wrote, the wrong key never did
    assert statuses[("POST /v1/collections/{name}/documents", 201)] > 0
    assert (
        sum(n for (label, status), n in statuses.items() if is_write(label) and status == 401) > 0
    )


# --------------------------------------------------------------------------- raw hostile input

RAW_BODIES = [
    b'{"question": "\\ud800 lone surrogate"}',
    b'{"question": "\\udfff", "history": [{"role": "user", "content": "\\ud83d"}]}',
    b'{"question": "\xff\xfe invalid utf-8"}',
    b'\xef\xbb\xbf{"question": "BOM first"}',
    b"[" * 10_000 + b"]" * 10_000,
    b'{"question": "x", "top_k": 1e400}',
    b'{"question": "x", "top_k": 99999999999999999999999999999}',
    b'{"question": "x", "top_k": -0}',
    b'{"question": "\x00\x00"}',
    b'{"question": "\\u0000\\u0000"}',
    b'{"question": "' + ("\u202e\u0301\U0001f600" * 600).encode() + b'"}',
    b'{"question": "a", "question": "b"}',
    b'{"question": {"$ne": null}}',
    b'{"question": ["a"]}',
    b"null",
    b'"just a string"',
    b"",
    b"{}",
]


RAW_CHAT_BODIES = [
    b'{"model": "default", "messages": [{"role": "user", "content": [{"type": "text"}]}]}',
    b'{"model": "default", "messages": [{"role": "assistant", "content": "hi"}]}',
    b'{"model": "default", "messages": [{"role": "wizard", "content": "hi"}]}',
    b'{"model": "../../etc", "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "default", "n": 3, "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "default", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"model": "default", "messages": [' + b'{"role": "user", "content": "a"},' * 3000 + b"{}]}",
]


def test_raw_hostile_bodies(fuzz_app: Any) -> None:
    client = TestClient(fuzz_app, raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {KEY}"}
    for body in RAW_BODIES:
        for path, headers in (("/v1/ask", {}), ("/v1/collections/raw/documents", auth)):
            response = client.post(
                path, content=body, headers={"content-type": "application/json", **headers}
            )
            assert check_response(response, None) is None or response.status_code < 300, (
                path,
                body[:60],
                response.text,
            )
            assert response.status_code < 500, (path, body[:60], response.text)
    for body in [*RAW_BODIES, *RAW_CHAT_BODIES]:
        response = client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, (body[:60], response.text)
        if response.status_code >= 400:
            assert _openai_error(response.status_code, response.json()) is None, response.text
    uploads = [
        ("../../escape.txt", b"Title\n\nbody text that is long enough"),
        ("/etc/passwd.txt", b"Title\n\nbody text"),
        (".hidden.txt", b"Title\n\nbody text"),
        ("x" * 300 + ".txt", b"Title\n\nbody text"),
        ("noext", b"Title\n\nbody text"),
        ("bomb.txt", b"\x00" * 5000),
        ("evil.html", b"<script>" * 2000),
        ("evil.pdf", b"%PDF-1.7\n" + b"1 0 obj << /Length 999999999 >> stream\n"),
    ]
    for name, data in uploads:
        response = client.post(
            "/v1/collections/raw/documents", files={"file": (name, data)}, headers=auth
        )
        assert response.status_code in {400, 422}, (name, response.status_code, response.text)
        assert check_response(response, None) is None
    for url in [
        "/v1/search?q=%ED%A0%80",
        "/v1/search?q=%ff%fe",
        "/v1/search?q=%00",
        "/v1/documents/%ED%A0%80",
        "/v1/passages/99999999999999999999999",
        "/v1/passages/-1",
        "/v1/collections/%00",
        "/v1/documents/x?collection=..%2F..",
        "/v1/search?q=a&top_k=1e5",
        "/v1/search?q=" + "a" * 5000,
    ]:
        response = client.get(url)
        assert response.status_code < 500, (url, response.text)
        if response.status_code >= 400:
            assert check_response(response, None) is None, (url, response.text)


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    ),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/json; charset=latin-1",
            "text/plain",
            "multipart/form-data; boundary=x",
            "multipart/form-data",
            "",
        ]
    ),
)
def test_random_bytes_never_cause_a_server_error(
    fuzz_app: Any, body: bytes, content_type: str
) -> None:
    client = TestClient(fuzz_app, raise_server_exceptions=False)
    headers = {"content-type": content_type} if content_type else {}
    for path, extra in (
        ("/v1/ask", {}),
        ("/v1/collections/raw/documents", {"Authorization": f"Bearer {KEY}"}),
    ):
        response = client.post(path, content=body, headers={**headers, **extra})
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            assert check_response(response, None) is None, (path, body, response.text)
