#!/usr/bin/env python
"""Search latency under a mask keeping 1% of a SciFact-size collection, against unfiltered.

Loads a SciFact collection (a copy of an existing ``eval-scifact-*`` index, so the original
is never written, or one built from ``../shared/datasets/scifact`` into a temporary folder),
encodes ``--queries`` test questions once, then times the hybrid retriever's search alone
(no question encoding) for each question, in rounds alternating:

* ``unfiltered``: no mask;
* ``mask 1%``: the rows of a random 1% of the documents (a permission set or filter, cached);
* ``filter 1%``: a ``document_id`` filter naming those documents through ``Scope``, its mask
  remembered per generation after the first search (what repeated filters pay);
* ``filter 1% cold``: the same, its mask built again for every search (a new filter).

It prints p50/p95 per case and the ratio to unfiltered, and checks that every masked
search returned ``top_k`` passages, all inside the mask. Skips (exit 0) without SciFact.

    nice python scripts/bench_filters.py                      # 200 questions, 3 rounds
    nice python scripts/bench_filters.py --queries 50 --rounds 1
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import Settings
from qa.search import Retriever
from qa.search.scope import Scope, allowed_rows, parse_filters, within
from qa.service import QAService
from qa.store import Collection

DATASET = ROOT.parent / "shared" / "datasets" / "scifact"
CACHED = "/work/cache/index/eval-scifact-*"


def load_collection(service: QAService, work: Path) -> Collection:
    """SciFact: a copy of a cached index when there is one, else built here."""
    target = work / "scifact"
    cached = sorted(glob.glob(CACHED))
    if cached:
        shutil.copytree(cached[0], target)
    else:
        service.index([DATASET / "corpus.jsonl"], "scifact")
    return service.collection("scifact")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--share", type=float, default=0.01, help="share of documents kept")
    args = parser.parse_args()
    if not (DATASET / "queries.jsonl").exists():
        print(f"skipped: no SciFact at {DATASET}")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        service = QAService(Settings(index_dir=work, rate_limit_per_minute=0))
        collection = load_collection(service, work)
        lines = (DATASET / "queries.jsonl").read_text(encoding="utf-8").splitlines()
        texts = [json.loads(line)["text"] for line in lines[: args.queries]]
        retriever = service.retriever(collection)
        queries = [retriever.query(t) for t in texts]
        documents = sorted(d.id for d in collection.meta.documents)
        rng = np.random.default_rng(17)
        kept = rng.choice(documents, max(1, int(len(documents) * args.share)), replace=False)
        filters = parse_filters({"document_id": [str(d) for d in kept]})
        mask = allowed_rows(collection, None, filters)
        assert mask is not None
        rows = int((mask & collection.live).sum())
        print(
            f"collection: {collection.counts['documents']} documents, "
            f"{collection.counts['passages']} passages; mask keeps {len(kept)} documents, "
            f"{rows} passages ({rows / len(collection.ids):.2%} of rows)"
        )
        times = run(service, collection, queries, mask, Scope(None, filters), args)
        report(times)
    return 0


def run(
    service: QAService,
    collection: Collection,
    queries: list,
    mask: np.ndarray,
    scope: Scope,
    args: argparse.Namespace,
) -> dict[str, list[float]]:
    """Per-search seconds of each case, rounds alternating the cases' order."""
    cases = ["unfiltered", "mask 1%", "filter 1%", "filter 1% cold"]
    times: dict[str, list[float]] = {c: [] for c in cases}
    for query in queries[:5]:  # warm-up: caches, FAISS threads
        service.retriever(collection).search(query, args.top_k)
    short = 0
    for number in range(args.rounds):
        for case in cases if number % 2 == 0 else cases[::-1]:
            for query in queries:
                retriever: Retriever = service.retriever(collection)
                started = time.perf_counter()
                if case == "unfiltered":
                    hits = retriever.search(query, args.top_k)
                elif case == "mask 1%":
                    retriever.allowed = mask
                    hits = retriever.search(query, args.top_k)
                else:
                    if case.endswith("cold"):
                        collection._masks.clear()  # as for a filter never seen before
                        started = time.perf_counter()
                    hits = within(retriever, scope, query, args.top_k)
                times[case].append(time.perf_counter() - started)
                if case != "unfiltered":
                    inside = mask[collection.rows_of([h.passage_id for h in hits])]
                    assert inside.all(), "a passage outside the mask"
                    short += len(hits) < min(args.top_k, int(mask.sum()))
    print(f"masked searches with fewer than top_k={args.top_k} passages: {short}")
    return times


def report(times: dict[str, list[float]]) -> None:
    base = statistics.median(times["unfiltered"])
    print(f"{'case':<12} {'searches':>8} {'p50 ms':>8} {'p95 ms':>8} {'p50 / unfiltered':>17}")
    for case, values in times.items():
        p50 = statistics.median(values)
        print(
            f"{case:<12} {len(values):>8} {p50 * 1000:>8.2f} {percentile(values, 95) * 1000:>8.2f} "
            f"{p50 / base:>17.2f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
