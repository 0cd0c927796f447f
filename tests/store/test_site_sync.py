"""A collection built from a website (tests/ingest/site_server.py served locally): the
first crawl through ``qa index URL``, then re-syncs in-process with the real model —
conditional requests, only changed pages embedded, deleted pages removed, failures keeping
the live generation, the per-URL state file, and the schedule of ``qa serve --sync-every``.

The tests of this module run in order on one collection (each re-sync starts from the
previous one's result)."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from qa.config import Settings
from qa.encoding import Embedder
from qa.errors import SourceUnavailable
from qa.http.app import create_app
from qa.ingest.web import STATE_FILE
from qa.service import QAService
from qa.store import current_generation
from qa.store.site_schedule import SyncScheduler, sync_lock
from qa.store.status import list_sources
from tests.conftest import make_settings
from tests.helpers import ROOT, free_port, serve_in_thread
from tests.helpers import qa as run_qa
from tests.ingest.site_server import (
    CONFIG_V2,
    FURNITURE_WORDS,
    Route,
    Site,
    docs_site,
    page,
    serving,
)

NAME = "docs"
CRAWL = {
    "crawl_delay_s": 0,
    "crawl_timeout_s": 1,
    "crawl_max_page_mb": 0.1,
    "crawl_max_depth": 3,
}


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[Site, str]]:
    site = docs_site()
    with serving(site) as base:
        yield site, base


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("site-index"), **CRAWL)


def qa(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``qa`` command in a real subprocess, over the module's index folder."""
    crawl = {f"QA_{k.upper()}": str(v) for k, v in CRAWL.items()}
    return run_qa(*args, index_dir=settings.index_dir, PYTHONPATH=str(ROOT), **crawl)


@pytest.fixture(scope="module")
def first_crawl(site: tuple[Site, str], settings: Settings) -> subprocess.CompletedProcess[str]:
    """``qa index URL -c docs`` in a real subprocess."""
    _, base = site
    return qa(settings, "index", f"{base}/docs/", "-c", NAME, "--json")


def test_qa_index_url_errors(settings: Settings) -> None:
    down = qa(settings, "index", f"http://127.0.0.1:{free_port()}/docs/", "-c", "nothing")
    assert down.returncode == 1
    assert "error: could not read" in down.stderr and "robots.txt unreadable" in down.stderr
    assert not settings.collection_dir("nothing").exists()  # a failed first sync leaves nothing
    wrong = qa(settings, "index", "https://docs.example.com/", "-c", "nothing", "--follow-links")
    assert wrong.returncode == 2 and "applies to files and folders" in wrong.stderr
    folder = qa(settings, "index", str(ROOT / "corpus"), "-c", "nothing", "--sync-every", "6h")
    assert folder.returncode == 2 and "--sync-every applies to a website" in folder.stderr
    bad = qa(
        settings, "index", "https://docs.example.com/", "-c", "nothing", "--sync-every", "soon"
    )
    assert bad.returncode == 2 and "invalid duration" in bad.stderr


@pytest.fixture(scope="module")
def service(settings: Settings, embedder: Embedder, first_crawl: object) -> QAService:
    return QAService(settings, embedder)


def _state(settings: Settings) -> dict:
    return json.loads((settings.collection_dir(NAME) / STATE_FILE).read_text(encoding="utf-8"))


def test_qa_index_url_crawls_the_site(first_crawl: subprocess.CompletedProcess[str]) -> None:
    assert first_crawl.returncode == 0, first_crawl.stderr
    report = json.loads(first_crawl.stdout)
    assert report["added"] == 6 and report["documents"] == 6
    reasons = {s["source"].rsplit("/", 1)[-1]: s["reason"] for s in report["skipped"]}
    assert "binary content" in reasons["binary.html"]
    assert "failed: timed out" in reasons["slow.html"]
    assert "collection 'docs' now at gen-000001" in first_crawl.stderr


def test_citations_are_page_urls_and_furniture_is_left_out(
    service: QAService, site: tuple[Site, str]
) -> None:
    _, base = site
    reply = service.ask("How do I upgrade to a new version?", NAME)
    assert reply.passages[0].citation.source == f"{base}/docs/install.html"
    collection = service.collection(NAME)
    passages = collection.passages_of(collection.document_hashes())
    assert len(passages) >= 6
    for passage in passages:
        for word in FURNITURE_WORDS:
            assert word not in passage.text, (passage.document_id, passage.text)


