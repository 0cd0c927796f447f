"""Collections of 100k and 1M passages on one machine: build, disk, memory, start-up, latency,
recall and the cost of an update, in one table.

Where the passages come from (embedding 1M passages takes ~7 h on 2 cores, so the big
collections can't all be real):

* **Real vectors and text**: a built SciFact collection (``--real``, 10,818 passages of
  5,183 abstracts, embedded by all-MiniLM-L6-v2) and the SciFact test questions embedded by
  the same model. Recall@10 against exact search is measured on these (the approximate
  index built over the real vectors with the threshold lowered, real questions).
* **Synthetic at size N**: vector i = the real vector ``i mod 10,818`` plus Gaussian noise
  (``--noise`` per dimension, default 0.02, i.e. a perturbation of norm ~0.39), normalised
  again, so the collection has the real vectors' anisotropy and clusters; text = words drawn
  from the unigram distribution of SciFact's passages (stopwords included), each passage as
  long as a real passage drawn at random. Questions are the real SciFact questions. The
  collection is written as one segment with the store's own writer (what ``qa optimize
  --full`` leaves), with the dense index ``QA_DENSE_INDEX=auto`` picks for its size.

Measured per size: build seconds (writing segments; embedding excluded, reported apart),
bytes on disk, vector memory (the FAISS index), a real ``qa serve``'s start-up time and RSS
after queries, in-process p50/p99 of dense, BM25 and hybrid search (query encoding excluded,
reported apart), recall@10 of the index against exact search over the same vectors, and
adding 10 real documents through ``Indexer.upsert`` (seconds, bytes written). For an IVF
index the search latencies and the server's figures are measured twice: with its lists
memory-mapped (the default) and read into the process (``load_*``, ``QA_DENSE_MEMORY=load``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from harness import (
    SCIFACT,
    add_report_options,
    emit,
    make_parser,
    percentile,
    qa_serve,
    say,
    table,
)
from scale_data import Synthetic, settings, write_collection


def real_source(collection_dir: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """Vectors, texts and titles of every live passage of a built collection."""
    from qa.store import Collection

    collection = Collection.load(collection_dir, verify=False)
    ids, vectors = collection.all_vectors()
    rows = collection.passages(int(i) for i in ids)
    texts = [rows[int(i)].text for i in ids]
    titles = [rows[int(i)].title for i in ids]
    collection.close()
    return np.asarray(vectors, np.float32), texts, titles


def questions(limit: int) -> list[str]:
    """SciFact's test questions (their text only)."""
    queries = SCIFACT / "queries.jsonl"
    wanted = {
        line.split("\t")[0]
        for line in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]
    }
    out = []
    for line in queries.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["_id"] in wanted:
            out.append(record["text"])
    return out[:limit]


def latencies(
    collection: object, embedder: object, texts: list[str], vectors: np.ndarray
) -> dict[str, float]:
    """p50/p99 ms of dense, BM25 and hybrid search (encoding excluded) and of encoding."""
    from qa.search import Retriever
    from qa.search.retriever import Query

    retriever = Retriever(collection, embedder, "hybrid")  # type: ignore[arg-type]
    timings: dict[str, list[float]] = {"encode": [], "dense": [], "bm25": [], "hybrid": []}
    for text, vector in zip(texts, vectors):
        calls = {
            "encode": partial(embedder.encode_queries, [text + " "]),  # type: ignore[attr-defined]
            "dense": partial(collection.dense_search, vector[None], 10),  # type: ignore[attr-defined]
            "bm25": partial(collection.lexical.scores, text),  # type: ignore[attr-defined]
            "hybrid": partial(retriever.search, Query(text=text, vector=vector), 10),
        }
        for name, call in calls.items():
            began = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - began) * 1000)
    out = {}
    for name, values in timings.items():
        out[f"{name}_p50_ms"] = round(percentile(values[5:], 50), 2)  # the first few warm up
        out[f"{name}_p99_ms"] = round(percentile(values[5:], 99), 2)
    return out


