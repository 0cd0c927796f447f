"""Copying the live rows of several segments into one new segment, in passage id order, a chunk
at a time: text through SQLite, vectors and sentences through memory-mapped arrays, BM25
postings remapped term by term (nothing is tokenized or embedded again)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.store.segment import Segment, widened
from qa.store.segment_writer import SegmentWriter
from qa.store.sql import DocumentRow, PassageRow, document_row

CHUNK = 20_000  # rows copied at a time: bounds memory whatever the segments' size


@dataclass
class Source:
    """A segment being merged and which of its rows survive."""

    segment: Segment
    live: np.ndarray  # bool per row of the segment


def copy_live_rows(sources: list[Source], writer: SegmentWriter) -> None:
    """Write every live row of ``sources`` to ``writer``, ascending by passage id."""
    ids = np.concatenate([np.asarray(s.segment.ids)[s.live] for s in sources])
    origin = np.concatenate([np.full(int(s.live.sum()), n) for n, s in enumerate(sources)])
    local = np.concatenate([np.flatnonzero(s.live) for s in sources])
    order = np.argsort(ids, kind="stable")
    ids, origin, local = ids[order], origin[order], local[order]
    for number, source in enumerate(sources):
        new_rows = np.full(len(source.segment), -1, dtype=np.int64)
        new_rows[local[origin == number]] = np.flatnonzero(origin == number)
        writer.lexical.add_segment(source.segment.postings, new_rows)
    written: set[str] = set()
    for begin in range(0, len(ids), CHUNK):
        _copy_chunk(
            sources,
            writer,
            ids[begin : begin + CHUNK],
            origin[begin : begin + CHUNK],
            local[begin : begin + CHUNK],
            written,
        )


def _copy_chunk(
    sources: list[Source],
    writer: SegmentWriter,
    ids: np.ndarray,
    origin: np.ndarray,
    local: np.ndarray,
    written: set[str],
) -> None:
    """One chunk of rows (already in id order) from their segments to the writer."""
    dimension = writer.dimension
    vectors = np.zeros((len(ids), dimension), dtype=np.float32)
    passages: dict[int, PassageRow] = {}
    documents: list[DocumentRow] = []
    spans: list[np.ndarray] = [np.zeros((0, 3), np.int64)] * len(ids)
    width = writer.sentence_width
    empty = np.zeros((0, width), np.float16)
    sentence_vectors: list[np.ndarray] = [empty] * len(ids)
    for number, source in enumerate(sources):
        mine = np.flatnonzero(origin == number)
        if not len(mine):
            continue
        segment = source.segment
        vectors[mine] = segment.vectors(local[mine])
        rows = segment.db.select_in(
            "SELECT * FROM passages WHERE id IN ({marks})", ids[mine].tolist()
        )
        passages.update({r["id"]: PassageRow(**dict(r)) for r in rows})
        wanted = sorted({r["document_id"] for r in rows} - written)
        for row in segment.db.select_in("SELECT * FROM documents WHERE id IN ({marks})", wanted):
            documents.append(document_row(row, row["source"]))
            written.add(row["id"])
        firsts, lasts = segment.sentence_range(ids[mine])
        for position, first, last in zip(mine.tolist(), firsts.tolist(), lasts.tolist()):
            spans[position] = np.asarray(segment.sentence_spans[first:last])
            sentence_vectors[position] = widened(
                segment.sentence_vectors[first:last], dimension, width
            )
    writer.add(
        documents,
        [passages[int(i)] for i in ids],
        vectors,
        np.concatenate(spans) if spans else np.zeros((0, 3), np.int64),
        np.concatenate(sentence_vectors) if sentence_vectors else empty,
        None,
    )