def test_state_file_lists_every_url(service: QAService, site: tuple[Site, str]) -> None:
    _, base = site
    pages = _state(service.settings)["pages"]
    install = pages[f"{base}/docs/install.html"]
    assert install["state"] == "indexed" and install["passages"] >= 1
    assert install["etag"] == '"v1"' and install["content_hash"] and install["changed_at"]
    assert pages[f"{base}/docs/broken.html"]["state"] == "failed"
    assert pages[f"{base}/docs/big.html"]["state"] == "skipped"
    assert pages[f"{base}/docs/copy.html"]["reason"].startswith("duplicate of")
    assert f"{base}/docs/missing.html" not in pages  # gone pages are not kept


def test_sources_listing_shows_every_url_with_its_state(
    service: QAService, site: tuple[Site, str]
) -> None:
    _, base = site
    generation, records = list_sources(service.settings.collection_dir(NAME))
    assert generation == current_generation(service.settings.collection_dir(NAME))
    states = {r.source: r for r in records}
    assert states[f"{base}/docs/install.html"].state == "indexed"
    assert states[f"{base}/docs/install.html"].passages >= 1
    assert states[f"{base}/docs/broken.html"].state == "failed"
    assert states[f"{base}/docs/big.html"].state == "skipped"  # a limit, not a failure
    assert states[f"{base}/docs/copy.html"].state == "skipped"
    assert records[0].state == "failed"  # failures first


def test_resync_sends_conditional_requests_and_embeds_only_changes(
    service: QAService, site: tuple[Site, str], caplog: pytest.LogCaptureFixture
) -> None:
    served, base = site
    collection = service.collection(NAME)
    install_before = [p.id for p in collection.passages_of([f"{base}/docs/install.html"])]
    served.routes["/docs/config.html"] = Route(
        body=page("Configuring", *CONFIG_V2),
        headers={"Last-Modified": "Tue, 03 Nov 2026 10:00:00 GMT"},
    )
    del served.routes["/docs/old.html"]  # now a 404
    with caplog.at_level(logging.INFO, logger="qa.store.sites"):
        report = service.reindex(NAME)  # what POST /v1/collections/docs/reindex does
    assert served.headers_of("/docs/install.html")[-1].get("if-none-match") == '"v1"'
    assert (
        served.headers_of("/docs/config.html")[-1].get("if-modified-since")
        == "Mon, 02 Nov 2026 10:00:00 GMT"
    )
    assert (report.added, report.updated, report.removed) == (0, 1, 1)
    after = service.collection(NAME)
    config = after.passages_of([f"{base}/docs/config.html"])
    assert report.embedded <= len(config)  # nothing but the changed page was embedded
    assert [p.id for p in after.passages_of([f"{base}/docs/install.html"])] == install_before
    assert after.document(f"{base}/docs/old.html") is None
    pages = _state(service.settings)["pages"]
    assert pages[f"{base}/docs/install.html"]["state"] == "unchanged"
    assert pages[f"{base}/docs/config.html"]["state"] == "indexed"
    assert f"{base}/docs/old.html" not in pages
    summary = [json.loads(r.message) for r in caplog.records if r.message.startswith("{")]
    assert summary[-1]["event"] == "site_sync" and summary[-1]["updated"] == 1
    assert {"added", "updated", "removed", "unchanged", "skipped", "failed"} <= set(summary[-1])


def test_a_failing_page_keeps_its_last_version(service: QAService, site: tuple[Site, str]) -> None:
    served, base = site
    saved = served.routes["/docs/install.html"]
    served.routes["/docs/install.html"] = Route(500, b"oops")
    try:
        report = service.sync_site(None, NAME)
    finally:
        served.routes["/docs/install.html"] = saved
    assert report.removed == 0
    assert service.collection(NAME).document(f"{base}/docs/install.html") is not None
    entry = _state(service.settings)["pages"][f"{base}/docs/install.html"]
    assert entry["state"] == "failed" and entry["reason"] == "HTTP 500"
    assert entry["etag"] == '"v1"'  # asked for conditionally again next time


