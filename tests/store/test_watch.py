"""Watching folders (issue 18): real file events (create, many quick saves, rename, delete)
applied through the ordinary update path while a reader asks questions over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from qa.encoding import Embedder
from qa.http.app import create_app
from qa.service import QAService
from qa.store.watch import FolderWatcher
from tests.conftest import make_settings
from tests.helpers import qa, serve_in_thread

WAIT_S = 120  # generous: the machine is shared; nothing here asserts a time


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Reader(threading.Thread):
    """Asks a question over HTTP again and again; keeps every failure and each generation."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.stop = base, threading.Event()
        self.failures: list[str] = []
        self.generations: set[str] = set()
        self.asked = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while not self.stop.is_set():
                body = {"question": "When does the ferry leave?", "collection": "w"}
                try:
                    response = client.post("/v1/ask", json=body)
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        self.generations.add(response.json()["generation"])
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.asked += 1
                time.sleep(0.2)  # a steady trickle, not a load test


@pytest.fixture(scope="module")
def watched(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[QAService, FolderWatcher, Path, Reader]]:
    root = tmp_path_factory.mktemp("watch")
    folder = root / "share"
    folder.mkdir()
    (folder / "ferry.md").write_text(
        "# Ferry\n\nThe ferry leaves the north pier every forty minutes from six.\n"
    )
    (folder / "library.md").write_text("# Library\n\nThe library lends laptops for two weeks.\n")
    service = QAService(make_settings(root / "index", watch_debounce_ms=1000), embedder)
    service.index([folder], "w")
    with serve_in_thread(create_app(service.settings, service)) as base:
        reader = Reader(base)
        reader.start()
        watcher = service.watch(["w"])["w"]
        assert watcher.wait_ready(WAIT_S)
        yield service, watcher, folder, reader
        service.stop_watching()
        reader.stop.set()
        reader.join(timeout=60)


def _documents(service: QAService) -> dict[str, str]:
    return service.collection("w").document_hashes()


def _text(service: QAService, document_id: str) -> str:
    row = service.collection("w").document(document_id)
    return row.text if row is not None else ""


def test_created_file_is_indexed(watched: tuple[QAService, FolderWatcher, Path, Reader]) -> None:
    service, watcher, folder, _ = watched
    (folder / "canteen.md").write_text("# Canteen\n\nThe canteen serves soup on Fridays.\n")
    _until(lambda: "canteen.md" in _documents(service), "the new file")
    states = {r.source: r.state for r in service.sources("w")[2]}
    assert states["share/canteen.md"] == "indexed"
    assert watcher.wait_idle(quiet_s=1.5, timeout=WAIT_S)


def test_twenty_quick_saves_are_one_update(
    watched: tuple[QAService, FolderWatcher, Path, Reader],
) -> None:
    service, watcher, folder, _ = watched
    assert watcher.wait_idle(quiet_s=1.5, timeout=WAIT_S)
    before = watcher.updates
    target = folder / "library.md"
    for version in range(20):
        target.write_text(f"# Library\n\nThe library lends laptops (version {version}).\n")
        time.sleep(0.02)
    _until(lambda: "version 19" in _text(service, "library.md"), "the last save")
    assert watcher.wait_idle(quiet_s=2.0, timeout=WAIT_S)
    last = watcher.last.summary() if watcher.last is not None else None
    assert watcher.updates - before == 1, last
    assert watcher.last is not None and (watcher.last.updated, watcher.last.added) == (1, 0), last


def test_rename_moves_the_document_and_reuses_its_vectors(
    watched: tuple[QAService, FolderWatcher, Path, Reader],
) -> None:
    service, watcher, folder, _ = watched
    assert watcher.wait_idle(quiet_s=1.5, timeout=WAIT_S)
    (folder / "ferry.md").rename(folder / "boats.md")
    _until(lambda: set(_documents(service)) >= {"boats.md"}, "the renamed file")
    assert "ferry.md" not in _documents(service)
    assert watcher.wait_idle(quiet_s=1.5, timeout=WAIT_S)
    assert watcher.last is not None and (watcher.last.added, watcher.last.removed) == (1, 1)
    assert watcher.last.embedded == 0  # the same text: its vectors are reused


def test_deleted_file_leaves_the_index(
    watched: tuple[QAService, FolderWatcher, Path, Reader],
) -> None:
    service, _, folder, _ = watched
    (folder / "canteen.md").unlink()
    _until(lambda: "canteen.md" not in _documents(service), "the deletion")
    assert "share/canteen.md" not in {r.source for r in service.sources("w")[2]}


def test_hidden_files_and_the_index_folder_wake_nothing(
    watched: tuple[QAService, FolderWatcher, Path, Reader],
) -> None:
    _, watcher, folder, _ = watched
    added = watcher.relevant
    assert added(None, str(folder / "a.md"))  # type: ignore[arg-type]
    assert not added(None, str(folder / ".git" / "index"))  # type: ignore[arg-type]
    assert not added(None, str(folder / ".a.md.swp"))  # type: ignore[arg-type]
    assert added(None, str(folder / "sub" / ".qaignore"))  # type: ignore[arg-type]


def test_the_reader_never_failed(watched: tuple[QAService, FolderWatcher, Path, Reader]) -> None:
    _, _, _, reader = watched
    assert reader.asked > 10
    assert reader.failures == []
    assert len(reader.generations) >= 3  # it read across the switches


def test_qa_watch_command(tmp_path: Path, embedder: Embedder) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Hours\n\nThe office opens at nine and closes at five.\n")
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "index"), "QA_WATCH_DEBOUNCE_MS": "300"}
    run = [sys.executable, "-m", "qa"]
    missing = qa("watch", "-c", "d", index_dir=tmp_path / "index")
    assert missing.returncode == 2 and missing.stderr.startswith("error:")
    QAService(make_settings(tmp_path / "index"), embedder).index([folder], "d")
    log = tmp_path / "watch.log"
    with log.open("w") as out:
        process = subprocess.Popen([*run, "watch", "-c", "d"], env=env, stderr=out, text=True)
        try:
            _until(lambda: "up to date" in log.read_text(), "the catch-up")
            (folder / "b.md").write_text("# Printer\n\nThe printer is on the second floor.\n")
            _until(lambda: "1 added" in log.read_text(), "the new file")
        finally:
            process.send_signal(signal.SIGINT)
            try:  # it finishes the update in progress first: on a loaded machine, a while
                code = process.wait(timeout=300)
            finally:
                process.kill()  # nothing left running if it did not stop
            assert code == 0, log.read_text()
