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

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness import ROOT, SCIFACT, jsonl_lines, make_parser, table, timed, write_lines

if TYPE_CHECKING:
    import argparse

    from qa.config import Settings
    from qa.store import Indexer, IndexReport

COLLECTION = "bench"
TARGET_SPEED_UP = 50  # an unchanged re-index against the first build
REVISION = " This abstract was revised for the incremental indexing benchmark."


def _counts(r: IndexReport) -> str:
    relocated = f", {r.relocated} relocated (source moved, passages kept)" if r.relocated else ""
    return (
        f"{r.added} added, {r.updated} updated, {r.removed} removed, {r.unchanged} unchanged; "
        f"{r.embedded} embedded{relocated}"
    )


def _phases(report: IndexReport, digits: int) -> str:
    return ", ".join(f"{k} {v:.{digits}f}" for k, v in report.seconds.items())


@dataclass
class Reindex:
    """The runs' rows (name, seconds, counts) and reports."""

    model_load_s: float
    rows: list[tuple[str, float, str]]
    first: IndexReport
    again: IndexReport
    update: IndexReport
    expected: tuple[int, int, int, int]  # added, updated, removed, unchanged by the update


def loaded_indexer(settings: Settings, work: Path) -> Indexer:
    """An indexer whose model is loaded and fingerprinted, so builds time indexing only."""
    from qa.encoding import Embedder
    from qa.store import Indexer

    embedder = Embedder(
        settings.model, settings.batch_size, settings.threads, cache_dir=work / "models"
    )
    embedder.model  # noqa: B018 - load now so the first build times indexing only
    embedder.identity  # noqa: B018
    return Indexer(settings, embedder)


def edited(lines: list[str], changed: int, deleted: int) -> tuple[list[str], int, int]:
    """The corpus with ``changed`` abstracts revised in place (a sentence appended) and
    ``deleted`` others removed, spread over it; and how many of each."""
    records = [json.loads(line) for line in lines]
    step = max(1, len(records) // (changed + deleted + 1))
    picked = list(range(step // 2, len(records), step))[: changed + deleted]
    change, delete = set(picked[:changed]), set(picked[changed:])
    for i in change:
        records[i]["text"] += REVISION
    kept = [json.dumps(r, ensure_ascii=False) for i, r in enumerate(records) if i not in delete]
    return kept, len(change), len(delete)


def cli_reindex(settings: Settings, docs: Path) -> tuple[str, float, str]:
    """The unchanged re-index through ``qa index`` in a fresh process."""
    env = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir)}
    command = [sys.executable, "-m", "qa", "index", str(docs), "--collection", COLLECTION]
    result, seconds = timed(
        lambda: subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
    )
    last = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    return ("re-index, unchanged, `qa index` process", seconds, last)


def run(args: argparse.Namespace, lines: list[str], work: Path) -> Reindex:
    """First build, unchanged re-index, incremental update (and ``--cli``) in ``work``."""
    from qa.config import Settings

    docs = work / "docs"
    docs.mkdir()
    corpus = docs / "corpus.jsonl"
    write_lines(lines, corpus)
    settings = Settings(index_dir=work / "index", collection=COLLECTION)
    indexer, model_load_s = timed(lambda: loaded_indexer(settings, work))

    first, first_s = timed(lambda: indexer.index_paths(COLLECTION, [docs]))
    built = f"{first.documents} docs, {first.passages} passages; {_counts(first)}"
    rows = [("first build", first_s, built)]

    again, again_s = timed(lambda: indexer.index_paths(COLLECTION, [docs]))
    assert not again.changed and again.generation == first.generation, again.to_dict()
    rows.append(("re-index, unchanged", again_s, f"{_counts(again)}; no new generation"))

    kept, changed, deleted = edited(lines, args.changed, args.deleted)
    write_lines(kept, corpus)
    update, update_s = timed(lambda: indexer.index_paths(COLLECTION, [docs]))
    counts = f"{update.documents} docs, {update.passages} passages; {_counts(update)}"
    rows.append((f"incremental ({changed} changed, {deleted} deleted)", update_s, counts))

    if args.cli:
        rows.append(cli_reindex(settings, docs))
    expected = (0, changed, deleted, len(lines) - changed - deleted)
    return Reindex(model_load_s, rows, first, again, update, expected)


def report(args: argparse.Namespace, documents: int, result: Reindex) -> bool:
    """Print the table and phases; whether the targets were met."""
    ratio = result.rows[0][1] / result.rows[1][1]
    machine = platform.processor() or platform.machine()
    print(
        f"corpus: {args.corpus} ({documents} documents); model load "
        f"{result.model_load_s:.1f} s (not counted)"
    )
    print(f"machine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print()
    rows = [(name, f"{seconds:.2f}", counts) for name, seconds, counts in result.rows]
    print("\n".join(table(["run", "seconds", "counts"], rows, "lrl")))
    print()
    print(
        f"speed-up of the unchanged re-index over the first build: {ratio:.0f}x "
        f"(target >= {TARGET_SPEED_UP}x)"
    )
    print(f"first build phases (s): {_phases(result.first, 1)}")
    print(f"unchanged re-index phases (s): {_phases(result.again, 2)}")
    print(f"incremental phases (s): {_phases(result.update, 2)}")
    u = result.update
    got = (u.added, u.updated, u.removed, u.unchanged)
    if got != result.expected:
        print(
            "UNEXPECTED incremental counts (added, updated, removed, unchanged): "
            f"{got}, expected {result.expected}"
        )
    return ratio >= TARGET_SPEED_UP and got == result.expected


def main() -> int:
    parser = make_parser(__doc__)
    add = parser.add_argument
    add(
        "--corpus",
        type=Path,
        default=SCIFACT / "corpus.jsonl",
        help="BEIR corpus.jsonl (default: SciFact)",
    )
    add("--limit", type=int, default=0, help="use only the first N documents (smoke runs)")
    add("--changed", type=int, default=10, help="documents to change in the incremental case")
    add("--deleted", type=int, default=10, help="documents to delete in the incremental case")
    add("--cli", action="store_true", help="also time the unchanged re-index through `qa index`")
    add("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    lines = jsonl_lines(args.corpus, args.limit or None)
    work = Path(tempfile.mkdtemp(prefix="bench-reindex-"))
    try:
        result = run(args, lines, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if report(args, len(lines), result) else 1


if __name__ == "__main__":
    sys.exit(main())
