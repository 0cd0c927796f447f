"""Regression tests for the attacks a review ran against a live server (issue 12).

Each test failed on the code before the fix: bodies read before the key was checked,
symbolic links followed out of the indexed folder, server paths shown to readers,
X-Forwarded-For trusted from any local client, routes without a rate limit, a rate-limit
table scanned under a lock, upload ids that collided, rejected uploads kept, a 500 for a
file/folder clash, collection names with a trailing newline, forged log lines, unbounded
abandoned work, and every collection loaded to be listed.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.encoding import Embedder
from qa.http.app import create_app
from qa.http.limits import RateLimiter, client_key
from qa.ingest.discovery import discover
from qa.ingest.documents import Skip
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import running, serve_in_thread

KEY = "security-key-5b1e0c"
AUTH = {"Authorization": f"Bearer {KEY}"}
PROSE = "The harbour master logs every ship that enters the port before noon on weekdays."


def error_of(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return str(body["error"]["message"])


@pytest.fixture(scope="module")
def writable(
    tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path, embedder: Embedder
) -> Iterator[tuple[str, QAService]]:
    """A real server with the write API on, over a copy of the seed index."""
    index = tmp_path_factory.mktemp("security") / "index"
    shutil.copytree(seed_index_dir, index)
    settings = make_settings(index, api_key=KEY)
    service = QAService(settings, embedder)
    with serve_in_thread(create_app(settings, service)) as base:
        yield base, service


# --------------------------------------------------------------------------- 1. auth before the body


def _raw_post(
    base: str, path: str, headers: dict[str, str], first_bytes: bytes
) -> tuple[int, dict[str, Any]]:
    """Send a POST's headers and the first bytes of a (much longer) body, then wait for a reply.

    A server that reads the body before checking the key would wait for the rest (and
    answer only at its read deadline); one that checks first answers at once.
    """
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        sock.sendall(head.encode() + b"\r\n" + first_bytes)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(
                65536
            )  # a socket.timeout here means the server sat waiting for the body
            assert chunk, "connection closed without a response"
            data += chunk
        head_text, _, body = data.partition(b"\r\n\r\n")
        lines = head_text.decode("latin-1").split("\r\n")
        length = int(
            next(
                v
                for k, _, v in (l.partition(":") for l in lines[1:])
                if k.lower() == "content-length"
            )
        )
        while len(body) < length:
            body += sock.recv(65536)
        return int(lines[0].split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/collections/default/documents",
        "/v1/collections/default/reindex",
        "/v1/collections/default/no-such-route",
    ],
)
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_no_body_is_read_before_the_key_is_checked(
    writable: tuple[str, QAService], path: str, key: str | None
) -> None:
    base, _ = writable
    headers = {"Content-Type": "application/json", "Content-Length": str(9_900_000)}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    status, body = _raw_post(base, path, headers, b'{"id": "x", "text": "')
    if path.endswith(
        "no-such-route"
    ):  # an unknown route is held to the small limit, never the upload one
        assert (status, body["error"]["code"]) == (413, "payload_too_large"), body
    else:
        assert (status, body["error"]["code"]) == (401, "unauthorized"), body
    # chunked, with no length announced: refused just the same, before any of it is read
    chunked = {k: v for k, v in headers.items() if k != "Content-Length"} | {
        "Transfer-Encoding": "chunked"
    }
    status, body = _raw_post(base, path, chunked, b"10\r\n0123456789abcdef\r\n")
    assert status in {401, 404}, body


def test_the_upload_limit_is_only_for_key_holders(writable: tuple[str, QAService]) -> None:
    base, service = writable
    small = service.settings.max_body_bytes
    big = b"x" * (small + 10)
    with httpx.Client(base_url=base, timeout=60) as http:
        error_of(
            http.post("/v1/ask", content=big, headers={"content-type": "application/json"}),
            413,
            "payload_too_large",
        )
        error_of(http.post("/v1/collections/default/documents", content=big), 401, "unauthorized")
        # with the key, a body past the small limit (but under the upload one) is read and judged
        document = {
            "id": "long-note",
            "title": "Long note",
            "text": (PROSE + " ") * (small // len(PROSE) + 1),
        }
        assert (
            http.post("/v1/collections/default/documents", json=document, headers=AUTH).status_code
            == 201
        )


# --------------------------------------------------------------------------- 2. symbolic links


@pytest.fixture
def linked_folder(tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "private"
    (private / "secrets").mkdir(parents=True)
    (private / "notes.txt").write_text(
        "Private notes\n\nThe vault code is 4711 and must never be served.\n"
    )
    (private / "secrets" / "plan.txt").write_text(
        "Plan\n\nThe merger with Okapi Ltd closes in June.\n"
    )
    corpus = tmp_path / "corpus"
    (corpus / "inner").mkdir(parents=True)
    (corpus / "public.txt").write_text(f"Harbour rules\n\n{PROSE}\n")
    (corpus / "inner" / "kept.txt").write_text(
        "Kept\n\nLinks inside the folder are fine to follow.\n"
    )
    (corpus / "notes.txt").symlink_to(private / "notes.txt")
    (corpus / "secrets").symlink_to(private / "secrets")
    (corpus / "alias.txt").symlink_to(corpus / "inner" / "kept.txt")  # stays inside: followed
    return corpus, private


def test_links_out_of_the_folder_are_not_followed(
    linked_folder: tuple[Path, Path], tmp_path: Path, embedder: Embedder
) -> None:
    corpus, _ = linked_folder
    found = list(discover([corpus]))
    documents = {d.id for d in found if not isinstance(d, Skip)}
    skips = {s.source: s.reason for s in found if isinstance(s, Skip)}
    assert documents == {"public.txt", "inner/kept.txt", "alias.txt"}
    assert set(skips) == {"corpus/notes.txt", "corpus/secrets"}
    assert all("outside the indexed folder" in r and "--follow-links" in r for r in skips.values())
    # indexed and served: the private text is nowhere
    settings = make_settings(tmp_path / "index")
    service = QAService(settings, embedder)
    report = service.index([corpus], "links")
    assert {s.source for s in report.skipped} == {"corpus/notes.txt", "corpus/secrets"}
    with (
        serve_in_thread(create_app(settings, service)) as base,
        httpx.Client(base_url=base, timeout=60) as http,
    ):
        assert (
            http.get("/v1/documents/notes.txt", params={"collection": "links"}).status_code == 404
        )
        reply = http.get(
            "/v1/search", params={"q": "vault code merger", "collection": "links"}
        ).json()
        assert "4711" not in json.dumps(reply) and "Okapi" not in json.dumps(reply)
        # the reindex endpoint (the folders recorded in the manifest) follows the same rule
        assert service.reindex("links").documents == 3
    # an explicit --follow-links includes them, and is remembered for the next reindex
    assert service.index([corpus], "links", follow_links=True).documents == 5
    assert service.reindex("links").documents == 5


def test_cli_follow_links_flag(linked_folder: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from qa.cli import app

    corpus, _ = linked_folder
    runner = CliRunner()
    env = {"QA_INDEX_DIR": str(tmp_path / "index")}
    result = runner.invoke(app, ["index", str(corpus), "-c", "l", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "outside the indexed folder" in result.output
    assert json.loads(result.stdout)["documents"] == 3
    result = runner.invoke(
        app, ["index", str(corpus), "-c", "l", "--follow-links", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["documents"] == 5


# --------------------------------------------------------------------------- 4. server paths


def test_readers_never_see_server_paths(tmp_path: Path, embedder: Embedder) -> None:
    secret_root = tmp_path / "srv-team-private-layout"
    corpus = secret_root / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "harbour.txt").write_text(f"Harbour rules\n\n{PROSE}\n")
    (corpus / "docs.jsonl").write_text(
        json.dumps({"_id": "j1", "title": "Tides", "text": "High tide is at six."}) + "\n"
    )
    settings = make_settings(tmp_path / "index", api_key=KEY)
    service = QAService(settings, embedder)
    service.index([corpus], "paths")
    where = str(tmp_path)
    with (
        serve_in_thread(create_app(settings, service)) as base,
        httpx.Client(base_url=base, timeout=60) as http,
    ):
        ask = http.post(
            "/v1/ask",
            json={"question": "When does the harbour master log ships?", "collection": "paths"},
        ).json()
        sources = {p["citation"]["source"] for p in ask["passages"]}
        assert "corpus/harbour.txt" in sources and "corpus/docs.jsonl:1" in sources, sources
        passage = ask["passages"][0]["passage_id"]
        responses = [
            ask,
            http.get("/v1/search", params={"q": "tide", "collection": "paths"}).json(),
            http.get("/v1/collections").json(),
            http.get("/v1/collections/paths").json(),
            http.get(f"/v1/passages/{passage}", params={"collection": "paths"}).json(),
            http.get("/v1/documents/harbour.txt", params={"collection": "paths"}).json(),
            http.post(
                "/v1/collections/paths/documents",
                files={"file": ("blank.md", b"# Only a title\n")},
                headers=AUTH,
            ).json(),
            http.post(
                "/v1/collections/paths/documents",
                files={"file": ("tiny.txt", b"\x00\x01")},
                headers=AUTH,
            ).json(),
            http.post(
                "/v1/collections/paths/documents", json={"id": "x", "text": "   "}, headers=AUTH
            ).json(),
            http.post(
                "/v1/collections/paths/documents",
                files={"file": ("up.txt", b"Up\n\nUploaded text.\n")},
                headers=AUTH,
            ).json(),
            http.post("/v1/collections/paths/reindex", headers=AUTH).json(),
        ]
        assert http.get("/v1/collections/paths").json()["sources"] == ["corpus"]
        document = http.get("/v1/documents/up.txt", params={"collection": "paths"}).json()
        assert document["source"] == "uploads/up.txt"
        responses.append(document)
    for response in responses:
        assert where not in json.dumps(response), response
    # the CLI, run by the owner, still names the folders in full
    from typer.testing import CliRunner

    from qa.cli import app

    listed = CliRunner().invoke(
        app, ["collections", "--json"], env={"QA_INDEX_DIR": str(tmp_path / "index")}
    )
    assert str(corpus) in listed.stdout


# --------------------------------------------------------------------------- 5. X-Forwarded-For


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
    seed_index_dir: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    limits = {"QA_RATE_LIMIT_PER_MINUTE": "6", "QA_RATE_LIMIT_BURST": "3"}
    with running(index, **limits) as (_, base, log):
        statuses = [
            httpx.get(
                f"{base}/v1/search",
                params={"q": "Haier"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            ).status_code
            for i in range(6)
        ]
        assert statuses.count(429) >= 3, (
            statuses
        )  # one client, one bucket, whatever the header says
        time.sleep(0.5)
        clients = {json.loads(line)["client"] for line in log if line.startswith('{"method"')}
        assert clients == {"127.0.0.1"}, clients
    with running(index, QA_TRUSTED_PROXIES="127.0.0.1", **limits) as (_, base, log):
        statuses = [
            httpx.get(
                f"{base}/v1/search",
                params={"q": "Haier"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            ).status_code
            for i in range(6)
        ]
        assert (
            statuses == [200] * 6
        )  # behind a trusted proxy each forwarded client has its own bucket
        time.sleep(0.5)
        clients = {json.loads(line)["client"] for line in log if line.startswith('{"method"')}
        assert {f"203.0.113.{i}" for i in range(6)} <= clients


# --------------------------------------------------------------------------- 6-7. rate limits


def test_every_route_that_does_work_is_limited(
    seed_index_dir: Path, seed_service: QAService
) -> None:
    settings = make_settings(
        seed_index_dir, rate_limit_per_minute=6, rate_limit_burst=4, api_key=KEY
    )
    client = TestClient(create_app(settings, seed_service))
    passage = seed_service.search("Casarte", top_k=1).passages[0].passage_id
    cheap = [f"/v1/passages/{passage}", "/v1/collections", "/v1/collections/default", "/v1/config"]
    for path in [*cheap, "/v1/documents/songjiang-g60-innovation-corridor.txt"]:
        limited = TestClient(create_app(settings, seed_service), client=(f"10.9.0.{len(path)}", 1))
        statuses = [limited.get(path).status_code for _ in range(40)]
        assert statuses[0] == 200 and 429 in statuses, (path, statuses)
        allowed = statuses.index(429)
        assert allowed == (20 if path in cheap else 4), (
            path,
            allowed,
        )  # cheaper routes are allowed more
    assert client.get("/healthz").status_code == 200  # liveness is free


def test_metrics_need_the_admin_key(seed_index_dir: Path, seed_service: QAService) -> None:
    client = TestClient(create_app(make_settings(seed_index_dir, api_key=KEY), seed_service))
    error_of(client.get("/metrics"), 401, "unauthorized")
    assert client.get("/metrics", headers=AUTH).status_code == 200
    closed = TestClient(create_app(make_settings(seed_index_dir), seed_service))
    assert "QA_API_KEY" in error_of(closed.get("/metrics"), 403, "admin_disabled")


def test_rate_limiter_table_is_bounded_and_constant_time() -> None:
    def per_call(limiter: RateLimiter, first: int, count: int) -> float:
        started = time.perf_counter()
        for i in range(first, first + count):
            limiter.take(f"c{i}")
        return (time.perf_counter() - started) / count

    limiter = RateLimiter(per_minute=60, burst=10, max_clients=50_000)
    small = min(per_call(limiter, 0, 1_000) for _ in range(3))
    per_call(limiter, 10_000, 45_000)  # fill the table
    large = min(per_call(limiter, 100_000 + 2_000 * r, 2_000) for r in range(3))
    assert len(limiter) <= 50_000
    # O(1): a scan of the table on every new client (the old limiter past 10,000) costs 100x here
    assert large / small < 8, (small, large)


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    key = client_key({"client": ("2001:db8:1:2:aaaa::1", 1)})
    assert key == client_key({"client": ("2001:db8:1:2:ffff:1:2:3", 1)}) == "2001:db8:1:2::/64"
    assert key != client_key({"client": ("2001:db8:1:3::1", 1)})
    assert client_key({"client": ("::ffff:192.0.2.7", 1)}) == "192.0.2.7"
    assert client_key({"client": ("192.0.2.7", 1)}) == "192.0.2.7"


# --------------------------------------------------------------------------- 8-11. uploads and names


def test_upload_ids_never_share_a_file(writable: tuple[str, QAService]) -> None:
    base, _ = writable
    with httpx.Client(base_url=base, timeout=120, headers=AUTH) as http:
        assert (
            http.post(
                "/v1/collections/ids/documents", json={"id": "a", "text": "Alpha apples are red."}
            ).status_code
            == 201
        )
        assert (
            http.post(
                "/v1/collections/ids/documents",
                json={"id": "a.jsonl", "text": "Beta bananas are yellow."},
            ).status_code
            == 201
        )
        assert http.delete("/v1/collections/ids/documents/a.jsonl").status_code == 200
        assert http.get("/v1/documents/a", params={"collection": "ids"}).status_code == 200
        after = http.post("/v1/collections/ids/reindex").json()
        assert (after["documents"], after["removed"]) == (1, 0), after  # 'a' is still kept on disk
        assert (
            http.post(
                "/v1/collections/ids/documents", json={"id": "b", "text": "Gamma grapes are green."}
            ).status_code
            == 201
        )
        for alias in ("./b", "b/", "b/.", " b", "x/../b"):
            response = http.post(
                "/v1/collections/ids/documents", json={"id": alias, "text": "Overwritten!"}
            )
            error_of(response, 400, "invalid_name")
        document = http.get("/v1/documents/b", params={"collection": "ids"}).json()
        assert "Gamma grapes" in document["text"]
        # a document id changing kind (text, then file) leaves exactly one file behind
        assert (
            http.post(
                "/v1/collections/ids/documents",
                json={"id": "c.txt", "text": "Delta dates are brown."},
            ).status_code
            == 201
        )
        upload = http.post(
            "/v1/collections/ids/documents",
            files={"file": ("c.txt", b"C\n\nEpsilon elderberries are dark.\n")},
        )
        assert upload.status_code == 201 and upload.json()["updated"] == 1
        assert http.post("/v1/collections/ids/reindex").json()["documents"] == 3


def test_rejected_writes_leave_no_trace(writable: tuple[str, QAService]) -> None:
    base, service = writable
    with httpx.Client(base_url=base, timeout=120, headers=AUTH) as http:
        # a failed create leaves no collection folder
        error_of(
            http.post(
                "/v1/collections/fresh/documents", files={"file": ("t.md", b"# Title only\n")}
            ),
            422,
            "unreadable_document",
        )
        assert not service.settings.collection_dir("fresh").exists()
        # a rejected upload to an existing collection is not saved
        assert (
            http.post("/v1/collections/keep/documents", json={"id": "k", "text": PROSE}).status_code
            == 201
        )
        error_of(
            http.post(
                "/v1/collections/keep/documents", files={"file": ("t.md", b"# Title only\n")}
            ),
            422,
            "unreadable_document",
        )
        uploads = service.indexer.uploads_dir("keep")
        assert [p.name for p in uploads.rglob("*") if p.is_file() and p.suffix != ".jsonl"] == []
        assert (
            http.post("/v1/collections/keep/reindex").json()["skipped"] == []
        )  # nothing to skip again


def test_file_and_folder_name_clash_is_409(writable: tuple[str, QAService]) -> None:
    base, _ = writable
    with httpx.Client(base_url=base, timeout=120, headers=AUTH) as http:
        assert (
            http.post(
                "/v1/collections/clash/documents", files={"file": ("p.txt", b"P\n\nPelicans.\n")}
            ).status_code
            == 201
        )
        error_of(
            http.post(
                "/v1/collections/clash/documents",
                files={"file": ("x", b"Q\n\nQuails.\n")},
                data={"name": "p.txt/q.txt"},
            ),
            409,
            "name_conflict",
        )
        assert (
            http.post(
                "/v1/collections/clash/documents",
                files={"file": ("x", b"R\n\nRavens.\n")},
                data={"name": "d/r.txt"},
            ).status_code
            == 201
        )
        error_of(
            http.post(
                "/v1/collections/clash/documents",
                files={"file": ("x", b"D\n\nDoves.\n")},
                data={"name": "d"},
            ),
            409,
            "name_conflict",
        )


def test_collection_names_are_matched_in_full(writable: tuple[str, QAService]) -> None:
    base, service = writable
    with httpx.Client(base_url=base, timeout=60, headers=AUTH) as http:
        for name in ("evil%0A", "evil%0D%0A", "evil%00"):
            response = http.post(f"/v1/collections/{name}/documents", json={"id": "a", "text": "x"})
            error_of(response, 400, "invalid_name")
            assert http.get(f"/v1/collections/{name}").status_code == 404
    assert not any("\n" in p.name for p in service.settings.index_dir.iterdir())


# --------------------------------------------------------------------------- suspected, confirmed and fixed


def test_plain_text_log_lines_cannot_be_forged(
    seed_index_dir: Path, seed_service: QAService, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(create_app(make_settings(seed_index_dir, log_json=False), seed_service))
    caplog.set_level(logging.INFO, logger="qa.access")
    caplog.clear()
    client.get("/v1/documents/x%0Amethod=GET route=/admin status=200")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "qa.access"]
    assert "\n" not in line and "\\n" in line


def _ask_at_once(http: httpx.Client, count: int) -> list[int]:
    """The statuses of ``count`` different questions asked at the same time."""
    results: list[int] = []

    def ask(number: int) -> None:
        reply = http.post("/v1/ask", json={"question": f"Haier {number}"})
        results.append(reply.status_code)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class SlowService(QAService):
    """Answers slowly, to hold worker threads."""

    delay = 1.5

    def search(self, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        time.sleep(self.delay)
        return super().search(*args, **kwargs)


def test_abandoned_questions_still_count_against_the_bound(
    seed_index_dir: Path, embedder: Embedder
) -> None:
    settings = make_settings(seed_index_dir, max_inflight=2, request_timeout_s=0.3)
    service = SlowService(settings, embedder)
    with (
        serve_in_thread(create_app(settings, service)) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        assert _ask_at_once(http, 2) == [504, 504]
        # both questions are still being worked on: a third is refused at once, not queued
        error_of(http.post("/v1/ask", json={"question": "Haier"}), 503, "busy")
        time.sleep(SlowService.delay + 0.5)
        assert http.post("/v1/ask", json={"question": "Haier"}).status_code == 504  # room again


class CountingService(QAService):
    """Records how many questions are worked on at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.running = self.most = 0
        self.lock = threading.Lock()

    def search(self, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.2)
        try:
            return super().search(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


def test_a_few_threads_answer_and_the_other_questions_wait_their_turn(
    seed_index_dir: Path, embedder: Embedder
) -> None:
    settings = make_settings(seed_index_dir, question_threads=2, max_inflight=8)
    service = CountingService(settings, embedder)
    with (
        serve_in_thread(create_app(settings, service)) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        assert _ask_at_once(http, 6) == [200] * 6  # queued, not refused
    assert service.most == 2


def test_collections_are_listed_without_loading_and_loaded_ones_are_bounded(
    tmp_path: Path, seed_index_dir: Path, embedder: Embedder
) -> None:
    index = tmp_path / "index"
    for name in ("c1", "c2", "c3"):
        shutil.copytree(seed_index_dir / "default", index / name)
    settings = make_settings(index, max_loaded_collections=2)
    service = QAService(settings, embedder)
    client = TestClient(create_app(settings, service))
    listed = client.get("/v1/collections").json()
    assert [c["name"] for c in listed["collections"]] == ["c1", "c2", "c3"]
    assert service._collections == {}  # listing loaded (and checksummed) nothing
    for name in ("c1", "c2", "c3", "c1"):
        assert (
            client.get("/v1/search", params={"q": "Haier", "collection": name}).status_code == 200
        )
    assert list(service._collections) == ["c3", "c1"]


def test_collections_the_write_api_may_create_are_capped(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path / "index", api_key=KEY, max_collections=2)
    client = TestClient(create_app(settings, QAService(settings, embedder)))
    for name in ("one", "two"):
        assert (
            client.post(
                f"/v1/collections/{name}/documents", json={"id": "a", "text": PROSE}, headers=AUTH
            ).status_code
            == 201
        )
    error_of(
        client.post(
            "/v1/collections/three/documents", json={"id": "a", "text": PROSE}, headers=AUTH
        ),
        409,
        "too_many_collections",
    )
    assert (
        client.post(
            "/v1/collections/two/documents", json={"id": "b", "text": PROSE}, headers=AUTH
        ).status_code
        == 201
    )
