"""Writing a segment in batches: rows go to SQLite and vectors to scratch files as they come,
so memory holds one batch, not the corpus; the indexes are built once at the end."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from qa.store import dense
from qa.store.dense import DenseParams
from qa.store.layout import fsync_tree, sha256_file
from qa.store.lexical import PostingsBuilder
from qa.store.segment import (
    FAISS,
    IDS,
    LEXICAL,
    SEGMENT_JSON,
    SENTENCE_SPANS,
    SENTENCE_VECTORS,
    SQLITE,
    VECTORS,
    DenseInfo,
    SegmentInfo,
    widened,
)
from qa.store.segment import sentence_width as row_width
from qa.store.sql import DocumentRow, PassageRow, create_database, insert_rows

Hook = Callable[[str], None]  # called with each stage's name (tests interrupt a build there)
SCRATCH = ("vectors.f32", "spans.i64", "sentences.f16")  # raw rows, removed by finish()
CHUNK_ROWS = 16_384  # scratch rows read and written at a time


class SegmentWriter:
    """Accepts passages in ascending id order, batch by batch; :meth:`finish` seals the folder."""

    def __init__(
        self, folder: Path, dimension: int, params: DenseParams, sentence_width: int = 0
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)  # made empty by new_segment_dir
        self.folder = folder
        self.dimension = dimension
        self.sentence_width = sentence_width or row_width(dimension)  # 0: both vectors
        self.params = params
        self.lexical = PostingsBuilder()  # merges add postings to it directly
        self._db = create_database(folder / SQLITE)
        self._files: dict[str, BinaryIO] = {name: (folder / name).open("wb") for name in SCRATCH}
        self._ids: list[np.ndarray] = []
        self.rows = 0
        self.sentence_rows = 0
        self.documents = 0
        self.first_id = -1
        self.last_id = -1

    def add(
        self,
        documents: Sequence[DocumentRow],
        passages: Sequence[PassageRow],
        vectors: np.ndarray,
        sentence_spans: np.ndarray,
        sentence_vectors: np.ndarray,
        lexical_texts: Sequence[str] | None,
    ) -> None:
        """Append rows. ``sentence_spans`` are (passage id, start, end) in passage order;
        ``lexical_texts`` is what BM25 indexes per passage (``None``: the caller adds postings)."""
        ids = np.fromiter((p.id for p in passages), dtype=np.int64, count=len(passages))
        if len(ids) and (ids[0] <= self.last_id or (np.diff(ids) <= 0).any()):
            raise ValueError("segment rows must come in ascending passage id order")
        insert_rows(self._db, documents, passages)
        self.documents += len(documents)
        self._files["vectors.f32"].write(
            np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension).tobytes()
        )
        spans = np.ascontiguousarray(sentence_spans, dtype=np.int64).reshape(-1, 3)
        self._files["spans.i64"].write(spans.tobytes())
        half = widened(
            np.asarray(sentence_vectors, dtype=np.float16), self.dimension, self.sentence_width
        )
        if len(half) != len(spans):
            raise ValueError("one sentence vector row per sentence span")
        self._files["sentences.f16"].write(np.ascontiguousarray(half).tobytes())
        if lexical_texts is not None:
            self.lexical.add(lexical_texts, self.rows)
        self._ids.append(ids)
        if len(ids):
            self.first_id = int(ids[0]) if self.first_id < 0 else self.first_id
            self.last_id = int(ids[-1])
        self.rows += len(ids)
        self.sentence_rows += len(spans)

    def finish(self, name: str, step: Hook) -> SegmentInfo:
        """Build the indexes, write ``segment.json`` and make every file durable."""
        for handle in self._files.values():
            handle.close()
        step("sqlite")
        self._db.commit()
        self._db.close()
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int64)
        np.save(self.folder / IDS, ids, allow_pickle=False)
        step("faiss")
        info = self._write_dense()
        step("bm25")
        self.lexical.size = max(self.lexical.size, self.rows)
        self.lexical.save(self.folder / LEXICAL)
        step("sentences")
        self._write_sentences()
        for scratch in SCRATCH:
            (self.folder / scratch).unlink()
        files = sorted(p for p in self.folder.rglob("*") if p.is_file())
        segment = SegmentInfo(
            name=name,
            documents=self.documents,
            passages=self.rows,
            dimension=self.dimension,
            dense=info,
            first_id=self.first_id,
            last_id=self.last_id,
            files={p.relative_to(self.folder).as_posix(): sha256_file(p) for p in files},
            sizes={p.relative_to(self.folder).as_posix(): p.stat().st_size for p in files},
        )
        (self.folder / SEGMENT_JSON).write_text(segment.model_dump_json(indent=2), encoding="utf-8")
        fsync_tree(self.folder)
        return segment

    def abort(self) -> None:
        """Close what is open (the caller removes the folder)."""
        for handle in self._files.values():
            handle.close()
        self._db.close()

    def _raw(self, name: str, dtype: type, width: int) -> Scratch:
        """A scratch file's rows of ``width`` columns."""
        return Scratch(self.folder / name, dtype, width)

    def _write_dense(self) -> DenseInfo:
        """The dense index (and float16 vectors when it can't return them exactly)."""
        vectors = self._raw("vectors.f32", np.float32, self.dimension)
        kind = self.params.kind_for(len(vectors))
        index = dense.build(vectors, kind, self.params)
        dense.save(index, self.folder / FAISS)
        if kind != "flat":
            _copy_npy(self.folder / VECTORS, vectors, np.float16)
        nlist = int(getattr(index, "nlist", 0))
        return DenseInfo(kind=kind, nlist=nlist, nprobe=int(getattr(index, "nprobe", 0)))

    def _write_sentences(self) -> None:
        """Sentence spans and vectors as ``.npy`` files (already in passage id order)."""
        _copy_npy(self.folder / SENTENCE_SPANS, self._raw("spans.i64", np.int64, 3), np.int64)
        vectors = self._raw("sentences.f16", np.float16, self.sentence_width)
        _copy_npy(self.folder / SENTENCE_VECTORS, vectors, np.float16)


