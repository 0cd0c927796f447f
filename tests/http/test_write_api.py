"""The write API over a real uvicorn server: keys, limits, names, add/replace/delete, reindex, busy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qa.encoding import Embedder
from qa.http.app import create_app
from qa.service import QAService
from qa.store import current_generation, writer_lock
from qa.store.uploads import record_path
from tests.conftest import make_settings
from tests.helpers import serve_in_thread

KEY = "test-key-7f3a9c"
AUTH = {"Authorization": f"Bearer {KEY}"}
UPLOAD_LIMIT = 4096
VOLCANO_MD = (
    "# Volcano watch\n\n"
    "Seismometers on Mount Veltrana recorded a swarm of small earthquakes in March.\n\n"
    "The observatory raised the alert level after sulphur dioxide emissions doubled.\n"
)


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]
    return str(body["error"]["message"])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("write-api")


@pytest.fixture(scope="module")
def service(root: Path, embedder: Embedder) -> QAService:
    settings = make_settings(root / "index", api_key=KEY, max_upload_bytes=UPLOAD_LIMIT)
    return QAService(settings, embedder)


@pytest.fixture(scope="module")
def server(service: QAService) -> Iterator[str]:
    with serve_in_thread(create_app(service.settings, service)) as base:
        yield base


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=300) as client:
        yield client


def _add(http: httpx.Client, collection: str, **request: object) -> httpx.Response:
    """POST to the collection's documents with the right key."""
    return http.post(f"/v1/collections/{collection}/documents", headers=AUTH, **request)  # type: ignore[arg-type]


def stored(uploads: Path) -> list[str]:
    """Every file kept in a collection's uploads folder, relative to it."""
    return sorted(p.relative_to(uploads).as_posix() for p in uploads.rglob("*") if p.is_file())


def record_of(uploads: Path, document_id: str) -> str:
    return record_path(uploads, document_id).relative_to(uploads).as_posix()


def _search(http: httpx.Client, query: str, collection: str, k: int = 5) -> dict:  # type: ignore[type-arg]
    response = http.get("/v1/search", params={"q": query, "top_k": k, "collection": collection})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- keys


def test_writes_need_the_right_key(http: httpx.Client, service: QAService) -> None:
    document = {"id": "k", "title": "Kites", "text": "Box kites fly in strong winds."}
    attempts = [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Bearer {KEY[:-1]}"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer caf\u00e9".encode()},  # non-ASCII bytes: still 401, not a crash
    ]
    for headers in attempts:
        message = _error(
            http.post("/v1/collections/keys/documents", json=document, headers=headers),
            401,
            "unauthorized",
        )
        assert "Bearer" in message
        _error(
            http.delete("/v1/collections/keys/documents/k", headers=headers), 401, "unauthorized"
        )
        _error(http.post("/v1/collections/keys/reindex", headers=headers), 401, "unauthorized")
        upload = http.post(
            "/v1/collections/keys/documents",
            files={"file": ("a.txt", b"A\n\nSome text here.\n")},
            headers=headers,
        )
        _error(upload, 401, "unauthorized")
    assert not service.settings.collection_dir("keys").exists()  # nothing was written


def test_write_api_is_disabled_without_a_key(tmp_path: Path, embedder: Embedder) -> None:
    settings = make_settings(tmp_path / "index")
    assert settings.api_key is None
    with (
        serve_in_thread(create_app(settings, QAService(settings, embedder))) as base,
        httpx.Client(base_url=base) as http,
    ):
        for headers in ({}, AUTH):
            responses = [
                http.post(
                    "/v1/collections/c/documents",
                    json={"id": "a", "text": "Some text."},
                    headers=headers,
                ),
                http.post(
                    "/v1/collections/c/documents",
                    files={"file": ("a.txt", b"A\n\nSome text.\n")},
                    headers=headers,
                ),
                http.delete("/v1/collections/c/documents/a", headers=headers),
                http.post("/v1/collections/c/reindex", headers=headers),
            ]
            for response in responses:
                assert "QA_API_KEY" in _error(response, 403, "write_disabled")
    assert not (tmp_path / "index" / "c").exists()


# --------------------------------------------------------------------------- limits and names


