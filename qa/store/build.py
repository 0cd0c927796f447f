"""One indexing run's new segments, written while documents stream in.

Documents arrive one at a time; new and changed ones are split at once and their passages
embedded and written a batch at a time (:data:`BATCH_PASSAGES`), and a segment is sealed every
``segment_passages`` passages, so memory holds one batch whatever the corpus' size. Documents
whose content is unchanged are left where they are; a changed, removed or moved one is
hidden in its old segment by the generation's deletion list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.encoding import Embedder
from qa.ingest.documents import Document
from qa.store.collection import Collection
from qa.store.dense import DenseParams
from qa.store.layout import drop_segment_dir, finish_segment_dir, new_segment_dir
from qa.store.manifest import PassageSettings
from qa.store.pipeline import NewPassage, new_rows, passage_vectors, split_documents
from qa.store.segment import SegmentInfo, sentence_width
from qa.store.segment_writer import Hook, SegmentWriter
from qa.store.sql import DocumentRow

BATCH_PASSAGES = 2048  # embedded and written together: bounds memory, keeps batches efficient


@dataclass
class BuildCounts:
    """What the new segments received."""

    documents: int = 0
    passages: int = 0
    embedded: int = 0
    reused: int = 0
    empty: list[Document] = field(default_factory=list)  # documents with no passage


class SegmentBuild:
    """New segments of one run: passages numbered from ``first_id``, written in batches."""

    def __init__(
        self,
        collection_dir: Path,
        embedder: Embedder,
        previous: Collection | None,
        settings: PassageSettings,
        params: DenseParams,
        first_id: int,
        step: Hook,
        segment_passages: int,
        advance: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.collection_dir = collection_dir
        self.embedder = embedder
        self.previous = previous
        self.settings = settings
        self.params = params
        self.next_id = first_id
        self.step = step
        self.segment_passages = segment_passages
        self.advance = advance
        self.counts = BuildCounts()
        self.sealed: list[SegmentInfo] = []
        self._open: list[tuple[str, Path, SegmentWriter]] = []  # the current writer is last
        self._documents: list[DocumentRow] = []
        self._pieces: list[NewPassage] = []
        self._split_started = False
        self._moved: list[DocumentRow] = []

    # ------------------------------------------------------------------ input
    def add(self, document: Document) -> None:
        """Split a new or changed document; its passages are written with the next batch."""
        if not self._split_started:
            self._split_started = True
            self.step("split")
        rows, pieces, empty = split_documents([document], self.embedder, self.settings)
        self.counts.empty += empty
        self._documents += rows
        self._pieces += pieces
        if len(self._pieces) >= BATCH_PASSAGES:
            self.flush()

    def relocate(self, document: DocumentRow) -> None:
        """Keep a document's passages, ids and vectors under a new row (its source moved)."""
        self._moved.append(document)

    def _copy(self, document: DocumentRow, source: Collection) -> None:
        """Write a moved document's passages as they are, under its new row."""
        passages = source.passages_of([document.id])
        ids = [p.id for p in passages]
        sentences = source.sentences(ids)
        spans = [(i, a, b) for i in ids for a, b in sentences.get(i, ([], None))[0]]
        vectors = [sentences[i][1] for i in ids if i in sentences]
        dimension = source.dimension
        writer = self._writer(relocated=True)
        titled = self.settings.title_in_embedding
        writer.add(
            [document],
            passages,
            source.vectors(ids),
            np.asarray(spans, dtype=np.int64).reshape(-1, 3),
            np.concatenate(vectors) if vectors else np.zeros((0, dimension), np.float32),
            [f"{document.title}\n{p.text}" if titled else p.text for p in passages],
        )
        self.counts.documents += 1
        self.counts.passages += len(passages)

    # ------------------------------------------------------------------ output
    def flush(self) -> None:
        """Embed and write the waiting passages; seal the segment once it is full."""
        if not self._pieces and not self._documents:
            return
        pieces, documents = self._pieces, self._documents
        self._pieces, self._documents = [], []
        vectors = passage_vectors(
            self.embedder, self.previous, pieces, self._embedded, self.settings.own_sentence_vectors
        )
        self.counts.embedded += vectors.embedded
        self.counts.reused += vectors.reused
        rows = new_rows(pieces, vectors, self.next_id, self.settings)
        self.next_id += len(pieces)
        writer = self._writer(relocated=False)
        writer.add(
            documents,
            rows.passages,
            rows.vectors,
            rows.sentence_spans,
            rows.sentence_vectors,
            rows.lexical_texts,
        )
        self.counts.documents += len(documents)
        self.counts.passages += len(pieces)
        if writer.rows >= self.segment_passages:
            self._seal(self._open.pop())

    def _embedded(self, count: int) -> None:
        self.advance(count)
        self.step("embed")

    def finish(self) -> list[SegmentInfo]:
        """Write what is waiting and seal every open segment."""
        self.flush()
        if self._moved and self.previous is not None:
            first = {
                p.document_id: p.id
                for p in self.previous.passages_of(d.id for d in self._moved)[::-1]
            }
            for document in sorted(self._moved, key=lambda d: first.get(d.id, -1)):
                self._copy(document, self.previous)
        while self._open:
            self._seal(self._open.pop(0))
        return self.sealed

    def abort(self) -> None:
        """Drop the segments of a run that will not be committed."""
        for _, building, writer in self._open:
            writer.abort()
            drop_segment_dir(building)
        for info in self.sealed:
            drop_segment_dir(self.collection_dir / "segments" / info.name)
        self._open, self.sealed = [], []

    def _writer(self, relocated: bool) -> SegmentWriter:
        """The open writer for new passages (or for moved documents, which keep old ids and
        so can't share a segment with new ones: a segment's ids ascend)."""
        for name, _, writer in self._open:
            if name.endswith("*") == relocated:
                return writer
        name, building = new_segment_dir(self.collection_dir)
        dimension = self.embedder.identity.dimension
        width = sentence_width(dimension, self.settings.own_sentence_vectors)
        writer = SegmentWriter(building, dimension, self.params, sentence_width=width)
        self._open.append((name + ("*" if relocated else ""), building, writer))
        return writer

    def _seal(self, entry: tuple[str, Path, SegmentWriter]) -> None:
        name, building, writer = entry
        name = name.rstrip("*")
        info = writer.finish(name, self.step)
        self.step("segment")
        finish_segment_dir(building, name)
        self.sealed.append(info)
