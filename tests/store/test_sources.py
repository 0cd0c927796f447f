"""Choosing what goes in (--include/--exclude, .qaignore) and the status of every source
(issue 18), through the service, the HTTP API and the CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from qa.encoding import Embedder
from qa.http.app import create_app
from qa.service import QAService
from qa.store import read_manifest
from qa.store.manifest import SourceOptions
from qa.store.status import STATUS
from tests.conftest import make_settings
from tests.helpers import qa, serve_in_thread

KEY = "sources-admin-key"
PAGE = (
    "The harbour ferry leaves the north pier every forty minutes between six in the morning "
    "and midnight. Tickets are sold at the kiosk beside the pier and on board, and bicycles "
    "travel free outside the rush hours. In winter the last two crossings are cancelled when "
    "the wind is stronger than force seven, and a bus replaces them along the coast road. "
    "Children under twelve travel free with an adult, and dogs are welcome on the open deck."
)
FILES = {
    "guide/ferry.html": f"<html><head><title>Ferry</title></head><body><h1>Ferry</h1><p>{PAGE}</p></body></html>",
    "guide/_sources/ferry.rst.txt": f"Ferry\n=====\n\n{PAGE}\n",
    "notes/library.md": "# Library\n\nThe library lends laptops for two weeks; renewals are made at the front desk.\n",
    "notes/canteen.txt": "Canteen\n\nThe canteen serves a vegetarian dish every day and soup on Fridays.\n",
    "notes/blob.txt": "binary\x00data",
    "drafts/plan.md": "# Plan\n\nA draft that must never be indexed: the secret budget of the harbour.\n",
    "notes/scratch.log": "not a document type\n",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[QAService, Path]:
    root = tmp_path_factory.mktemp("sources")
    share = root / "share"
    for name, text in FILES.items():
        (share / name).parent.mkdir(parents=True, exist_ok=True)
        (share / name).write_text(text, encoding="utf-8")
    (share / "notes" / ".qaignore").write_text("canteen.txt\n", encoding="utf-8")
    service = QAService(make_settings(root / "index", api_key=KEY), embedder)
    options = SourceOptions(exclude=["drafts/", "*.log"])
    service.index([share], "shared", options=options)
    return service, share


def _states(service: QAService) -> dict[str, tuple[str, str | None]]:
    _, _, records = service.sources("shared")
    return {r.source: (r.state, r.reason) for r in records}


def test_every_source_has_a_state_and_a_reason(built: tuple[QAService, Path]) -> None:
    service, _ = built
    name, generation, records = service.sources("shared")
    states = {r.source: r for r in records}
    assert states["share/guide/ferry.html"].state == "indexed"  # the page over its source
    assert states["share/guide/ferry.html"].passages >= 1
    assert states["share/guide/ferry.html"].content_hash
    copy = states["share/guide/_sources/ferry.rst.txt"]
    assert copy.state == "skipped" and copy.reason.startswith("duplicate of share/guide/ferry.html")
    assert states["share/notes/blob.txt"].state == "failed"
    assert "binary" in str(states["share/notes/blob.txt"].reason)
    assert states["share/drafts/"].reason == "excluded by --exclude 'drafts/'"
    assert states["share/notes/scratch.log"].reason == "excluded by --exclude '*.log'"
    assert (
        states["share/notes/canteen.txt"].reason
        == "ignored by share/notes/.qaignore ('canteen.txt')"
    )
    assert records[0].state == "failed"  # failures first
    assert generation == read_manifest(service.settings.collection_dir(name)).generation
    options = read_manifest(service.settings.collection_dir("shared")).source_options
    assert options.exclude == ["drafts/", "*.log"]


def test_reindex_applies_the_remembered_rules_and_tracks_changes(
    built: tuple[QAService, Path], caplog: pytest.LogCaptureFixture
) -> None:
    service, share = built
    first = {r.source: r for r in service.sources("shared")[2]}
    (share / "notes" / "library.md").write_text(
        "# Library\n\nThe library lends laptops for three weeks now; ask at the front desk.\n",
        encoding="utf-8",
    )
    (share / "drafts" / "more.md").write_text("# More\n\nAnother secret draft.\n", encoding="utf-8")
    caplog.set_level(logging.INFO, logger="qa.sources")
    report = service.reindex("shared")  # what POST /v1/collections/shared/reindex runs
    assert (report.updated, report.added) == (1, 0)
    now = {r.source: r for r in service.sources("shared")[2]}
    assert now["share/notes/library.md"].state == "indexed"
    assert (
        now["share/notes/library.md"].content_hash != first["share/notes/library.md"].content_hash
    )
    ferry = now["share/guide/ferry.html"]
    assert ferry.state == "unchanged"
    assert ferry.changed_at == first["share/guide/ferry.html"].changed_at  # kept from the first run
    assert "share/drafts/more.md" not in now and now["share/drafts/"].state == "skipped"
    line = json.loads(next(r.getMessage() for r in caplog.records if r.name == "qa.sources"))
    assert line["event"] == "sources_synced" and line["updated"] == 1
    assert (line["failed"], line["skipped"]) == (1, 4)
    failed = service.sources("shared", "failed")[2]
    assert [r.source for r in failed] == ["share/notes/blob.txt"]


def test_sources_route_is_admin_only(built: tuple[QAService, Path], tmp_path: Path) -> None:
    service, _ = built
    with serve_in_thread(create_app(service.settings, service)) as base:
        url = f"{base}/v1/collections/shared/sources"
        assert httpx.get(url).status_code == 401
        wrong = httpx.get(url, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"]
        auth = {"Authorization": f"Bearer {KEY}"}
        body = httpx.get(url, headers=auth).json()
        assert body["collection"] == "shared" and body["counts"]["failed"] == 1
        assert body["sources"][0]["state"] == "failed"
        failed = httpx.get(url, params={"state": "failed"}, headers=auth).json()["sources"]
        assert [s["source"] for s in failed] == ["share/notes/blob.txt"]
        assert httpx.get(url, params={"state": "bogus"}, headers=auth).status_code == 422
        missing = httpx.get(f"{base}/v1/collections/nope/sources", headers=auth)
        assert missing.status_code == 404
    open_settings = make_settings(service.settings.index_dir)  # no key: the route is off
    with serve_in_thread(create_app(open_settings, service)) as base:
        refused = httpx.get(f"{base}/v1/collections/shared/sources")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_disabled"


def test_a_collection_without_a_status_lists_its_documents(built: tuple[QAService, Path]) -> None:
    service, _ = built
    status = service.settings.collection_dir("shared") / STATUS
    saved = status.read_bytes()
    status.unlink()  # as a collection built before issue 18
    try:
        records = service.sources("shared")[2]
        assert {r.state for r in records} == {"indexed"}
        assert "share/guide/ferry.html" in {r.source for r in records}
        assert all(r.passages >= 1 and r.content_hash for r in records)
    finally:
        status.write_bytes(saved)


def test_cli_patterns_are_remembered_and_sources_listed(tmp_path: Path) -> None:
    share = tmp_path / "docs"
    (share / "old").mkdir(parents=True)
    (share / "a.md").write_text("# Hours\n\nThe office opens at nine and closes at five.\n")
    (share / "b.txt").write_text("Notes\n\nThe printer on the second floor is out of toner.\n")
    (share / "old" / "c.md").write_text("# Old\n\nThe office used to open at eight.\n")
    index_dir = tmp_path / "index"
    bad = qa("index", str(share), "-c", "d", "--exclude", "[z-a]", index_dir=index_dir)
    assert bad.returncode == 2 and "error: invalid pattern" in bad.stderr
    first = qa(
        "index",
        str(share),
        "-c",
        "d",
        "--include",
        "*.md",
        "--exclude",
        "old/",
        index_dir=index_dir,
    )
    assert first.returncode == 0, first.stderr
    (share / "b.txt").write_text("Notes\n\nThe printer on the second floor works again.\n")
    again = qa("index", "-c", "d", index_dir=index_dir)  # the recorded folder and patterns
    assert again.returncode == 0 and "unchanged:" in again.stdout, again.stderr
    listed = qa("sources", "-c", "d", "--state", "skipped", index_dir=index_dir)
    assert listed.returncode == 0, listed.stderr
    assert "docs/b.txt  (not matched by any --include pattern (*.md))" in listed.stdout
    assert "docs/old/  (excluded by --exclude 'old/')" in listed.stdout
    assert "docs/a.md" not in listed.stdout
    rows = json.loads(qa("sources", "-c", "d", "--json", index_dir=index_dir).stdout)["sources"]
    assert {r["source"]: r["state"] for r in rows}["docs/a.md"] == "unchanged"
    unknown = qa("sources", "-c", "nope", index_dir=index_dir)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error:")


def test_same_folders_without_patterns_keep_the_recorded_ones(
    built: tuple[QAService, Path],
) -> None:
    from qa.cli.index import _options

    service, share = built
    settings = service.settings.model_copy(update={"collection": "shared"})
    kept = _options(settings, [share], False, None, None, recorded=False)
    assert kept.exclude == ["drafts/", "*.log"]  # re-running the same command drops nothing
    other = _options(settings, [share / "notes"], False, None, None, recorded=False)
    assert other.exclude == []
    given = _options(settings, [share], False, ["*"], None, recorded=False)
    assert (given.include, given.exclude) == (["*"], [])


def test_an_upload_is_listed_and_earlier_skips_still_hold(built: tuple[QAService, Path]) -> None:
    service, _ = built
    before = {r.source: r for r in service.sources("shared")[2]}
    service.add_text("shared", "memo", "Memo", "The boiler is serviced every October.", None)
    after = {r.source: r for r in service.sources("shared")[2]}
    assert after["api:memo"].state == "indexed" and after["api:memo"].passages == 1
    assert after["share/notes/blob.txt"].state == "failed"  # the folder's failures are kept
    assert after["share/guide/ferry.html"] == before["share/guide/ferry.html"]  # not re-checked


def test_a_few_documents_change_only_their_records(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.ingest.documents import Document
    from qa.store import status

    service = QAService(make_settings(tmp_path / "index"), embedder)

    def document(key: str, text: str) -> Document:
        return Document(key, key.title(), f"api:{key}", text, "text")

    service.indexer.upsert("c", [document(k, f"{k} is a word about {k}.") for k in "abcde"])
    first = {r.document_id: r for r in service.sources("c")[2]}
    read_all = []
    real = status.live_documents
    monkeypatch.setattr(
        status,
        "live_documents",
        lambda d, g, ids=None: read_all.append(ids is None) or real(d, g, ids),
    )
    service.indexer.upsert("c", [document("b", "b changed its text."), document("f", "f is new.")])
    service.indexer.delete("c", ["c"])
    assert read_all == [False, False]  # only the documents given were read
    after = {r.document_id: r for r in service.sources("c")[2]}
    directory = service.settings.collection_dir("c")
    live = real(directory, service.collection("c").generation)
    assert set(after) == set(live) == {"a", "b", "d", "e", "f"}
    for key, (source, digest, passages) in live.items():
        assert (after[key].source, after[key].content_hash, after[key].passages) == (
            source,
            digest,
            passages,
        )
    assert after["a"] == first["a"] and after["e"] == first["e"]  # untouched records kept
    assert after["b"].state == after["f"].state == "indexed"


def test_a_status_of_earlier_versions_is_read_then_moved_into_the_table(
    tmp_path: Path, embedder: Embedder
) -> None:
    from qa.ingest.documents import Document
    from qa.store.status import read_status
    from qa.store.status_table import LEGACY_STATUS

    service = QAService(make_settings(tmp_path / "index"), embedder)
    documents = [Document(k, k, f"api:{k}", f"{k} is a word about {k}.", "text") for k in "ab"]
    service.indexer.upsert("c", documents)
    directory = service.settings.collection_dir("c")
    status = read_status(directory)
    assert status is not None and {r.document_id for r in status.sources} == {"a", "b"}
    # as an earlier version left it: the whole status in one JSON file, with a record the
    # table can't have made (so reading it is seen)
    legacy = status.model_copy(update={"sources": [*status.sources]})
    legacy.sources[0] = legacy.sources[0].model_copy(update={"checked_at": "2020-01-01T00:00:00Z"})
    (directory / LEGACY_STATUS).write_text(legacy.model_dump_json())
    (directory / STATUS).unlink()
    listed = {r.document_id: r for r in service.sources("c")[2]}
    assert listed[legacy.sources[0].document_id].checked_at == "2020-01-01T00:00:00Z"
    service.indexer.upsert("c", [Document("z", "z", "api:z", "z is new.", "text")])
    assert (directory / STATUS).exists() and not (directory / LEGACY_STATUS).exists()
    after = {r.document_id: r for r in service.sources("c")[2]}
    assert set(after) == {"a", "b", "z"}
    kept = legacy.sources[0].document_id
    assert after[kept].checked_at == "2020-01-01T00:00:00Z"  # moved over, untouched


def test_a_damaged_status_is_started_again(tmp_path: Path, embedder: Embedder) -> None:
    from qa.ingest.documents import Document

    service = QAService(make_settings(tmp_path / "index"), embedder)
    service.indexer.upsert("c", [Document("a", "a", "api:a", "a is a word about a.", "text")])
    status = service.settings.collection_dir("c") / STATUS
    status.write_bytes(b"not a database at all" * 100)
    assert {r.document_id for r in service.sources("c")[2]} == {"a"}  # from the documents
    service.indexer.upsert("c", [Document("b", "b", "api:b", "b is a word about b.", "text")])
    after = {r.document_id: r for r in service.sources("c")[2]}
    assert set(after) == {"a", "b"} and after["b"].checked_at
