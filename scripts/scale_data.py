"""The synthetic passages of scripts/bench_scale.py and the one-segment collections they fill
(see that script's docstring for how they are drawn from real ones)."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path

import numpy as np
from harness import say

BATCH = 20_000  # passages written per SegmentWriter.add
PER_DOCUMENT = 4  # passages per synthetic document


class Synthetic:
    """Passages at any size drawn from the real ones (see the module's docstring)."""

    def __init__(self, vectors: np.ndarray, texts: list[str], noise: float, seed: int = 0) -> None:
        self.vectors = vectors
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        words = " ".join(texts).split()
        vocabulary, counts = np.unique(np.array(words, dtype=object), return_counts=True)
        self.vocabulary = vocabulary
        self.weights = counts / counts.sum()
        self.lengths = np.array([len(t.split()) for t in texts])

    def batch(self, first: int, count: int, texts: bool = True) -> tuple[np.ndarray, list[str]]:
        """Vectors and texts (unless not wanted) of passages ``first .. first + count``."""
        base = self.vectors[np.arange(first, first + count) % len(self.vectors)]
        noisy = base + self.rng.normal(0, self.noise, base.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        if not texts:
            return noisy.astype(np.float32), []
        lengths = self.rng.choice(self.lengths, count)
        words = self.rng.choice(self.vocabulary, int(lengths.sum()), p=self.weights)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        texts = [" ".join(words[a:b]) for a, b in itertools.pairwise(bounds)]
        return noisy.astype(np.float32), texts


def write_collection(directory: Path, size: int, source: Synthetic, embedder: object) -> float:
    """A one-segment collection of ``size`` synthetic passages; the seconds it took."""
    from qa.store import Indexer
    from qa.store.layout import finish_segment_dir, new_segment_dir, writer_lock
    from qa.store.manifest import BuildInfo, ModelInfo, SourceOptions
    from qa.store.segment_writer import SegmentWriter
    from qa.store.writer import commit_generation, segment_ref

    started = time.perf_counter()
    indexer = Indexer(settings(directory.parent), embedder)  # type: ignore[arg-type]
    directory.mkdir(parents=True, exist_ok=True)
    with writer_lock(directory):
        name, building = new_segment_dir(directory)
        writer = SegmentWriter(building, 384, indexer.dense_params())
        records: list[object] = []
        for first in range(0, size, BATCH):
            count = min(BATCH, size - first)
            vectors, texts = source.batch(first, count)
            documents, passages = _rows(first, texts)
            counts = Counter(p.document_id for p in passages)  # type: ignore[attr-defined]
            records += [_record(d, counts[d.id]) for d in documents]  # type: ignore[attr-defined]
            spans = np.array([(first + i, 0, len(t)) for i, t in enumerate(texts)], np.int64)
            writer.add(documents, passages, vectors, spans, vectors, texts)
            say(f"  {first + count:,} / {size:,} passages written")
        info = writer.finish(name, lambda stage: None)
        finish_segment_dir(building, name)
        build = BuildInfo(
            collection=directory.name,
            model=ModelInfo.model_validate(embedder.identity, from_attributes=True),  # type: ignore[attr-defined]
            passage_settings=indexer.split_settings(),
            next_passage_id=size,
            sources=[],
            source_options=SourceOptions(),
        )
        generation = commit_generation(
            directory, build, [segment_ref(directory, info)], {}, size // PER_DOCUMENT
        )
        _write_status(directory, generation, records)
    return time.perf_counter() - started


def _write_status(directory: Path, generation: str, records: list[object]) -> None:
    """The source status ``qa index`` records for its documents, so that an update of a few
    takes the path it takes after a real build (without it, the first update lists every
    document once to make the status)."""
    from qa.store.status_table import StatusTable

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    table = StatusTable(directory)
    try:
        table.write(generation, now, records, everything=True)  # type: ignore[arg-type]
    finally:
        table.close()


def _record(document: object, count: int) -> object:
    """A synthetic document's status record, as ``qa index`` writes it."""
    from qa.store.status_table import SourceRecord

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return SourceRecord(
        source=document.source,  # type: ignore[attr-defined]
        state="indexed",
        passages=count,
        content_hash=document.content_hash,  # type: ignore[attr-defined]
        checked_at=now,
        changed_at=now,
        document_id=document.id,  # type: ignore[attr-defined]
    )


def _rows(first: int, texts: list[str]) -> tuple[list[object], list[object]]:
    """Document and passage rows of synthetic passages ``first ..``."""
    import hashlib

    from qa.store.sql import DocumentRow, PassageRow

    documents, passages = [], []
    for begin in range(0, len(texts), PER_DOCUMENT):
        number = (first + begin) // PER_DOCUMENT
        parts = texts[begin : begin + PER_DOCUMENT]
        text = "\n\n".join(parts)
        digest = hashlib.sha256(text.encode()).hexdigest()
        documents.append(
            DocumentRow(
                f"d{number}",
                f"Document {number}",
                f"synthetic/{number}",
                "text",
                text,
                0,
                [],
                digest,
            )
        )
        offset = 0
        for ordinal, part in enumerate(parts):
            passage_id = first + begin + ordinal
            passages.append(
                PassageRow(
                    passage_id,
                    f"d{number}",
                    ordinal,
                    ordinal,
                    offset,
                    offset + len(part),
                    None,
                    part,
                    digest[:16] + str(ordinal),
                    f"s{passage_id}",
                    f"Document {number}",
                )
            )
            offset += len(part) + 2
    return documents, passages


def settings(index_dir: Path, **extra: object) -> object:
    from qa.config import Settings

    return Settings(index_dir=index_dir, rate_limit_per_minute=0, **extra)  # type: ignore[arg-type]
