"""A segment: an immutable slice of a collection's passages with everything needed to search it.

Layout of ``segments/seg-000004/``::

    segment.json        counts, the dense index's kind and parameters, every file's SHA-256
    store.sqlite        documents and passages (text, offsets, hashes, page)
    ids.npy             int64 passage id of each row, ascending
    dense.faiss         the dense index (rows = rows): flat, ivf-sq8 or hnsw (qa/store/dense.py)
    vectors.npy         float16 vectors, only when the dense index can't give them back exactly
    lexical/            term frequencies for BM25 (qa/store/lexical.py)
    sentences.npy       float16, one row per sentence: its late-chunked vector, then its
                        vector embedded on its own (zeros, or absent in segments written
                        before vectors version 3: embedded when a question needs it)
    sentence_spans.npy  int64 (passage id, start, end), sorted by passage id

Segments are written once (:mod:`qa.store.segment_writer`) and shared by every generation
that lists them; a generation hides the rows of documents it deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from qa.store import dense
from qa.store.dense import DenseMemory
from qa.store.layout import RowFile, load_array
from qa.store.lexical import Postings
from qa.store.sql import Database

if TYPE_CHECKING:
    import faiss

SEGMENT_JSON = "segment.json"
SQLITE = "store.sqlite"
IDS = "ids.npy"
FAISS = "dense.faiss"
VECTORS = "vectors.npy"
LEXICAL = "lexical"
SENTENCE_VECTORS = "sentences.npy"
SENTENCE_SPANS = "sentence_spans.npy"
FEW_ROWS = 4096  # vectors read with pread up to this many rows; more go through the map

Sentences = tuple[list[tuple[int, int]], np.ndarray]  # spans inside the passage, their vectors


def sentence_width(dimension: int, own: bool = True) -> int:
    """Columns of a sentence row: the late-chunked vector, and (``own``) the vector
    embedded on its own."""
    return 2 * dimension if own else dimension


def widened(rows: np.ndarray, dimension: int, width: int | None = None) -> np.ndarray:
    """Sentence rows ``width`` columns wide (default: both vectors). Rows that hold the
    late-chunked vector only (written before vectors version 3, or with
    ``QA_OWN_SENTENCE_VECTORS=false``) get zeros, "not embedded on its own"; narrowing
    drops the own vectors."""
    rows = np.asarray(rows)
    width = width or sentence_width(dimension)
    if rows.ndim != 2 or rows.shape[1] == width:
        return rows.reshape(-1, width)
    out = np.zeros((len(rows), width), dtype=rows.dtype)
    kept = min(width, rows.shape[1])
    out[:, :kept] = rows[:, :kept]
    return out


def late_vectors(rows: np.ndarray, dimension: int) -> np.ndarray:
    """The late-chunked vectors of sentence rows (what ranking and the claim check compare)."""
    return rows[:, :dimension]


def sentence_parts(rows: np.ndarray, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """A passage's sentence rows split: late-chunked vectors, and vectors embedded on their
    own (an all-zero row where none was stored)."""
    return late_vectors(rows, dimension), widened(rows, dimension)[:, dimension:]


class DenseInfo(BaseModel):
    """Which dense index a segment has, and how it is searched."""

    model_config = ConfigDict(frozen=True)

    kind: str
    nlist: int = 0
    nprobe: int = 0


class SegmentInfo(BaseModel):
    """``segment.json``: what a segment holds and the checksum of each of its files."""

    model_config = ConfigDict(frozen=True)

    name: str
    documents: int
    passages: int
    dimension: int
    dense: DenseInfo
    first_id: int = 0
    last_id: int = -1
    files: dict[str, str] = {}  # path inside the segment -> SHA-256
    sizes: dict[str, int] = {}  # path inside the segment -> bytes


def read_info(folder: Path) -> SegmentInfo:
    """A segment's ``segment.json``."""
    return SegmentInfo.model_validate(
        json.loads((folder / SEGMENT_JSON).read_text(encoding="utf-8"))
    )


class Segment:
    """One segment opened for reading: arrays and indexes memory-mapped, SQLite read-only."""

    def __init__(
        self, folder: Path, info: SegmentInfo | None = None, memory: DenseMemory = "map"
    ) -> None:
        self.path = folder
        self.info = info or read_info(folder)
        self.name = self.info.name
        self.ids = load_array(folder / IDS)
        self.index: faiss.Index = dense.load(folder / FAISS, self.info.dense.kind, memory)
        if self.info.dense.kind == "ivf-sq8":
            self.index.nprobe = self.info.dense.nprobe
        exact = self.info.dense.kind == "flat"
        self._vectors = None if exact else load_array(folder / VECTORS)
        self._vector_rows = None if exact else RowFile(folder / VECTORS)
        self.postings = Postings(folder / LEXICAL)
        self.sentence_spans = load_array(folder / SENTENCE_SPANS)
        self._sentence_keys = (
            np.ascontiguousarray(self.sentence_spans[:, 0])
            if len(self.sentence_spans)
            else np.zeros(0, dtype=np.int64)
        )
        self.sentence_vectors = load_array(folder / SENTENCE_VECTORS)
        self._sentence_rows = (
            RowFile(folder / SENTENCE_VECTORS) if len(self.sentence_vectors) else None
        )
        self.db = Database(folder / SQLITE)

    def close(self) -> None:
        """Close the SQLite connection and the row files (the arrays are unmapped with the
        object)."""
        self.db.close()
        for rows in (self._vector_rows, self._sentence_rows):
            if rows is not None:
                rows.close()

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, passage_ids: np.ndarray) -> np.ndarray:
        """Row of each passage id in this segment, -1 where it has no such id."""
        wanted = np.asarray(passage_ids, dtype=np.int64)
        if not len(self.ids):
            return np.full(len(wanted), -1, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        return np.where(self.ids[rows] == wanted, rows, -1)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """Float32 vectors of ``rows`` (exact for a flat index; float16-exact otherwise)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        if self._vectors is None or self._vector_rows is None:
            return self.index.reconstruct_batch(rows)
        if len(rows) <= FEW_ROWS:  # a question's candidates: read, not mapped
            return self._vector_rows.rows(rows).astype(np.float32)
        return np.asarray(self._vectors[rows], dtype=np.float32)

    def sentence_range(self, passage_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and one-past-last sentence row of each passage id."""
        wanted = np.asarray(passage_ids, dtype=np.int64)
        return (
            np.searchsorted(self._sentence_keys, wanted),
            np.searchsorted(self._sentence_keys, wanted + 1),
        )

    def sentences(self, passage_ids: Iterable[int]) -> dict[int, Sentences]:
        """``{passage_id: (spans, vectors)}`` of the passages' sentences."""
        wanted = np.fromiter((int(i) for i in passage_ids), dtype=np.int64)
        firsts, lasts = self.sentence_range(wanted)
        out: dict[int, Sentences] = {}
        for passage_id, first, last in zip(wanted.tolist(), firsts.tolist(), lasts.tolist()):
            if last > first:
                spans = [(a, b) for a, b in self.sentence_spans[first:last, 1:].tolist()]
                out[passage_id] = (spans, self._sentence_vectors(first, last))
        return out

    def _sentence_vectors(self, first: int, last: int) -> np.ndarray:
        """Float32 sentence vectors of rows ``first`` to ``last``, read rather than mapped."""
        if self._sentence_rows is None:
            return self.sentence_vectors[first:last].astype(np.float32)
        return self._sentence_rows.span(first, last).astype(np.float32)

    def search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)`` of the best ``k`` allowed rows for each query vector."""
        return dense.search(self.index, vectors, min(k, len(self.ids)), allowed)