def threshold(source: Synthetic, queries: np.ndarray, sizes: list[int]) -> list[list[object]]:
    """p50 ms of one question over a flat and an IVF-SQ8 index of each size (one thread, as
    segments below 200k vectors are searched), and the IVF's recall@10 against flat."""
    import faiss

    from qa.store import dense

    faiss.omp_set_num_threads(1)
    out = []
    for size in sizes:
        vectors, _ = source.batch(0, size)
        row: list[object] = [size]
        found = {}
        for kind in ("flat", "ivf-sq8"):
            index = dense.build(vectors, kind, dense.DenseParams())  # type: ignore[arg-type]
            times = []
            for query in queries:
                began = time.perf_counter()
                found.setdefault(kind, []).append(index.search(query[None], 10)[1][0])
                times.append((time.perf_counter() - began) * 1000)
            row.append(round(percentile(times, 50), 2))
        hits = [len(set(a) & set(b)) / 10 for a, b in zip(found["ivf-sq8"], found["flat"])]
        out.append([*row, round(float(np.mean(hits)), 4)])
    return out


def dense_only(
    source: Synthetic, queries: np.ndarray, size: int, work: Path, nprobes: list[int]
) -> list[dict[str, object]]:
    """The dense side alone at ``size`` synthetic vectors (no text): the index ``auto``
    builds (opened memory-mapped), its bytes and build seconds, and per ``nprobe`` (the
    default's first) p50/p99 of one question and recall@10 against exact search."""
    import faiss

    from qa.store import dense

    params = dense.DenseParams()
    chunks = [
        source.batch(first, min(100_000, size - first), texts=False)[0]
        for first in range(0, size, 100_000)
    ]
    vectors = np.concatenate(chunks)
    del chunks
    kind = params.kind_for(size)
    began = time.perf_counter()
    index = dense.build(vectors, kind, params)
    build_s = time.perf_counter() - began
    path = work / f"dense-{size}.faiss"
    work.mkdir(parents=True, exist_ok=True)
    dense.save(index, path)
    mapped = dense.load(path, kind)
    exact = exact_top10(vectors, queries)
    rows = []
    for nprobe in [int(getattr(index, "nprobe", 0)), *nprobes]:
        if kind == "ivf-sq8":
            faiss.extract_index_ivf(mapped).nprobe = nprobe
        times, found = [], []
        for query in queries:
            began = time.perf_counter()
            found.append(dense.search(mapped, query[None], 10, None)[1][0])
            times.append((time.perf_counter() - began) * 1000)
        hits = [len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]
        rows.append(
            {
                "passages": size,
                "dense_index": kind,
                "nprobe": nprobe,
                "build_s": round(build_s, 1),
                "vector_mb": round(path.stat().st_size / 2**20, 1),
                "dense_p50_ms": round(percentile(times[5:], 50), 2),
                "dense_p99_ms": round(percentile(times[5:], 99), 2),
                "recall_at_10_synthetic": round(float(np.mean(hits)), 4),
            }
        )
        say(json.dumps(rows[-1]))
    path.unlink()
    return rows


def recall_at_10(
    index_vectors: np.ndarray, queries: np.ndarray, kind: str, flat_below: int = 1
) -> float:
    """Recall@10 of the index ``kind`` (built as a segment builds it) against exact search."""
    from qa.store import dense

    params = dense.DenseParams(choice="auto", flat_below=flat_below)
    approx = dense.build(index_vectors, kind, params)  # type: ignore[arg-type]
    _, found = approx.search(queries, 10)
    exact = exact_top10(index_vectors, queries)
    return round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])), 4)


