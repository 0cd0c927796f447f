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
import os
import resource
import shutil
import statistics
import tempfile
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from bench_index_report import (
    Agreement,
    BareEncode,
    Disk,
    IndexBench,
    LoadTimes,
    Memory,
    Pipeline,
    markdown,
)
from harness import (
    SCIFACT,
    Machine,
    Spent,
    add_report_options,
    emit,
    jsonl_lines,
    make_parser,
    timed,
    timed_cpu,
    write_lines,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from qa.config import Settings
    from qa.encoding import Embedder
    from qa.service import QAService
    from qa.store import Collection, IndexReport

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


def folder_sizes(folder: Path) -> tuple[int, dict[str, int]]:
    files = {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    return sum(files.values()), files


def embedded_texts(
    collection: Collection, embedder: Embedder, settings: dict[str, int | bool]
) -> list[str]:
    """The exact texts the pipeline embedded, in passage-id order, verified by their hashes."""
    from qa.ingest.passages import embedding_text
    from qa.store.pipeline import embed_hash

    rows = sorted(collection.passages_of(sorted(collection.document_hashes())), key=lambda r: r.id)
    fingerprint = embedder.identity.fingerprint
    max_title = int(settings["max_tokens"]) // 4
    titles = sorted({r.title for r in rows if r.title})
    cost = dict(zip(titles, embedder.count_tokens([t + "\n" for t in titles])))
    texts, mismatched = [], 0
    for row in rows:
        embed_title = settings["title_in_embedding"] and row.title and cost[row.title] <= max_title
        text = embedding_text(row.title if embed_title else "", row.text)
        if embed_hash(fingerprint, text) != row.embed_hash:
            mismatched += 1
        texts.append(text)
    if mismatched:
        raise SystemExit(
            f"error: {mismatched} passages' embedding text could not be reconstructed "
            "(embed_hash differs)"
        )
    return texts


def planned_texts(source: Path, service: QAService) -> list[str]:
    """The embedding inputs the pipeline will produce, computed with its own splitter (untimed)."""
    from qa.ingest import Skip, discover, split_document
    from qa.ingest.passages import embedding_text, title_for_embedding

    settings = service.indexer.passage_settings()
    max_tokens, enabled = int(settings["max_tokens"]), bool(settings["title_in_embedding"])
    count = service.embedder.count_tokens
    texts = []
    for document in discover([source.resolve()], int(service.settings.max_file_mb * 2**20)):
        if isinstance(document, Skip):
            continue
        title, _ = title_for_embedding(document, count, max_tokens, enabled)
        passages = split_document(
            document,
            count,
            max_tokens=max_tokens,
            min_chars=int(settings["min_chars"]),
            title_in_embedding=enabled,
        )
        texts.extend(embedding_text(title, p.text) for p in passages)
    return texts


def bare_encode(model: SentenceTransformer, texts: list[str], batch_size: int) -> np.ndarray:
    """Plain sentence-transformers over ``texts``."""
    return model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )


def corpus_prefix(corpus: Path, limit: int | None, scratch: Path) -> tuple[Path, int]:
    """The corpus to index (its first ``limit`` documents, copied into ``scratch``) and how
    many documents it holds."""
    if not limit:
        return corpus, len(jsonl_lines(corpus))
    source = scratch / "corpus" / "corpus.jsonl"
    source.parent.mkdir(parents=True)
    lines = jsonl_lines(corpus, limit)
    write_lines(lines, source)
    return source, len(lines)


def warmed_service(settings: Settings, batch_size: int) -> QAService:
    """The service with its model loaded, fingerprinted and run once (before any timing)."""
    from qa.service import QAService

    service = QAService(settings)
    embedder = service.embedder
    embedder.identity  # noqa: B018 - fingerprints the weights
    embedder.count_tokens(["warm up the tokenizer"])
    bare_encode(embedder.model, ["warm up"] * 8, batch_size)
    return service


@dataclass
class Built:
    """The built collection, read back: what was embedded and what was stored."""

    generation: str
    texts: list[str]
    ids: np.ndarray
    vectors: np.ndarray
    sentences: int


def read_back(service: QAService) -> Built:
    """The pipeline's embedding inputs, stored vectors and sentence count."""
    from qa.store import Collection, current_generation

    embedder = service.embedder
    directory = service.settings.collection_dir(COLLECTION)
    generation = current_generation(directory)
    assert generation is not None
    collection = Collection.load(directory, expect_model=embedder.identity.to_dict())
    texts = embedded_texts(collection, embedder, service.indexer.passage_settings())
    ids, stored = collection.all_vectors()
    sentences = sum(len(spans) for spans, _ in collection.sentences(ids.tolist()).values())
    collection.close()
    return Built(generation, texts, ids, stored, sentences)


def load_times(service: QAService, loads: int, verify: bool) -> list[float]:
    """Seconds of each of ``loads`` ``Collection.load`` calls."""
    from qa.store import Collection

    directory = service.settings.collection_dir(COLLECTION)
    model = service.embedder.identity.to_dict()
    times = []
    for _ in range(loads):
        loaded, seconds = timed(lambda: Collection.load(directory, model, verify=verify))
        times.append(seconds)
        loaded.close()
    return times


def on_disk(service: QAService, generation: str, loads: int) -> tuple[Disk, LoadTimes]:
    """The collection's size (its generation and segments; total and per file) and its load
    times, with and without checksum verification."""
    total, files = folder_sizes(service.settings.collection_dir(COLLECTION))
    verified, unverified = load_times(service, loads, True), load_times(service, loads, False)
    times = LoadTimes(
        median=round(statistics.median(verified), 4),
        runs=[round(t, 4) for t in verified],
        median_without_checksums=round(statistics.median(unverified), 4),
        target=TARGET_LOAD_S,
    )
    return Disk(generation, total, files), times


def bare_figures(before: Spent | None, after: Spent, texts: int) -> tuple[BareEncode, Spent]:
    """The bare encode's figures (the mean of before and after when bracketed), and the
    seconds the ratio uses."""
    spent = after
    if before is not None:
        spent = Spent((before.seconds + after.seconds) / 2, (before.cpu + after.cpu) / 2)
    figures = BareEncode(
        bracketed=before is not None,
        before_s=round(before.seconds, 2) if before else None,
        after_s=round(after.seconds, 2),
        before_cpu_s=round(before.cpu, 2) if before else None,
        after_cpu_s=round(after.cpu, 2),
        seconds=round(spent.seconds, 2),
        cpu_seconds=round(spent.cpu, 2),
        passages_per_s=round(texts / spent.seconds, 2),
        texts=texts,
    )
    return figures, spent


def pipeline_figures(report: IndexReport, spent: Spent) -> Pipeline:
    return Pipeline(
        seconds=round(spent.seconds, 2),
        cpu_seconds=round(spent.cpu, 2),
        passages_per_s=round(report.passages / spent.seconds, 2),
        stages_s={k: round(v, 3) for k, v in report.seconds.items()},
    )


def agreement(built: Built, bare: np.ndarray) -> Agreement:
    """Cosines of the pipeline's stored vectors with the bare ones (same passage order)."""
    order = np.argsort(built.ids)
    cosines = np.sum(built.vectors[order] * np.asarray(bare, dtype=np.float32), axis=1)
    return Agreement(round(float(cosines.min()), 6), round(float(cosines.mean()), 6))


def measure(
    args: argparse.Namespace, settings: Settings, source: Path, documents_in: int
) -> IndexBench:
    """The model loaded, (``--bracket``) a bare encode, the pipeline, a bare encode of the
    same inputs, then the built generation's size and load time."""
    load_avg_start = os.getloadavg()
    memory = Memory(maxrss_start=round(maxrss_mb(), 1))
    service, model_load_s = timed(lambda: warmed_service(settings, args.batch_size))
    model = service.embedder.model
    memory.maxrss_after_model_load = round(maxrss_mb(), 1)
    planned, before = [], None
    if args.bracket:  # a bare encode BEFORE the pipeline too, so order effects average out
        planned = planned_texts(source, service)
        before = timed_cpu(partial(bare_encode, model, planned, args.batch_size))[1]
    index = partial(service.index, [source], COLLECTION, full=True, progress=False)
    report, pipeline_spent = timed_cpu(index)
    memory.maxrss_after_pipeline = round(maxrss_mb(), 1)
    memory.rss_after_pipeline = round(rss_mb(), 1)
    built = read_back(service)
    if args.bracket and sorted(planned) != sorted(built.texts):
        raise SystemExit("error: the planned embedding inputs differ from the built collection's")
    bare, after = timed_cpu(lambda: bare_encode(model, built.texts, args.batch_size))
    memory.maxrss_after_bare = round(maxrss_mb(), 1)
    bare_encoded, bare_spent = bare_figures(before, after, len(built.texts))
    disk, loads = on_disk(service, built.generation, args.loads)
    pipeline_rate = report.passages / pipeline_spent.seconds
    return IndexBench(
        corpus=str(args.corpus),
        limit=args.limit,
        documents_in=documents_in,
        documents=report.documents,
        passages=report.passages,
        sentences=built.sentences,
        skipped=len(report.skipped),
        batch_size=args.batch_size,
        pipeline_batch_size=settings.batch_size,
        machine=Machine.now(load_avg_start),
        model_load_s=round(model_load_s, 2),
        pipeline=pipeline_figures(report, pipeline_spent),
        bare_encode=bare_encoded,
        ratio=round(pipeline_rate / (len(built.texts) / bare_spent.seconds), 3),
        cpu_ratio=round(bare_spent.cpu / pipeline_spent.cpu, 3) if pipeline_spent.cpu else None,
        target_ratio=TARGET_RATIO,
        vector_agreement=agreement(built, bare),
        memory_mb=memory,
        disk=disk,
        load_s=loads,
        index_dir=str(settings.index_dir) if args.keep else None,
    )


def run(args: argparse.Namespace) -> IndexBench:
    """:func:`measure` in a temporary index folder (kept with ``--keep``)."""
    from qa.config import Settings

    scratch = Path(tempfile.mkdtemp(prefix="qa-bench-index-"))
    try:
        source, documents_in = corpus_prefix(args.corpus, args.limit, scratch)
        overrides = {"batch_size": args.pipeline_batch_size} if args.pipeline_batch_size else {}
        settings = Settings(index_dir=scratch / "index", threads=args.threads, **overrides)
        return measure(args, settings, source, documents_in)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    add = parser.add_argument
    add(
        "--corpus",
        type=Path,
        default=SCIFACT / "corpus.jsonl",
        help="a BEIR corpus.jsonl (default: SciFact)",
    )
    add("--limit", type=int, default=None, help="index only the first N documents")
    add(
        "--batch-size",
        type=int,
        default=32,
        help="the bare encode's batch (default: 32, sentence-transformers' own default)",
    )
    add(
        "--pipeline-batch-size",
        type=int,
        default=None,
        help="the pipeline's batch (default: QA_BATCH_SIZE or the package default)",
    )
    add("--loads", type=int, default=5, help="Collection.load repetitions (median)")
    add(
        "--threads",
        type=int,
        help="torch threads for both runs (QA_THREADS; default: torch's). "
        "1 is far less sensitive to other jobs on a shared machine",
    )
    add(
        "--bracket",
        action="store_true",
        help="also run the bare encode BEFORE the pipeline and compare with the mean (order effects)",
    )
    add_report_options(parser)
    add("--keep", action="store_true", help="keep the temporary index folder")
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        parser.error(f"{args.corpus} does not exist")
    result = run(args)
    emit(asdict(result), markdown(result), args.json, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
