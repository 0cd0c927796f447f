"""Writing a generation beside the live one and switching it in with one atomic rename."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.store.layout import (
    BM25,
    FAISS,
    MANIFEST,
    SENTENCE_SPANS,
    SENTENCE_VECTORS,
    SQLITE,
    building_dir,
    clean_leftovers,
    fsync_dir,
    fsync_tree,
    next_generation_name,
    sha256_file,
    switch_to,
)
from qa.store.lexical import LexicalIndex
from qa.store.manifest import FORMAT_VERSION, METRIC, BuildInfo, Counts, Manifest, write_manifest
from qa.store.sql import DocumentRow, PassageRow, write_database

Hook = Callable[[str], None]  # called with each stage's name (tests interrupt a build there)
Commit = Callable[[], None]  # runs once a new generation is written, just before it goes live


@dataclass
class GenerationData:
    """Everything a new generation holds, ready to be written."""

    documents: list[DocumentRow]
    passages: list[PassageRow]
    vectors: np.ndarray  # row i is the vector of passages[i]
    lexical_texts: list[str]  # row i is what BM25 indexes for passages[i]
    sentence_spans: np.ndarray  # (passage id, start, end) per sentence; offsets inside the passage
    sentence_vectors: np.ndarray  # row j is the vector of sentence_spans[j]
    build: BuildInfo


def _no_hook(stage: str) -> None:
    """The hook when none is given."""


def write_generation(
    collection_dir: Path,
    data: GenerationData,
    hook: Hook | None = None,
    before_switch: Commit | None = None,
) -> str:
    """Write ``data`` as a new generation and make it live. Call with the writer lock held.

    ``hook(stage)`` is called between steps (used by tests to interrupt a build);
    ``before_switch()`` once everything is on disk, just before the switch.
    """
    step = hook or _no_hook
    collection_dir.mkdir(parents=True, exist_ok=True)
    name = next_generation_name(collection_dir)
    building = building_dir(collection_dir, name)
    building.mkdir()
    _write_files(building, data, step)
    step("manifest")
    write_manifest(building, _manifest(name, building, data))
    fsync_tree(building)
    step("rename")
    building.rename(collection_dir / name)
    fsync_dir(collection_dir)
    if before_switch is not None:
        before_switch()
    step("switch")
    switch_to(collection_dir, name)
    step("switched")
    clean_leftovers(collection_dir)
    return name


def _write_files(building: Path, data: GenerationData, step: Hook) -> None:
    """Every file of the generation but its manifest, each after its stage's hook."""
    ids = np.asarray([p.id for p in data.passages], dtype=np.int64)
    step("sqlite")
    write_database(building / SQLITE, data.documents, data.passages)
    step("faiss")
    _write_faiss(building / FAISS, data.vectors, ids, data.build.model.dimension)
    step("bm25")
    LexicalIndex.build(data.lexical_texts, ids).save(building / BM25)
    step("sentences")
    _write_sentences(building, data.sentence_spans, data.sentence_vectors)


def _write_faiss(path: Path, vectors: np.ndarray, ids: np.ndarray, dimension: int) -> None:
    """An exact inner-product index whose ids are the passage ids."""
    import faiss

    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    faiss.write_index(index, str(path))


def _write_sentences(building: Path, spans: np.ndarray, vectors: np.ndarray) -> None:
    """Sentence spans and vectors sorted by (passage id, start), for lookups by passage id."""
    order = np.lexsort((spans[:, 1], spans[:, 0])) if len(spans) else np.zeros(0, np.int64)
    ordered = np.ascontiguousarray(spans[order], dtype=np.int64).reshape(-1, 3)
    np.save(building / SENTENCE_SPANS, ordered, allow_pickle=False)
    half = np.asarray(vectors, dtype=np.float16).reshape(len(spans), -1)
    np.save(building / SENTENCE_VECTORS, np.ascontiguousarray(half[order]), allow_pickle=False)


def _manifest(name: str, building: Path, data: GenerationData) -> Manifest:
    """The manifest of the files written, with their checksums."""
    files = sorted(p for p in building.rglob("*") if p.is_file() and p.name != MANIFEST)
    return Manifest(
        **dict(data.build),
        format_version=FORMAT_VERSION,
        generation=name,
        metric=METRIC,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        counts=Counts(documents=len(data.documents), passages=len(data.passages)),
        files={p.relative_to(building).as_posix(): sha256_file(p) for p in files},
    )