def exact_top10(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Exact top 10 rows per query, in chunks (memory-mapped vectors stay on disk)."""
    best_rows = np.zeros((len(queries), 0), np.int64)
    best_scores = np.zeros((len(queries), 0), np.float32)
    for begin in range(0, len(vectors), 100_000):
        scores = queries @ np.asarray(vectors[begin : begin + 100_000], np.float32).T
        top = np.argpartition(-scores, min(10, scores.shape[1] - 1), axis=1)[:, :10]
        best_rows = np.hstack([best_rows, top + begin])
        best_scores = np.hstack([best_scores, np.take_along_axis(scores, top, 1)])
        keep = np.argsort(-best_scores, axis=1)[:, :10]
        best_rows = np.take_along_axis(best_rows, keep, 1)
        best_scores = np.take_along_axis(best_scores, keep, 1)
    return best_rows


def serve_figures(
    index_dir: Path,
    collection: str,
    log_dir: Path,
    asks: list[str],
    models: Path | None,
    memory: str = "map",
) -> dict[str, float]:
    """Start-up seconds (process start to ready) and RSS after some questions of ``qa serve``
    (the ONNX query encoder copied in from ``models``' index, as a prebuilt one has it)."""
    import httpx
    from harness import copy_models

    if models is not None and not (index_dir / ".models").exists():
        copy_models(models, index_dir)
    began = time.perf_counter()
    settings = {"QA_BACKGROUND_MERGE": "false", "QA_DENSE_MEMORY": memory}
    with qa_serve("scale", index_dir, log_dir, settings, collection=collection) as server:
        ready = time.perf_counter() - began
        for text in asks:
            reply = httpx.post(f"{server.base}/v1/ask", json={"question": text}, timeout=120)
            reply.raise_for_status()
        status = Path(f"/proc/{server.pid}/status").read_text()
        rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
    return {"serve_ready_s": round(ready, 2), "serve_rss_mb": round(rss / 1024, 1)}


def update_cost(
    directory: Path, embedder: object, texts: list[str], titles: list[str]
) -> dict[str, float]:
    """Add 10 real documents: seconds, and bytes written (the new segment and generation)."""
    from qa.ingest.documents import Document
    from qa.store import Indexer

    before = {p for p in directory.rglob("*") if p.is_file()}
    documents = [
        Document(f"new-{i}", titles[i], f"new/{i}", titles[i] + "\n\n" + texts[i], "text")
        for i in range(10)
    ]
    indexer = Indexer(settings(directory.parent), embedder)  # type: ignore[arg-type]
    began = time.perf_counter()
    indexer.upsert(directory.name, documents)
    seconds = time.perf_counter() - began
    written = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and p not in before)
    return {"update_s": round(seconds, 2), "update_bytes": written}


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def dense_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("dense.faiss"))


def measure(
    size: int,
    work: Path,
    source: Synthetic,
    embedder: object,
    asks: list[str],
    ask_vectors: np.ndarray,
    real: tuple[np.ndarray, list[str], list[str]],
    models: Path | None = None,
) -> dict[str, object]:
    """Every figure of one size."""
    from qa.store import Collection

    directory = work / "index" / f"scale-{size}"
    shutil.rmtree(directory, ignore_errors=True)
    say(f"building {size:,} passages")
    build_s = write_collection(directory, size, source, embedder)
    row: dict[str, object] = {
        "passages": size,
        "build_s": round(build_s, 1),
        "disk_mb": round(disk_bytes(directory) / 2**20, 1),
        "vector_mb": round(dense_bytes(directory) / 2**20, 1),
    }
    collection = Collection.load(directory, verify=False)
    row["dense_index"] = collection.segments[0].info.dense.kind
    row.update(latencies(collection, embedder, asks, ask_vectors))
    segment = directory / "segments" / collection.segments[0].name
    collection.close()
    if row["dense_index"] == "ivf-sq8":  # its lists read into the process (QA_DENSE_MEMORY=load)
        loaded = Collection.load(directory, verify=False, dense_memory="load")
        timings = latencies(loaded, embedder, asks, ask_vectors)
        loaded.close()
        row.update({f"load_{k}": v for k, v in timings.items() if k[:5] in ("dense", "hybri")})
    if row["dense_index"] != "flat":  # exact search over the same (float16) vectors
        from qa.store.segment import load_array

        found = collection_search_rows(directory, ask_vectors)
        exact = exact_top10(load_array(segment / "vectors.npy"), ask_vectors)
        hits = [len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]
        row["recall_at_10_synthetic"] = round(float(np.mean(hits)), 4)
    say("serving")
    row.update(serve_figures(work / "index", directory.name, work, asks[:50], models))
    if row["dense_index"] == "ivf-sq8":
        served = serve_figures(work / "index", directory.name, work, asks[:50], models, "load")
        row.update({f"load_{k}": v for k, v in served.items()})
    say("updating 10 documents")
    row.update(update_cost(directory, embedder, real[1], real[2]))
    row["update_share_pct"] = round(100 * float(row["update_bytes"]) / disk_bytes(directory), 3)  # type: ignore[arg-type]
    say(json.dumps(row))  # each size as it is done (a 1M run takes a while)
    return row