class Scratch:
    """The rows of a scratch file, read a chunk at a time with ``pread``.

    Not memory-mapped: mapped pages count in the process's memory, and a segment's sentence
    vectors read and written through maps added ~400 MB to the peak of a 100k-passage build.
    """

    def __init__(self, path: Path, dtype: type, width: int) -> None:
        self.path, self.dtype, self.width = path, np.dtype(dtype), width
        self.shape = (path.stat().st_size // (self.dtype.itemsize * width), width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        """Rows ``first:last``, or the given ascending rows."""
        if isinstance(rows, slice):
            first, last, _ = rows.indices(len(self))
            return self._span(first, max(first, last))
        wanted = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(wanted), self.width), self.dtype)
        for begin in range(0, len(self), CHUNK_ROWS):
            inside = (wanted >= begin) & (wanted < begin + CHUNK_ROWS)
            if inside.any():
                out[inside] = self._span(begin, min(begin + CHUNK_ROWS, len(self)))[
                    wanted[inside] - begin
                ]
        return out

    def _span(self, first: int, last: int) -> np.ndarray:
        row = self.dtype.itemsize * self.width
        with self.path.open("rb", buffering=0) as handle:
            data = os.pread(handle.fileno(), (last - first) * row, first * row)
        return np.frombuffer(data, dtype=self.dtype).reshape(-1, self.width)


def _copy_npy(path: Path, rows: Scratch | np.ndarray, dtype: type) -> None:
    """Write ``rows`` as an ``.npy`` file of ``dtype``, a chunk at a time (durable once
    fsync_tree covers the whole folder)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
    with path.open("wb") as out:
        np.lib.format.write_array_header_1_0(out, {**header, "shape": tuple(rows.shape)})
        for begin in range(0, len(rows), CHUNK_ROWS):
            out.write(np.ascontiguousarray(rows[begin : begin + CHUNK_ROWS], dtype=dtype).tobytes())
