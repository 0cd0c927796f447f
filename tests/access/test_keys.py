"""QA_AUTH=keys over a real server: the permission matrix (an HR reader, an engineering
reader, a public document) on every route, and the keys themselves (hashed at rest, revoked
at once, origins, scopes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qa.access import KeyStore
from qa.access.keys import KEYS_FILE, hash_token
from qa.http.app import create_app
from qa.service import QAService
from tests.access.conftest import ENG_TEXT, HR_TEXT, settings_of
from tests.helpers import serve_in_thread

ADMIN = "admin-secret-key-for-tests"
QUESTION = "When is the salary review?"


@pytest.fixture(scope="module")
def tokens(access_index: Path) -> dict[str, str]:
    store = KeyStore(access_index)
    from qa.access import Key

    made = {
        "alice": Key("alice", "", "read", ["hr"], ["team"]),
        "bob": Key("bob", "", "read", ["eng"], ["team", "other"]),
        "widget": Key("widget", "", "read", ["public"], ["team"], ["https://docs.example.com"]),
        "writer": Key("writer", "", "write", ["eng"], ["team"]),
        "slow": Key("slow", "", "read", ["public"], rate="1/min"),
    }
    return {name: store.create(key) for name, key in made.items()}


@pytest.fixture(scope="module")
def server(access_index: Path, access_service: QAService, tokens: dict[str, str]) -> Iterator[str]:
    settings = settings_of(access_index, auth="keys", api_key=ADMIN)
    with serve_in_thread(create_app(settings, access_service)) as base:
        yield base


def _as(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def _texts(body: dict) -> str:
    return json.dumps(body)


@pytest.mark.parametrize(
    ("user", "sees", "never"), [("alice", HR_TEXT, ENG_TEXT), ("bob", ENG_TEXT, HR_TEXT)]
)
def test_matrix_questions(
    server: str, tokens: dict[str, str], user: str, sees: str, never: str
) -> None:
    """Ask, search (every top_k), follow-ups and chat completions: only what the user may see."""
    headers = _as(tokens[user])
    for top_k in (1, 3, 10):
        ask = httpx.post(
            f"{server}/v1/ask",
            json={"question": QUESTION, "top_k": top_k},
            headers=headers,
            timeout=60,
        )
        search = httpx.get(
            f"{server}/v1/search",
            params={"q": "salary", "top_k": top_k},
            headers=headers,
            timeout=60,
        )
        for response in (ask, search):
            assert response.status_code == 200, response.text
            body = _texts(response.json())
            assert never.split(".")[0] not in body
        assert len(search.json()["passages"]) <= 3  # its document, the kites (bob) or public
    follow = {
        "question": "And who sets them?",
        "history": [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "In March."},
        ],
    }
    reply = httpx.post(f"{server}/v1/ask", json=follow, headers=headers, timeout=60).json()
    assert never.split(".")[0] not in _texts(reply)
    chat = {"model": "team", "messages": [{"role": "user", "content": QUESTION}]}
    completion = httpx.post(f"{server}/v1/chat/completions", json=chat, headers=headers, timeout=60)
    assert completion.status_code == 200 and never.split(".")[0] not in completion.text
    top = httpx.get(
        f"{server}/v1/search", params={"q": sees, "top_k": 1}, headers=headers, timeout=60
    ).json()
    assert top["passages"][0]["text"].startswith(sees.split(".")[0])


def test_matrix_documents_and_passages(
    server: str, access_service: QAService, tokens: dict[str, str]
) -> None:
    """A document (or passage) the caller may not see is the 404 of one that does not exist."""
    alice, bob = _as(tokens["alice"]), _as(tokens["bob"])
    missing = httpx.get(f"{server}/v1/documents/nope.md", headers=bob, timeout=30)
    hidden = httpx.get(f"{server}/v1/documents/hr/salaries.md", headers=bob, timeout=30)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace("hr/salaries.md", "X") == missing.json()[
        "error"
    ]["message"].replace("nope.md", "X")
    mine = httpx.get(f"{server}/v1/documents/hr/salaries.md", headers=alice, timeout=30)
    assert mine.status_code == 200 and mine.json()["groups"] == ["hr"]
    assert httpx.get(f"{server}/v1/documents/public.md", headers=bob, timeout=30).status_code == 200
    hr_passage = access_service.collection("team").passages_of(["hr/salaries.md"])[0].id
    assert (
        httpx.get(f"{server}/v1/passages/{hr_passage}", headers=bob, timeout=30).status_code == 404
    )
    assert (
        httpx.get(f"{server}/v1/passages/{hr_passage}", headers=alice, timeout=30).status_code
        == 200
    )
    page = httpx.get(
        f"{server}/documents/hr/salaries.md", headers={**bob, "Accept": "text/html"}, timeout=30
    )
    assert page.status_code == 404 and "salary review" not in page.text.lower()


def test_matrix_collections_and_counts(server: str, tokens: dict[str, str]) -> None:
    alice = httpx.get(f"{server}/v1/collections", headers=_as(tokens["alice"]), timeout=30).json()
    assert [c["name"] for c in alice["collections"]] == ["team"]  # "other" is not hers
    assert alice["collections"][0]["documents"] == 2  # her document and the public one
    models = httpx.get(f"{server}/v1/models", headers=_as(tokens["alice"]), timeout=30).json()
    assert [m["id"] for m in models["data"]] == ["team"]
    other = httpx.get(
        f"{server}/v1/search",
        params={"q": "office", "collection": "other"},
        headers=_as(tokens["alice"]),
        timeout=30,
    )
    assert (
        other.status_code == 404 and "'other'" not in other.json()["error"]["message"].split(";")[1]
    )
    everything = httpx.get(f"{server}/v1/collections", headers=_as(ADMIN), timeout=30).json()
    assert {c["name"] for c in everything["collections"]} == {"team", "other"}
    assert {c["documents"] for c in everything["collections"] if c["name"] == "team"} == {4}


def test_without_credentials_and_metrics(server: str, tokens: dict[str, str]) -> None:
    assert (
        httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, timeout=30).status_code == 401
    )
    assert httpx.get(f"{server}/v1/collections", timeout=30).status_code == 401
    assert (
        httpx.get(
            f"{server}/v1/search", params={"q": "x"}, headers=_as("qa_forged"), timeout=30
        ).status_code
        == 401
    )
    assert httpx.get(f"{server}/healthz", timeout=30).status_code == 200
    assert (
        httpx.get(f"{server}/metrics", headers=_as(tokens["alice"]), timeout=30).status_code == 403
    )
    assert httpx.get(f"{server}/metrics", headers=_as(ADMIN), timeout=30).status_code == 200


def test_scopes_and_collections_on_writes(server: str, tokens: dict[str, str]) -> None:
    doc = {
        "id": "note",
        "title": "Note",
        "text": "Blue green deploys swap two fleets.",
        "groups": ["eng"],
    }
    read = httpx.post(
        f"{server}/v1/collections/team/documents",
        json=doc,
        headers=_as(tokens["alice"]),
        timeout=60,
    )
    assert read.status_code == 403 and read.json()["error"]["code"] == "insufficient_scope"
    elsewhere = httpx.post(
        f"{server}/v1/collections/other/documents",
        json=doc,
        headers=_as(tokens["writer"]),
        timeout=60,
    )
    assert elsewhere.status_code == 403
    foreign = {**doc, "groups": ["hr"]}
    refused = httpx.post(
        f"{server}/v1/collections/team/documents",
        json=foreign,
        headers=_as(tokens["writer"]),
        timeout=60,
    )
    assert refused.status_code == 403 and "'hr'" in refused.json()["error"]["message"]
    overwrite = {**doc, "id": "hr/salaries.md"}
    replaced = httpx.post(
        f"{server}/v1/collections/team/documents",
        json=overwrite,
        headers=_as(tokens["writer"]),
        timeout=60,
    )
    assert replaced.status_code == 403  # a document it may not read is not its to replace
    wrote = httpx.post(
        f"{server}/v1/collections/team/documents",
        json=doc,
        headers=_as(tokens["writer"]),
        timeout=120,
    )
    assert wrote.status_code == 201, wrote.text
    assert (
        httpx.get(
            f"{server}/v1/documents/note", headers=_as(tokens["alice"]), timeout=30
        ).status_code
        == 404
    )
    assert httpx.get(f"{server}/v1/documents/note", headers=_as(tokens["bob"]), timeout=30).json()[
        "groups"
    ] == ["eng"]
    hidden = httpx.delete(
        f"{server}/v1/collections/team/documents/hr/salaries.md",
        headers=_as(tokens["writer"]),
        timeout=60,
    )
    assert hidden.status_code == 404  # the writer may not see it: it can't delete it either
    gone = httpx.delete(
        f"{server}/v1/collections/team/documents/note", headers=_as(tokens["writer"]), timeout=120
    )
    assert gone.status_code == 200


def test_keys_hashed_at_rest_revoked_at_once(
    server: str, access_index: Path, tokens: dict[str, str]
) -> None:
    stored = (access_index / KEYS_FILE).read_text(encoding="utf-8")
    assert all(token not in stored for token in tokens.values())
    assert hash_token(tokens["alice"]) in stored
    assert (access_index / KEYS_FILE).stat().st_mode & 0o077 == 0
    store = KeyStore(access_index)
    token = store.create(
        __import__("qa.access", fromlist=["Key"]).Key("temp", "", "read", ["public"])
    )
    assert (
        httpx.get(
            f"{server}/v1/search", params={"q": "office"}, headers=_as(token), timeout=30
        ).status_code
        == 200
    )
    store.revoke("temp")
    assert (
        httpx.get(
            f"{server}/v1/search", params={"q": "office"}, headers=_as(token), timeout=30
        ).status_code
        == 401
    )


def test_origin_and_rate_of_a_widget_key(server: str, tokens: dict[str, str]) -> None:
    widget = tokens["widget"]
    good = httpx.get(
        f"{server}/v1/search",
        params={"q": "office"},
        headers=_as(widget, Origin="https://docs.example.com"),
        timeout=30,
    )
    assert good.status_code == 200 and "salary review" not in good.text
    for origin in ({"Origin": "https://evil.example.com"}, {}):
        bad = httpx.get(
            f"{server}/v1/search", params={"q": "office"}, headers=_as(widget, **origin), timeout=30
        )
        assert bad.status_code == 403 and bad.json()["error"]["code"] == "wrong_origin"
    slow = _as(tokens["slow"])
    search = f"{server}/v1/search?q=office"  # a question costs a whole token
    assert httpx.get(search, headers=slow, timeout=30).status_code == 200
    limited = httpx.get(search, headers=slow, timeout=30)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_every_stored_hash_is_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup neither stops at the matching key nor compares with ``==``: each stored
    hash goes through ``hmac.compare_digest``, whichever key (if any) matches."""
    from qa.access import Key
    from qa.access import keys as keys_module

    store = KeyStore(tmp_path)
    made = [store.create(Key(f"k{i}", "", "read", ["public"])) for i in range(3)]
    calls: list[int] = []
    real = keys_module.hmac.compare_digest

    def counted(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", counted)
    for token in (made[0], made[2], "qa_wrong"):
        calls.clear()
        found = store.find(token)
        assert len(calls) == 3
        assert (found.name if found else None) == {made[0]: "k0", made[2]: "k2"}.get(token)


def test_wrong_keys_are_rate_limited(access_index: Path, access_service: QAService) -> None:
    """Guessing keys costs what any request does: past the address's bucket, 429 (not 401)."""
    settings = settings_of(access_index, auth="keys", rate_limit_per_minute=60)
    settings = settings.model_copy(update={"rate_limit_burst": 2})
    with serve_in_thread(create_app(settings, access_service)) as base:
        statuses = [
            httpx.get(f"{base}/v1/search?q=x", headers=_as(f"qa_guess{i}"), timeout=30).status_code
            for i in range(3)
        ]
    assert statuses == [401, 401, 429]