def collection_search_rows(directory: Path, queries: np.ndarray) -> np.ndarray:
    """Rows the collection's own index returns (one segment: rows = ids)."""
    from qa.store import Collection

    collection = Collection.load(directory, verify=False)
    ids, _ = collection.dense_search(queries, 10)
    collection.close()
    return ids


def _parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    add = parser.add_argument
    add("--real", type=Path, required=True, help="a built SciFact collection folder")
    add("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    add("--work", type=Path, default=Path("/tmp/bench-scale"))
    add("--noise", type=float, default=0.02)
    add("--dense-sizes", type=int, nargs="*", default=[], help="dense side only")
    add("--nprobes", type=int, nargs="*", default=[], help="also try these")
    add("--queries", type=int, default=200)
    add("--threshold-sizes", type=int, nargs="*", default=[10_000, 25_000, 50_000, 100_000])
    add_report_options(parser)
    return parser


def _markdown(real: int, asks: int, recall: dict[str, float], tables: list[list[dict]]) -> str:
    lines = [
        (
            f"Recall@10 against exact search on the {real:,} real SciFact vectors with {asks} "
            f"real questions: ivf-sq8 {recall['ivf-sq8']}, hnsw {recall['hnsw']}."
        ),
    ]
    for rows in tables:
        if rows:
            columns = list(rows[0])
            lines += ["", *table(columns, [[r[c] for c in columns] for r in rows])]
    load = os.getloadavg()[0]
    return "\n".join(
        [*lines, "", f"load average {load:.1f} at the end; python {sys.version.split()[0]}"]
    )


def main() -> None:
    args = _parser().parse_args()
    from qa.encoding import Embedder

    embedder = Embedder()
    real = real_source(args.real)
    asks = questions(args.queries)
    began = time.perf_counter()
    ask_vectors = embedder.encode_queries(asks)
    say(
        f"{len(real[0]):,} real passages, {len(asks)} questions ({time.perf_counter() - began:.1f} s)"
    )
    recall = {kind: recall_at_10(real[0], ask_vectors, kind) for kind in ("ivf-sq8", "hnsw")}
    say(f"recall@10 on real vectors: {recall}")
    source = Synthetic(real[0], real[1], args.noise)
    names = ["vectors", "flat_p50_ms", "ivf_sq8_p50_ms", "ivf_sq8_recall_at_10"]
    crossover = [
        dict(zip(names, row)) for row in threshold(source, ask_vectors, args.threshold_sizes)
    ]
    dense_rows = [
        row
        for size in args.dense_sizes
        for row in dense_only(source, ask_vectors, size, args.work, args.nprobes)
    ]
    rows = [
        measure(size, args.work, source, embedder, asks, ask_vectors, real, args.real.parent)
        for size in args.sizes
    ]
    result = {"recall_real": recall, "threshold": crossover, "rows": rows, "dense": dense_rows}
    markdown = _markdown(len(real[0]), len(asks), recall, [crossover, rows, dense_rows])
    emit(result, markdown, args.json, args.markdown)


if __name__ == "__main__":
    main()
