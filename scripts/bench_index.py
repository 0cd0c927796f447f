#!/usr/bin/env python
"""Benchmark the indexing pipeline against a bare sentence-transformers encode (issue 2).

From ONE run, into a fresh temporary index folder:

1. the whole pipeline, ``Indexer.index_paths`` (read, split, embed passages and their
   late-chunked sentence vectors, FAISS + BM25 + SQLite + manifest), wall time with the
   model already loaded, and its stage breakdown (``IndexReport.seconds``);
2. a bare ``SentenceTransformer.encode(texts, batch_size=32, normalize_embeddings=True)``
   (sentence-transformers' own default batch; the pipeline runs at ours, ``QA_BATCH_SIZE``)
   over the very same embedding inputs (title + "\\n" + passage text, read back from the
   built collection and checked against each passage's stored ``embed_hash``);
3. their throughput ratio (target: pipeline >= 0.95x bare), peak memory (maxrss) after
   each, the generation's size on disk (total and per file), and the time to load the
   built collection (``Collection.load``, median of 5, model excluded; target < 1 s).

    python scripts/bench_index.py                   # SciFact, 5,183 abstracts (~25+ min on 2 cores)
    python scripts/bench_index.py --limit 1000      # first 1,000 abstracts, a quick check
    python scripts/bench_index.py --json            # machine-readable
    python scripts/bench_index.py --markdown reports/bench-index.md

Timings on a shared machine are noisy: the two encodes run back to back in the same
process, and process CPU seconds are reported beside wall seconds (CPU time is less
sensitive to other jobs on the machine), as is the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

SCIFACT = Path(os.environ.get("QA_SHARED_DIR", ROOT.parent / "shared")) / "datasets" / "scifact" / "corpus.jsonl"
COLLECTION = "bench-index"
TARGET_RATIO = 0.95
TARGET_LOAD_S = 1.0


def maxrss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident memory of this process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def folder_sizes(folder: Path) -> tuple[int, dict[str, int]]:
    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    return sum(files.values()), files


def embedded_texts(collection: Any, embedder: Any, settings: dict[str, Any]) -> list[str]:
    """The exact texts the pipeline embedded, in passage-id order, verified by their hashes."""
    from qa.store.indexer import _embed_hash
    from qa.ingest.passages import embedding_text

    rows = sorted(collection.passages_of(sorted(collection.document_hashes())), key=lambda r: r.id)
    fingerprint = embedder.identity.fingerprint
    max_title = settings["max_tokens"] // 4
    titles = sorted({r.title for r in rows if r.title})
    cost = dict(zip(titles, embedder.count_tokens([t + "\n" for t in titles])))
    texts, mismatched = [], 0
    for row in rows:
        title = row.title if settings["title_in_embedding"] and row.title and cost[row.title] <= max_title else ""
        text = embedding_text(title, row.text)
        if _embed_hash(fingerprint, text) != row.embed_hash:
            mismatched += 1
        texts.append(text)
    if mismatched:
        raise SystemExit(f"error: {mismatched} passages' embedding text could not be reconstructed (embed_hash differs)")
    return texts


def planned_texts(source: Path, service: Any) -> list[str]:
    """The embedding inputs the pipeline will produce, computed with its own splitter (untimed)."""
    from qa.ingest.documents import Skip, discover
    from qa.ingest.passages import embedding_text, split_document, title_for_embedding

    settings = service.indexer.passage_settings()
    count = service.embedder.count_tokens
    texts = []
    for document in discover([source.resolve()], int(service.settings.max_file_mb * 2**20)):
        if isinstance(document, Skip):
            continue
        title, _ = title_for_embedding(document, count, settings["max_tokens"], settings["title_in_embedding"])
        passages = split_document(
            document, count, max_tokens=settings["max_tokens"], min_chars=settings["min_chars"],
            title_in_embedding=settings["title_in_embedding"],
        )
        texts.extend(embedding_text(title, p.text) for p in passages)
    return texts


def timed_bare(model: Any, texts: list[str], batch_size: int) -> tuple[Any, float, float]:
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return vectors, time.perf_counter() - wall0, cpu_seconds() - cpu0


def run(
    corpus: Path, limit: int | None, batch_size: int, loads: int, keep: bool, threads: int | None = None,
    bracket: bool = False, pipeline_batch_size: int | None = None,
) -> dict[str, Any]:
    import numpy as np

    from qa.config import Settings
    from qa.service import QAService
    from qa.store.collection import Collection, current_generation

    scratch = Path(tempfile.mkdtemp(prefix="qa-bench-index-"))
    try:
        source = corpus
        documents_in = None
        if limit:
            source = scratch / "corpus" / "corpus.jsonl"
            source.parent.mkdir(parents=True)
            with corpus.open(encoding="utf-8") as handle, source.open("w", encoding="utf-8") as out:
                documents_in = 0
                for line in handle:
                    if documents_in >= limit:
                        break
                    if line.strip():
                        out.write(line if line.endswith("\n") else line + "\n")
                        documents_in += 1
        else:
            with corpus.open(encoding="utf-8") as handle:
                documents_in = sum(1 for line in handle if line.strip())

        overrides: dict[str, Any] = {"batch_size": pipeline_batch_size} if pipeline_batch_size else {}
        settings = Settings(index_dir=scratch / "index", threads=threads, **overrides)
        load_avg_start = os.getloadavg()
        rss_start = maxrss_mb()

        # -- the model, loaded (and run once) before anything is timed
        started = time.perf_counter()
        service = QAService(settings)
        embedder = service.embedder
        model = embedder.model
        embedder.identity  # noqa: B018 - fingerprints the weights
        embedder.count_tokens(["warm up the tokenizer"])
        model.encode(["warm up"] * 8, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
        model_load_s = time.perf_counter() - started
        import torch

        rss_model = maxrss_mb()

        # -- 0. (--bracket) a bare encode BEFORE the pipeline too, so order effects average out
        before = None
        if bracket:
            early_texts = planned_texts(source, service)
            _, before_s, before_cpu = timed_bare(model, early_texts, batch_size)
            before = {"seconds": before_s, "cpu": before_cpu, "texts": early_texts}

        # -- 1. the whole pipeline
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        report = service.index([source], COLLECTION, full=True, progress=False)
        pipeline_s = time.perf_counter() - wall0
        pipeline_cpu = cpu_seconds() - cpu0
        rss_pipeline = maxrss_mb()
        rss_pipeline_now = rss_mb()

        directory = settings.collection_dir(COLLECTION)
        generation = current_generation(directory)
        collection = Collection.load(directory, expect_model=embedder.identity.to_dict())
        texts = embedded_texts(collection, embedder, service.indexer.passage_settings())
        ids, stored = collection.all_vectors()
        collection.close()

        # -- 2. bare sentence-transformers over the same inputs
        bare, bare_s, bare_cpu = timed_bare(model, texts, batch_size)
        rss_bare = maxrss_mb()
        bare_after_s, bare_after_cpu = bare_s, bare_cpu
        if before is not None:
            if sorted(before["texts"]) != sorted(texts):
                raise SystemExit("error: the planned embedding inputs differ from the built collection's")
            bare_s = (before["seconds"] + bare_s) / 2
            bare_cpu = (before["cpu"] + bare_cpu) / 2

        # the pipeline's stored vectors against the bare ones (same passage order: ids ascending)
        order = np.argsort(ids)
        agreement = np.sum(np.asarray(stored)[order] * np.asarray(bare, dtype=np.float32), axis=1)

        # -- 3. size on disk and load time
        total_bytes, files = folder_sizes(directory / str(generation))
        load_times = []
        for _ in range(loads):
            wall0 = time.perf_counter()
            loaded = Collection.load(directory, expect_model=embedder.identity.to_dict())
            load_times.append(time.perf_counter() - wall0)
            loaded.close()
        unverified = []
        for _ in range(loads):
            wall0 = time.perf_counter()
            loaded = Collection.load(directory, expect_model=embedder.identity.to_dict(), verify=False)
            unverified.append(time.perf_counter() - wall0)
            loaded.close()

        passages = report.passages
        pipeline_rate = passages / pipeline_s
        bare_rate = len(texts) / bare_s
        return {
            "corpus": str(corpus),
            "limit": limit,
            "documents_in": documents_in,
            "documents": report.documents,
            "passages": passages,
            "sentences": int(collection._sentence_spans.shape[0]),
            "skipped": len(report.skipped),
            "batch_size": batch_size,
            "pipeline_batch_size": settings.batch_size,
            "machine": {
                "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "sentence_transformers": __import__("sentence_transformers").__version__,
                "load_avg_start": [round(x, 2) for x in load_avg_start],
                "load_avg_end": [round(x, 2) for x in os.getloadavg()],
            },
            "model_load_s": round(model_load_s, 2),
            "pipeline": {
                "seconds": round(pipeline_s, 2),
                "cpu_seconds": round(pipeline_cpu, 2),
                "passages_per_s": round(pipeline_rate, 2),
                "stages_s": {k: round(v, 3) for k, v in report.seconds.items()},
            },
            "bare_encode": {
                "bracketed": before is not None,
                "before_s": round(before["seconds"], 2) if before else None,
                "after_s": round(bare_after_s, 2),
                "before_cpu_s": round(before["cpu"], 2) if before else None,
                "after_cpu_s": round(bare_after_cpu, 2),
                "seconds": round(bare_s, 2),
                "cpu_seconds": round(bare_cpu, 2),
                "passages_per_s": round(bare_rate, 2),
                "texts": len(texts),
            },
            "ratio": round(pipeline_rate / bare_rate, 3),
            "cpu_ratio": round(bare_cpu / pipeline_cpu, 3) if pipeline_cpu else None,
            "target_ratio": TARGET_RATIO,
            "vector_agreement": {
                "min_cosine": round(float(agreement.min()), 6),
                "mean_cosine": round(float(agreement.mean()), 6),
            },
            "memory_mb": {
                "maxrss_start": round(rss_start, 1),
                "maxrss_after_model_load": round(rss_model, 1),
                "maxrss_after_pipeline": round(rss_pipeline, 1),
                "rss_after_pipeline": round(rss_pipeline_now, 1),
                "maxrss_after_bare": round(rss_bare, 1),
            },
            "disk": {"generation": generation, "bytes": total_bytes, "files": files},
            "load_s": {
                "median": round(statistics.median(load_times), 4),
                "runs": [round(t, 4) for t in load_times],
                "median_without_checksums": round(statistics.median(unverified), 4),
                "target": TARGET_LOAD_S,
            },
            "index_dir": str(settings.index_dir) if keep else None,
        }
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MB"


def markdown(r: dict[str, Any]) -> str:
    p, b = r["pipeline"], r["bare_encode"]
    ok = "meets" if r["ratio"] >= r["target_ratio"] else "misses"
    load_ok = "meets" if r["load_s"]["median"] < r["load_s"]["target"] else "misses"
    scope = f"first {r['limit']:,} documents" if r["limit"] else "all documents"
    m = r["machine"]
    lines = [
        "# Indexing benchmark (scripts/bench_index.py)",
        "",
        (f"Corpus `{r['corpus']}` ({scope}): {r['documents']:,} documents -> {r['passages']:,} passages, "
        f"{r['sentences']:,} sentences; {r['skipped']} skipped. Batch size: pipeline {r.get('pipeline_batch_size', r['batch_size'])}, "
        f"bare {r['batch_size']}."),
        (f"Machine: {m['cpus']} CPUs (shared), torch {m['torch']} with {m['torch_threads']} threads, "
        f"sentence-transformers {m['sentence_transformers']}, Python {m['python']}; load average "
        f"{m['load_avg_start'][0]} at start, {m['load_avg_end'][0]} at end. "
        f"Model load (excluded from all timings): {r['model_load_s']} s."),
        "",
        "## Throughput (one run, same process, same inputs)",
        "",
        "| run | wall s | CPU s | passages | passages/s |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| pipeline `Indexer.index_paths` | {p['seconds']} | {p['cpu_seconds']} | {r['passages']:,} | {p['passages_per_s']} |",
        (f"| bare `SentenceTransformer.encode`{' (mean of before and after)' if b.get('bracketed') else ''} | "
         f"{b['seconds']} | {b['cpu_seconds']} | {b['texts']:,} | {b['passages_per_s']} |"),
        *(
            ["", (f"Bare encode before the pipeline: {b['before_s']} s wall ({b['before_cpu_s']} CPU s); "
                 f"after it: {b['after_s']} s ({b['after_cpu_s']} CPU s).")]
            if b.get("bracketed") else []
        ),
        "",
        (f"**Ratio pipeline / bare: {r['ratio']:.3f}x** (target >= {r['target_ratio']}x: {ok}); "
        f"by CPU seconds: {r['cpu_ratio']}x."),
        (f"Stored pipeline vectors vs bare vectors: min cosine {r['vector_agreement']['min_cosine']}, "
        f"mean {r['vector_agreement']['mean_cosine']}."),
        "",
        "## Pipeline stages (`IndexReport.seconds`, cumulative where the pipeline reports so)",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
    ]
    lines += [f"| {k} | {v} |" for k, v in p["stages_s"].items()]
    mem = r["memory_mb"]
    lines += [
        "",
        "## Peak memory (`ru_maxrss`, this process)",
        "",
        "| point | MB |",
        "| --- | ---: |",
        f"| after model load | {mem['maxrss_after_model_load']} |",
        f"| after the pipeline | {mem['maxrss_after_pipeline']} (current RSS {mem['rss_after_pipeline']}) |",
        f"| after the bare encode | {mem['maxrss_after_bare']} |",
        "",
        f"## Index size on disk: {_mb(r['disk']['bytes'])} ({r['disk']['generation']})",
        "",
        "| file | bytes | MB |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {size:,} | {size / 2**20:.2f} |" for name, size in r["disk"]["files"].items()]
    ld = r["load_s"]
    lines += [
        "",
        "## Loading the built collection (`Collection.load`, model excluded)",
        "",
        (f"Median of {len(ld['runs'])}: **{ld['median'] * 1000:.1f} ms** (target < {ld['target']} s: {load_ok}); "
        f"runs {', '.join(f'{t * 1000:.1f}' for t in ld['runs'])} ms. "
        f"Without checksum verification (`verify=False`): {ld['median_without_checksums'] * 1000:.1f} ms."),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=SCIFACT, help="a BEIR corpus.jsonl (default: SciFact)")
    parser.add_argument("--limit", type=int, default=None, help="index only the first N documents")
    parser.add_argument("--batch-size", type=int, default=32, help="the bare encode's batch (default: 32, "
                        "sentence-transformers' own default)")
    parser.add_argument("--pipeline-batch-size", type=int, default=None,
                        help="the pipeline's batch (default: QA_BATCH_SIZE or the package default)")
    parser.add_argument("--loads", type=int, default=5, help="Collection.load repetitions (median)")
    parser.add_argument("--threads", type=int, help="torch threads for both runs (QA_THREADS; default: torch's). "
                        "1 is far less sensitive to other jobs on a shared machine")
    parser.add_argument("--bracket", action="store_true",
                        help="also run the bare encode BEFORE the pipeline and compare with the mean (order effects)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary index folder")
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        parser.error(f"{args.corpus} does not exist")
    result = run(args.corpus, args.limit, args.batch_size, args.loads, args.keep, args.threads, args.bracket,
                 args.pipeline_batch_size)
    text = markdown(result)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    print(json.dumps(result, indent=2) if args.json else text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