def test_a_failed_sync_leaves_the_live_generation(
    service: QAService, site: tuple[Site, str]
) -> None:
    served, _ = site
    live = current_generation(service.settings.collection_dir(NAME))
    saved = dict(served.routes)
    served.routes.clear()
    served.routes["/robots.txt"] = saved["/robots.txt"]
    served.routes.update({path: Route(500, b"down") for path in saved if path.startswith("/docs")})
    try:
        with pytest.raises(SourceUnavailable, match="collection is unchanged"):
            service.sync_site(None, NAME)
    finally:
        served.routes.update(saved)
    assert current_generation(service.settings.collection_dir(NAME)) == live
    last = _state(service.settings)["last_sync"]
    assert last["ok"] is False and "HTTP 500" in last["error"]


def test_scheduled_sync_one_at_a_time(service: QAService, site: tuple[Site, str]) -> None:
    served, base = site
    directory = service.settings.collection_dir(NAME)
    served.routes["/docs/renamed.html"] = Route(body=page("Backups", "Backups moved to S3 now."))
    scheduler = SyncScheduler(service, every=3600)  # rounds run by hand below
    try:
        live = current_generation(directory)
        with sync_lock(directory):  # a sync of this collection is running
            scheduler.run_once()
        assert current_generation(directory) == live  # so the round left it alone
        scheduler.run_once()
        assert current_generation(directory) != live
        renamed = service.collection(NAME).document(f"{base}/docs/renamed.html")
        assert renamed is not None and "S3" in renamed.text
    finally:
        scheduler.close()


def _wait_for_a_round(timer: SyncScheduler) -> None:
    """Until the scheduler's own thread has synced once (a minute at most)."""
    deadline = time.monotonic() + 60
    while timer.rounds < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert timer.rounds >= 1


def test_sync_every_starts_the_scheduler(settings: Settings, embedder: Embedder) -> None:
    assert Settings(sync_every="6h").sync_every == 21600
    scheduled = QAService(settings.model_copy(update={"sync_every": 3600.0}), embedder)
    scheduled.start_site_sync()
    try:
        assert scheduled.scheduler is not None and scheduled.scheduler.every == 3600
    finally:
        scheduled.scheduler.close()
    timer = SyncScheduler(scheduled, every=0.2)  # the thread's own rounds, on its timer
    try:
        _wait_for_a_round(timer)
    finally:
        timer.close()
    assert _state(settings)["last_sync"]["ok"] is True
    assert Path(settings.collection_dir(NAME) / STATE_FILE).exists()


def test_a_collection_keeps_its_own_schedule(service: QAService) -> None:
    service.sync_site(collection=NAME, every=0.3)  # qa index URL --sync-every 0.3
    assert _state(service.settings)["sync_every"] == 0.3
    timer = SyncScheduler(service, every=None)  # no server-wide schedule: the collection's own
    try:
        _wait_for_a_round(timer)
    finally:
        timer.close()
    service.sync_site(collection=NAME, every=0)  # --sync-every 0 drops it
    assert _state(service.settings)["sync_every"] is None
    idle = SyncScheduler(service, every=None)
    try:
        assert idle.run_once() == 0  # nothing has a schedule now
    finally:
        idle.close()


def test_reindex_route_resyncs_and_reports_an_unreachable_site(
    service: QAService, settings: Settings, site: tuple[Site, str]
) -> None:
    served, _ = site
    keyed = settings.model_copy(update={"api_key": SecretStr("sync-key")})
    headers = {"Authorization": "Bearer sync-key"}
    with serve_in_thread(create_app(keyed, service)) as base:
        ok = httpx.post(f"{base}/v1/collections/{NAME}/reindex", headers=headers, timeout=120)
        assert ok.status_code == 200, ok.text
        saved = dict(served.routes)
        served.routes.clear()  # every page now 404s, robots.txt too: the site is gone
        try:
            down = httpx.post(f"{base}/v1/collections/{NAME}/reindex", headers=headers, timeout=120)
        finally:
            served.routes.update(saved)
    assert down.status_code == 502, down.text
    assert down.json()["error"]["code"] == "source_unavailable"
    assert service.collection(NAME).manifest.counts.documents >= 5  # nothing was removed
