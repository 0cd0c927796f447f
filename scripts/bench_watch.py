"""How soon a watched folder's change is live (``qa watch``, ``qa serve --watch``).

Builds a folder of N generated Markdown files, indexes it, starts the watcher and measures
from the file event to the new text being served: an edit, 20 quick saves of one file (how
many updates ran), a rename and a delete. The time includes the debounce (QA_WATCH_DEBOUNCE_MS)
and re-reading the whole folder (only changed documents are embedded).

    python scripts/bench_watch.py [--files 200] [--debounce-ms 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from qa.config import Settings
from qa.service import QAService

WORDS = [
    "harbour",
    "ferry",
    "library",
    "canteen",
    "printer",
    "laptop",
    "garden",
    "meeting",
    "budget",
    "archive",
]


def _text(number: int, version: int = 0) -> str:
    words = " ".join(WORDS[(number * 7 + i) % len(WORDS)] for i in range(40))
    return f"# Note {number}\n\nNote {number} (version {version}) is about {words}.\n"


def _timed(check: Callable[[], bool], limit: float = 600) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > limit:
            raise SystemExit("timed out")
        time.sleep(0.02)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--debounce-ms", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "share"
        folder.mkdir()
        for number in range(args.files):
            (folder / f"note-{number:04d}.md").write_text(_text(number))
        settings = Settings(index_dir=Path(tmp) / "index", watch_debounce_ms=args.debounce_ms)
        service = QAService(settings)
        started = time.perf_counter()
        service.index([folder], "bench")
        print(f"first build of {args.files} files: {time.perf_counter() - started:.1f} s")
        watcher = service.watch(["bench"])["bench"]
        watcher.wait_ready()

        def text(document_id: str) -> str:
            row = service.collection("bench").document(document_id)
            return row.text if row is not None else ""

        for round_ in range(1, 4):
            (folder / "note-0001.md").write_text(_text(1, round_))
            seconds = _timed(lambda r=round_: f"(version {r})" in text("note-0001.md"))
            print(f"edit {round_}: live after {seconds:.2f} s")
        watcher.wait_idle(quiet_s=2, timeout=600)
        before = watcher.updates
        for version in range(10, 30):
            (folder / "note-0002.md").write_text(_text(2, version))
            time.sleep(0.02)
        seconds = _timed(lambda: "(version 29)" in text("note-0002.md"))
        watcher.wait_idle(quiet_s=3, timeout=600)
        print(
            f"20 saves in 0.4 s: live after {seconds:.2f} s, {watcher.updates - before} update(s)"
        )
        (folder / "note-0003.md").rename(folder / "renamed.md")
        seconds = _timed(lambda: bool(text("renamed.md")) and not text("note-0003.md"))
        print(f"rename: live after {seconds:.2f} s ({watcher.last.embedded} passages embedded)")  # type: ignore[union-attr]
        (folder / "note-0004.md").unlink()
        print(f"delete: gone after {_timed(lambda: not text('note-0004.md')):.2f} s")
        service.stop_watching()


if __name__ == "__main__":
    main()