def test_uploads_over_the_size_limit_are_refused(http: httpx.Client, service: QAService) -> None:
    big = b"Big\n\n" + b"A sentence that repeats to make the file large. " * 200
    assert len(big) > UPLOAD_LIMIT
    _error(_add(http, "big", files={"file": ("big.txt", big)}), 413, "payload_too_large")
    _error(
        _add(http, "big", json={"id": "big", "text": big.decode()}),
        413,
        "payload_too_large",
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it arrives
        for _ in range(10):
            yield b"x" * 1000

    chunked = http.post(
        "/v1/collections/big/documents",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    _error(chunked, 413, "payload_too_large")
    assert not service.settings.collection_dir("big").exists()


BAD_NAMES = [
    "../x.txt",
    "../../x.txt",
    "/etc/passwd",
    "/tmp/evil.txt",
    "a/../../b.txt",
    "sub/../../../c.txt",
    "..\\..\\d.txt",
    "a\x00b.txt",
    ".hidden.txt",
    "sub/.git/config.txt",
    "..",
    "",
]


def test_path_traversal_is_rejected(http: httpx.Client, service: QAService, root: Path) -> None:
    passwd = Path("/etc/passwd").read_bytes() if Path("/etc/passwd").exists() else None
    before = {p for p in root.rglob("*")}
    body = b"Evil\n\nThis file must never be written anywhere.\n"
    for name in BAD_NAMES:
        # as the form's "name" field ...
        response = http.post(
            "/v1/collections/names/documents",
            files={"file": ("ok.txt", body)},
            data={"name": name},
            headers=AUTH,
        )
        if name == "":  # an empty name falls back to the file's own name: that one is fine
            assert response.status_code == 201, response.text
            continue
        _error(response, 400, "invalid_name")
        # ... and as the uploaded file's own name
        if "\x00" not in name:
            _error(_add(http, "names", files={"file": (name, body)}), 400, "invalid_name")
        # ... and as a JSON document id
        if name.strip("/\\"):
            response = _add(http, "names", json={"id": name, "text": "Evil text here."})
            assert (
                response.status_code == 400 and response.json()["error"]["code"] == "invalid_name"
            ), (name, response.text)
    _error(_add(http, "bad name!", json={"id": "a", "text": "x"}), 400, "invalid_name")
    # nothing landed outside the collection's uploads folder
    uploads = service.indexer.uploads_dir("names")
    created = {p for p in root.rglob("*") if p.is_file()} - before
    assert all(
        uploads in p.parents or service.settings.collection_dir("names") in p.parents
        for p in created
    ), created
    assert sorted(p.relative_to(uploads).as_posix() for p in uploads.rglob("*") if p.is_file()) == [
        "ok.txt"
    ]
    for stray in ("x.txt", "b.txt", "c.txt", "d.txt", "evil.txt"):
        assert not (root / stray).exists() and not (root.parent / stray).exists()
    assert not Path("/tmp/evil.txt").exists()
    if passwd is not None:
        assert Path("/etc/passwd").read_bytes() == passwd


def test_unsupported_or_unreadable_uploads_are_422(http: httpx.Client) -> None:
    for name, data in [
        ("tool.exe", b"MZ\x90\x00binary"),
        ("data.jsonl", b'{"_id": "x", "text": "y"}\n'),
        ("noext", b"plain text"),
        ("blob.txt", b"\x00\x01\x02 binary"),
        ("empty.md", b"   \n"),
    ]:
        message = _error(
            _add(http, "types", files={"file": (name, data)}),
            422,
            "unreadable_document",
        )
        assert name in message
    _error(_add(http, "types", json={"id": "x", "text": ""}), 422, "validation_error")
    _error(
        http.post(
            "/v1/collections/types/documents",
            content=b"id=x",
            headers={**AUTH, "Content-Type": "text/plain"},
        ),
        415,
        "unsupported_media_type",
    )


# --------------------------------------------------------------------------- add, replace, delete


def test_json_add_replace_delete(http: httpx.Client, service: QAService) -> None:
    first = {
        "id": "guide/kites",
        "title": "Kites",
        "text": "Box kites fly steadily in strong coastal winds.\n\n"
        "A kite line of braided Dyneema resists abrasion on the beach.",
    }
    added = _add(http, "docs", json=first)
    assert added.status_code == 201, added.text
    report = added.json()
    assert (report["added"], report["updated"], report["removed"]) == (1, 0, 0)
    assert report["generation"] == current_generation(service.settings.collection_dir("docs"))
    found = _search(http, "What kind of kite line resists abrasion?", "docs")
    assert found["generation"] == report["generation"]
    assert found["passages"][0]["citation"]["document_id"] == "guide/kites"
    assert "Dyneema" in found["passages"][0]["text"]
    # a second document so the collection outlives the deletes below
    other = {
        "id": "bread",
        "title": "Bread",
        "text": "Sourdough starter ferments flour with wild yeast.",
    }
    assert _add(http, "docs", json=other).status_code == 201

    # replace: same id, new text; the old text is gone from every retriever
    second = {**first, "text": "Delta kites are easy to launch from an open field in light wind."}
    replaced = _add(http, "docs", json=second)
    assert replaced.status_code == 201 and (
        replaced.json()["added"],
        replaced.json()["updated"],
    ) == (0, 1)
    stored = http.get("/v1/documents/guide/kites", params={"collection": "docs"}).json()
    assert stored["text"] == second["text"] and len(stored["passages"]) == 1
    for mode_query in ("braided Dyneema kite line abrasion", "Dyneema"):
        texts = [p["text"] for p in _search(http, mode_query, "docs")["passages"]]
        assert not any("Dyneema" in t for t in texts), texts
    assert (
        "Delta kites"
        in _search(http, "Which kites are easy to launch?", "docs")["passages"][0]["text"]
    )

    # delete: 200, then the document is 404 and its text unfindable
    deleted = http.delete("/v1/collections/docs/documents/guide/kites", headers=AUTH)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["removed"] == 1 and deleted.json()["documents"] == 1
    _error(
        http.get("/v1/documents/guide/kites", params={"collection": "docs"}),
        404,
        "unknown_document",
    )
    for query in ("Which kites are easy to launch?", "Delta kites open field"):
        passages = _search(http, query, "docs")["passages"]
        assert all(
            p["citation"]["document_id"] != "guide/kites" and "kite" not in p["text"].lower()
            for p in passages
        )
    assert not (service.indexer.uploads_dir("docs") / "guide" / "kites.jsonl").exists()
    _error(
        http.delete("/v1/collections/docs/documents/guide/kites", headers=AUTH),
        404,
        "unknown_document",
    )
    _error(
        http.delete("/v1/collections/nowhere/documents/x", headers=AUTH), 404, "unknown_collection"
    )


def test_file_upload_is_searchable_with_exact_citations(
    http: httpx.Client, service: QAService
) -> None:
    response = http.post(
        "/v1/collections/files/documents",
        files={"file": ("volcano.md", VOLCANO_MD.encode(), "text/markdown")},
        data={"name": "notes/volcano.md"},
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    assert response.json()["added"] == 1 and response.json()["passages"] == 2
    saved = service.indexer.uploads_dir("files") / "notes" / "volcano.md"
    assert saved.read_bytes() == VOLCANO_MD.encode()

    reply = http.post(
        "/v1/ask", json={"question": "Why was the alert level raised?", "collection": "files"}
    ).json()
    first = reply["passages"][0]
    assert "sulphur dioxide emissions doubled" in first["text"]
    citation = first["citation"]
    assert citation["document_id"] == "notes/volcano.md" and citation["title"] == "Volcano watch"
    document = http.get(
        f"/v1/documents/{citation['document_id']}", params={"collection": "files"}
    ).json()
    assert document["text"] == VOLCANO_MD
    assert document["text"][citation["char_start"] : citation["char_end"]] == first["text"]
    assert reply["answer"] and reply["answer"]["passage_id"] == first["passage_id"]

    # uploading the same name again replaces the file and the document
    again = http.post(
        "/v1/collections/files/documents",
        files={
            "file": (
                "volcano.md",
                b"# Volcano watch\n\nThe alert level was lowered in May after the swarm ended.\n",
            )
        },
        data={"name": "notes/volcano.md"},
        headers=AUTH,
    )
    assert (
        again.status_code == 201 and again.json()["updated"] == 1 and again.json()["documents"] == 1
    )
    texts = [
        p["text"] for p in _search(http, "sulphur dioxide emissions doubled", "files")["passages"]
    ]
    assert texts == ["The alert level was lowered in May after the swarm ended."]
    assert b"lowered in May" in saved.read_bytes()


def test_reindex_endpoint_picks_up_folder_changes(
    http: httpx.Client, service: QAService, tmp_path: Path
) -> None:
    folder = tmp_path / "library"
    folder.mkdir()
    for name, text in {
        "alpaca.txt": "Alpacas\n\nAlpacas are raised in the Andes for their soft fleece.\n",
        "glacier.txt": "Glaciers\n\nThe Morvik glacier retreated two kilometres since 1890.\n",
        "bees.txt": "Bees\n\nHoneybee colonies swarm in late spring.\n",
    }.items():
        (folder / name).write_text(text)
    service.index([folder], "lib")
    live = current_generation(service.settings.collection_dir("lib"))

    unchanged = http.post("/v1/collections/lib/reindex", headers=AUTH)
    assert unchanged.status_code == 200, unchanged.text
    body = unchanged.json()
    assert (
        body["added"],
        body["updated"],
        body["removed"],
        body["unchanged"],
        body["embedded"],
    ) == (0, 0, 0, 3, 0)
    assert body["generation"] == live

    (folder / "bees.txt").unlink()
    (folder / "glacier.txt").write_text(
        "Glaciers\n\nThe Morvik glacier retreated three kilometres since 1890.\n"
    )
    (folder / "kites.txt").write_text("Kites\n\nBox kites fly steadily in strong coastal winds.\n")
    changed = http.post("/v1/collections/lib/reindex", headers=AUTH).json()
    assert (changed["added"], changed["updated"], changed["removed"], changed["unchanged"]) == (
        1,
        1,
        1,
        1,
    )
    assert changed["documents"] == 3 and changed["generation"] != live
    assert (
        "three kilometres"
        in _search(http, "How far did the Morvik glacier retreat?", "lib")["passages"][0]["text"]
    )
    full = http.post("/v1/collections/lib/reindex", params={"full": "true"}, headers=AUTH).json()
    assert full["embedded"] == full["passages"] == 3
    _error(http.post("/v1/collections/none-such/reindex", headers=AUTH), 404, "unknown_collection")


def test_second_writer_gets_409_busy(http: httpx.Client, service: QAService) -> None:
    created = _add(http, "busy", json={"id": "a", "text": "Alpacas give soft fleece."})
    assert created.status_code == 201
    directory = service.settings.collection_dir("busy")
    live = current_generation(directory)
    with writer_lock(directory):  # another writer (another process, the CLI, ...) is at work
        responses = [
            _add(http, "busy", json={"id": "b", "text": "Bees swarm in spring."}),
            _add(http, "busy", files={"file": ("c.txt", b"C\n\nCranes nest in reeds.\n")}),
            http.delete("/v1/collections/busy/documents/a", headers=AUTH),
            http.post("/v1/collections/busy/reindex", headers=AUTH),
        ]
        for response in responses:
            message = _error(response, 409, "busy")
            assert "another writer" in message and "try again" in message
            assert response.headers.get("retry-after")
        # readers are not blocked by a writer
        assert _search(http, "fleece", "busy")["generation"] == live
    assert current_generation(directory) == live
    uploads = service.indexer.uploads_dir("busy")
    assert stored(uploads) == [record_of(uploads, "a")]  # the refused uploads were not saved
    after = _add(http, "busy", json={"id": "b", "text": "Bees swarm in spring."})
    assert after.status_code == 201 and after.json()["documents"] == 2


def test_delete_removes_only_the_documents_own_file(http: httpx.Client, service: QAService) -> None:
    """A document's ``source`` is free text: deleting it must not delete another document's upload."""
    keep = _add(http, "own", files={"file": ("keep.txt", b"Keep\n\nCranes nest in the reeds.\n")})
    assert keep.status_code == 201
    uploads = service.indexer.uploads_dir("own")
    trick = {
        "id": "trick",
        "text": "Herons wade in shallow water.",
        "source": str(uploads / "keep.txt"),
    }
    assert _add(http, "own", json=trick).status_code == 201
    assert http.delete("/v1/collections/own/documents/trick", headers=AUTH).status_code == 200
    assert (uploads / "keep.txt").exists(), "deleting 'trick' removed another document's file"
    assert not record_path(uploads, "trick").exists()
    assert stored(uploads) == ["keep.txt"]
    # the reindex still finds keep.txt (its file is there) and not trick
    body = http.post("/v1/collections/own/reindex", headers=AUTH).json()
    assert (body["documents"], body["removed"], body["unchanged"]) == (1, 0, 1)
    # the last document can't be deleted (a collection keeps at least one passage): refused, nothing changes
    live = current_generation(service.settings.collection_dir("own"))
    _error(
        http.delete("/v1/collections/own/documents/keep.txt", headers=AUTH), 409, "nothing_to_index"
    )
    assert (uploads / "keep.txt").exists(), "a refused delete must not remove the file"
    assert current_generation(service.settings.collection_dir("own")) == live
    assert http.get("/v1/documents/keep.txt", params={"collection": "own"}).status_code == 200
    # with another document beside it, it can
    assert _add(http, "own", json={"id": "other", "text": "Storks fly south."}).status_code == 201
    assert http.delete("/v1/collections/own/documents/keep.txt", headers=AUTH).status_code == 200
    assert not (uploads / "keep.txt").exists()
