#!/usr/bin/env python
"""Benchmark incremental indexing on SciFact: first build, unchanged re-index, small update.

All in ONE run, into a fresh temporary collection:

1. first build of the corpus (every abstract split and embedded);
2. re-index of the unchanged corpus (must be >= 50x faster than 1);
3. an incremental update: 10 abstracts changed, 10 deleted (times and counts);
4. optionally (``--cli``) the unchanged re-index as a user runs it: ``qa index`` in a
   fresh process, torch import and all.

    python scripts/bench_reindex.py                      # SciFact, 5,183 abstracts
    python scripts/bench_reindex.py --limit 300 --cli    # a quick smoke run

The model is loaded before the first build and its load time reported separately, so
both build figures measure indexing work only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

SCIFACT = Path(os.environ.get("QA_SHARED_DIR", ROOT.parent / "shared")) / "datasets" / "scifact" / "corpus.jsonl"
COLLECTION = "bench"


def _write_corpus(lines: list[str], target: Path) -> None:
    target.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines), encoding="utf-8")


def _counts(report: object) -> str:
    r = report  # an IndexReport
    return (
        f"{r.added} added, {r.updated} updated, {r.removed} removed, {r.unchanged} unchanged; "  # type: ignore[attr-defined]
        f"{r.embedded} embedded"  # type: ignore[attr-defined]
        + (f", {r.relocated} relocated (source moved, passages kept)" if getattr(r, "relocated", 0) else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=SCIFACT, help="BEIR corpus.jsonl (default: SciFact)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N documents (smoke runs)")
    parser.add_argument("--changed", type=int, default=10, help="documents to change in the incremental case")
    parser.add_argument("--deleted", type=int, default=10, help="documents to delete in the incremental case")
    parser.add_argument("--cli", action="store_true", help="also time the unchanged re-index through `qa index`")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    from qa.config import Settings
    from qa.encoding.embedder import Embedder
    from qa.store.indexer import Indexer

    lines = [line for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.limit:
        lines = lines[: args.limit]
    work = Path(tempfile.mkdtemp(prefix="bench-reindex-"))
    docs = work / "docs"
    docs.mkdir()
    corpus = docs / "corpus.jsonl"
    _write_corpus(lines, corpus)
    settings = Settings(index_dir=work / "index", collection=COLLECTION)
    rows: list[tuple[str, float, str]] = []
    try:
        started = time.perf_counter()
        embedder = Embedder(settings.model, settings.batch_size, settings.threads, cache_dir=work / "models")
        embedder.model  # noqa: B018 - load now so the first build times indexing only
        embedder.identity  # noqa: B018
        model_load = time.perf_counter() - started
        indexer = Indexer(settings, embedder)

        started = time.perf_counter()
        first = indexer.index_paths(COLLECTION, [docs])
        first_s = time.perf_counter() - started
        rows.append(("first build", first_s, f"{first.documents} docs, {first.passages} passages; {_counts(first)}"))

        started = time.perf_counter()
        again = indexer.index_paths(COLLECTION, [docs])
        again_s = time.perf_counter() - started
        assert not again.changed and again.generation == first.generation, again.to_dict()
        rows.append(("re-index, unchanged", again_s, f"{_counts(again)}; no new generation"))

        # incremental: change N abstracts in place (a sentence appended), delete M others
        records = [json.loads(line) for line in lines]
        step = max(1, len(records) // (args.changed + args.deleted + 1))
        picked = list(range(step // 2, len(records), step))[: args.changed + args.deleted]
        change, delete = set(picked[: args.changed]), set(picked[args.changed :])
        for i in change:
            records[i]["text"] += " This abstract was revised for the incremental indexing benchmark."
        kept = [json.dumps(r, ensure_ascii=False) for i, r in enumerate(records) if i not in delete]
        _write_corpus(kept, corpus)
        started = time.perf_counter()
        update = indexer.index_paths(COLLECTION, [docs])
        update_s = time.perf_counter() - started
        rows.append((f"incremental ({len(change)} changed, {len(delete)} deleted)", update_s,
                     f"{update.documents} docs, {update.passages} passages; {_counts(update)}"))

        if args.cli:
            env = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir)}
            command = [sys.executable, "-m", "qa", "index", str(docs), "--collection", COLLECTION]
            started = time.perf_counter()
            result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            cli_s = time.perf_counter() - started
            last = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
            rows.append(("re-index, unchanged, `qa index` process", cli_s, last))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    ratio = first_s / again_s
    print(f"corpus: {args.corpus} ({len(lines)} documents); model load {model_load:.1f} s (not counted)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print()
    width = max(len(r[0]) for r in rows)
    print(f"| {'run':<{width}} | {'seconds':>9} | counts")
    print(f"|{'-' * (width + 2)}|{'-' * 11}|{'-' * 60}")
    for name, seconds, counts in rows:
        print(f"| {name:<{width}} | {seconds:>9.2f} | {counts}")
    print()
    print(f"speed-up of the unchanged re-index over the first build: {ratio:.0f}x (target >= 50x)")
    print("first build phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in first.seconds.items()))
    print("unchanged re-index phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in again.seconds.items()))
    print("incremental phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in update.seconds.items()))
    expected = (0, len(change), len(delete), len(records) - len(change) - len(delete))
    got = (update.added, update.updated, update.removed, update.unchanged)
    ok = ratio >= 50 and got == expected
    if got != expected:
        print(f"UNEXPECTED incremental counts (added, updated, removed, unchanged): {got}, expected {expected}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
