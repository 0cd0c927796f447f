"""Reading a collection: the live generation's segments loaded, checked, and searched as one.

Rows of every segment, in the manifest's order, are the collection's rows; ``live`` marks the
rows no deletion hides. Every search takes an optional ``allowed`` mask over those rows
(deleted rows are never allowed) and applies it inside the search, before top-k is cut:
deletions today, permissions and filters tomorrow.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from qa.errors import CollectionNotFound, StoreError
from qa.store.dense import DenseMemory
from qa.store.layout import DELETIONS, SEGMENTS, UPLOADS, current_generation
from qa.store.lexical import Lexical
from qa.store.manifest import (
    FORMAT_VERSION,
    LEGACY_VERSION,
    Manifest,
    ModelInfo,
    format_error,
    read_manifest,
)
from qa.store.rowmeta import PUBLIC, RowMeta, read_row_meta
from qa.store.segment import Segment, Sentences
from qa.store.sql import PASSAGES_WITH_DOCUMENT, DocumentRow, PassageRow, document_row, passage_row
from qa.store.verify import check_model, verify_generation

# masks a loaded generation keeps (a byte per row each): callers come in a few group sets (a
# team, a public widget) and clients repeat their filters, so a small cache holds most
MASK_CACHE = 64


class Collection:
    """One loaded, read-only generation of a collection."""

    def __init__(
        self,
        name: str,
        path: Path,
        manifest: Manifest,
        segments: list[Segment],
        deletions: Mapping[str, list[str]],
    ) -> None:
        self.name = name
        self.path = path
        self.manifest = manifest
        self.segments = segments
        self.deletions = {k: set(v) for k, v in deletions.items()}
        self.offsets = np.cumsum([0] + [len(s) for s in segments])
        self.ids = (
            np.concatenate([np.asarray(s.ids) for s in segments])
            if segments
            else np.zeros(0, dtype=np.int64)
        )
        self.live = np.ones(len(self.ids), dtype=bool)
        for number, segment in enumerate(segments):
            hidden = sorted(self.deletions.get(segment.name, ()))
            if hidden:
                rows = segment.db.select_in(
                    "SELECT id FROM passages WHERE document_id IN ({marks})", hidden
                )
                local = segment.rows_of(np.array([r["id"] for r in rows], dtype=np.int64))
                self.live[self.offsets[number] + local[local >= 0]] = False
        # segments with rows, none of them deleted (searched without looking at the mask)
        self._whole = {
            n
            for n, (a, b) in enumerate(itertools.pairwise(self.offsets))
            if b > a and self.live[a:b].all()
        }
        self.lexical = Lexical(
            [s.postings for s in segments], self.offsets.tolist(), self.live, self.ids
        )
        roots = [Path(p) for p in manifest.sources if p.startswith("/")]
        self._roots = [*roots, path.parent / UPLOADS]
        self._meta: RowMeta | None = None
        self._masks: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._meta_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        collection_dir: Path,
        expect_model: ModelInfo | Mapping[str, object] | None = None,
        verify: bool = True,
        generation: str | None = None,
        locked: bool = False,
        dense_memory: DenseMemory = "map",
    ) -> Collection:
        """Load the live generation (or ``generation``, written but not yet live: the
        indexing gate scores it before the switch), checking manifest, checksums and model.

        ``expect_model`` is the configured model (a :class:`ModelInfo`, or its fields as a
        mapping); a collection built with another one is refused. A collection in the
        previous format (one flat index per generation) is converted once, first (``locked``:
        the caller holds the writer lock). ``dense_memory``: see :func:`qa.store.dense.load`.
        """
        name = collection_dir.name
        generation = generation or current_generation(collection_dir)
        if generation is None:
            raise CollectionNotFound(f"collection {name!r} has not been indexed")
        manifest = read_manifest(collection_dir, generation)
        if manifest.format_version == LEGACY_VERSION:
            from qa.store.convert import convert_legacy

            convert_legacy(collection_dir, generation, locked)
            return cls.load(
                collection_dir, expect_model, verify, locked=locked, dense_memory=dense_memory
            )
        if manifest.format_version != FORMAT_VERSION:
            raise format_error(name, manifest.format_version)
        if expect_model is not None:
            check_model(name, manifest.model, ModelInfo.model_validate(expect_model))
        path = collection_dir / generation
        if verify:
            verify_generation(name, collection_dir, manifest)
        try:
            deletions = json.loads((path / DELETIONS).read_text(encoding="utf-8"))
            segments = [
                Segment(collection_dir / SEGMENTS / s.name, memory=dense_memory)
                for s in manifest.segments
            ]
            return cls(name, path, manifest, segments, deletions)
        except Exception as exc:  # noqa: BLE001 - any failure to load is reported as a damaged store
            raise StoreError(
                f"collection {name!r} could not be loaded: {exc}; rebuild it with `qa index --full`"
            ) from None

    def close(self) -> None:
        """Close the SQLite connections (the arrays are unmapped with the object)."""
        for segment in self.segments:
            segment.close()

    @property
    def generation(self) -> str:
        """The generation's name (``gen-000007``)."""
        return self.manifest.generation

    @property
    def counts(self) -> dict[str, int]:
        """``{"documents": n, "passages": m}`` (live ones)."""
        return self.manifest.counts.model_dump()

    @property
    def dimension(self) -> int:
        """Width of the vectors."""
        return self.manifest.model.dimension

    def public_source(self, source: str) -> str:
        """``source`` as readers may see it: never an absolute path on this machine.

        Sources are stored relative to the indexed folder; collections built before that
        stored absolute paths, which are shown relative to their folder here.
        """
        if not source.startswith("/"):
            return source
        for root in self._roots:
            prefix = str(root)
            if source == prefix or source.startswith((prefix + "/", prefix + ":")):
                return root.name + source[len(prefix) :]
        return Path(source.split(":", 1)[0]).name

    # ------------------------------------------------------------------ rows and masks
    @property
    def meta(self) -> RowMeta:
        """Each row's document (access list, metadata) and page, read on first use."""
        with self._meta_lock:
            if self._meta is None:
                self._meta = read_row_meta(self.segments, self.offsets.tolist(), self.public_source)
            return self._meta

    def visible(self, groups: frozenset[str]) -> np.ndarray:
        """Row mask of the passages a reader in ``groups`` may see (public ones, and those of
        documents naming one of ``groups``), remembered per group set for this generation."""
        wanted = groups | {PUBLIC}
        return self.cached_mask(
            ("groups", groups),
            lambda: self.meta.document_mask(lambda d: not d.groups.isdisjoint(wanted)),
        )

    def cached_mask(self, key: Hashable, build: Callable[[], np.ndarray]) -> np.ndarray:
        """The row mask ``build`` makes, remembered under ``key`` for this generation (a
        generation never changes, so a mask never goes stale)."""
        with self._meta_lock:
            known = self._masks.get(key)
            if known is not None:
                self._masks.move_to_end(key)
                return known
        mask = build()
        with self._meta_lock:
            self._masks[key] = mask
            while len(self._masks) > MASK_CACHE:
                self._masks.popitem(last=False)
        return mask

    def live_ids(self) -> np.ndarray:
        """Ids of every live passage, in row order."""
        return self.ids[self.live]

    def rows_of(self, passage_ids: Iterable[int]) -> np.ndarray:
        """The collection row of each live passage id (-1 for ids that are not live)."""
        return self.lexical.rows(np.fromiter((int(i) for i in passage_ids), dtype=np.int64))

    def allow(self, passage_ids: Iterable[int]) -> np.ndarray:
        """A mask over the collection's rows allowing only ``passage_ids`` (for ``allowed=``)."""
        mask = np.zeros(len(self.ids), dtype=bool)
        rows = self.rows_of(passage_ids)
        mask[rows[rows >= 0]] = True
        return mask

    def _located(self, passage_ids: Iterable[int]) -> Iterator[tuple[Segment, np.ndarray]]:
        """Each segment with the live ids of ``passage_ids`` it holds, and their local rows."""
        wanted = np.fromiter((int(i) for i in passage_ids), dtype=np.int64)
        rows = self.rows_of(wanted)
        for number, segment in enumerate(self.segments):
            inside = (rows >= self.offsets[number]) & (rows < self.offsets[number + 1])
            if inside.any():
                yield segment, np.stack([wanted[inside], rows[inside] - self.offsets[number]])

    # ------------------------------------------------------------------ text
    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        """Live passages by id (other ids are absent from the result)."""
        sql = f"{PASSAGES_WITH_DOCUMENT} WHERE p.id IN ({{marks}})"
        out = {}
        for segment, found in self._located(ids):
            for row in segment.db.select_in(sql, found[0].tolist()):
                out[row["id"]] = self._passage(row)
        return out

    def passage(self, passage_id: int) -> PassageRow | None:
        """One passage, or ``None`` when this generation has no such live id."""
        return self.passages([passage_id]).get(passage_id)

    def neighbours(self, passage: PassageRow, before: int = 1, after: int = 1) -> list[PassageRow]:
        """The passage with up to ``before``/``after`` passages around it in its document."""
        for segment, _ in self._located([passage.id]):
            rows = segment.db.select(
                f"{PASSAGES_WITH_DOCUMENT} WHERE p.document_id = ? AND p.ordinal BETWEEN ? AND ? "
                "ORDER BY p.ordinal",
                (passage.document_id, passage.ordinal - before, passage.ordinal + after),
            )
            return [self._passage(row) for row in rows]
        return []

    def passages_of(self, document_ids: Iterable[str]) -> list[PassageRow]:
        """All live passages of the given documents, by document id, then passage order."""
        wanted = list(document_ids)
        sql = f"{PASSAGES_WITH_DOCUMENT} WHERE p.document_id IN ({{marks}})"
        rows = []
        for segment in self.segments:
            hidden = self.deletions.get(segment.name, set())
            rows += [
                self._passage(r)
                for r in segment.db.select_in(sql, wanted)
                if r["document_id"] not in hidden
            ]
        return sorted(rows, key=lambda p: (p.document_id, p.ordinal))

    def _passage(self, row: object) -> PassageRow:
        return passage_row(row, self.public_source(row["source"]))  # type: ignore[index, arg-type]

    def _documents(self, sql: str, params: Iterable[object]) -> Iterator[tuple[Segment, object]]:
        """Live document rows of ``sql`` in every segment, newest segment first."""
        for segment in reversed(self.segments):
            hidden = self.deletions.get(segment.name, set())
            for row in segment.db.select_in(sql, list(params)):
                if row["id"] not in hidden:
                    yield segment, row

    def document(self, document_id: str) -> DocumentRow | None:
        """One document, or ``None`` when this generation has no such live id."""
        for _, row in self._documents(
            "SELECT * FROM documents WHERE id IN ({marks})", [document_id]
        ):
            return document_row(row, self.public_source(row["source"]))  # type: ignore[index, arg-type]
        return None

    def document_hashes(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """``{document_id: content_hash}`` for every live document (of ``ids`` when given)."""
        return {
            row["id"]: row["content_hash"]
            for _, row in self._live_documents("id, content_hash", ids)
        }

    def document_segments(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """``{document_id: segment name}`` for every live document (of ``ids`` when given)."""
        return {row["id"]: segment.name for segment, row in self._live_documents("id", ids)}

    def _live_documents(
        self, columns: str, ids: Iterable[str] | None
    ) -> Iterator[tuple[Segment, sqlite3.Row]]:
        """Each live document's ``columns`` (``id`` among them), with its segment (of ``ids``
        only, when given: looked up by id rather than read whole)."""
        wanted = None if ids is None else sorted(set(ids))
        sql = f"SELECT {columns} FROM documents"
        for segment in self.segments:
            hidden = self.deletions.get(segment.name, set())
            if wanted is None:
                rows = segment.db.select(sql)
            else:
                rows = segment.db.select_in(sql + " WHERE id IN ({marks})", wanted)
            for row in rows:
                if row["id"] not in hidden:
                    yield segment, row

    def iter_documents(self, ids: Iterable[str]) -> Iterator[DocumentRow]:
        """The documents of ``ids`` that exist, one query each, in the order given."""
        for document_id in ids:
            row = self.document(document_id)
            if row is not None:
                yield row

    def ids_by_embed_hash(self, hashes: Iterable[str]) -> dict[str, int]:
        """A live passage id for each embedded-text hash already in this generation."""
        sql = "SELECT embed_hash, id FROM passages WHERE embed_hash IN ({marks})"
        wanted = sorted(set(hashes))
        found: dict[str, int] = {}
        for segment in self.segments:
            rows = segment.db.select_in(sql, wanted)
            ids = np.array([r["id"] for r in rows], dtype=np.int64)
            live = self.rows_of(ids) >= 0
            for row, alive in zip(rows, live):
                if alive and row["id"] < found.get(row["embed_hash"], 1 << 62):
                    found[row["embed_hash"]] = row["id"]
        return found

    # ------------------------------------------------------------------ vectors
    def sentences(self, ids: Iterable[int]) -> dict[int, Sentences]:
        """``{passage_id: (spans, rows)}`` of the passages' sentences (spans inside the
        passage; each row as stored, see :func:`~qa.store.segment.sentence_parts`)."""
        out: dict[int, Sentences] = {}
        for segment, found in self._located(ids):
            out.update(segment.sentences(found[0]))
        return out

    def vectors(self, ids: Iterable[int]) -> np.ndarray:
        """Stored vectors of the given live passage ids, in the order given."""
        wanted = np.fromiter((int(i) for i in ids), dtype=np.int64)
        out = np.zeros((len(wanted), self.dimension), dtype=np.float32)
        position = {int(i): n for n, i in enumerate(wanted)}
        for segment, found in self._located(wanted):
            out[[position[int(i)] for i in found[0]]] = segment.vectors(found[1])
        return out

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of every live passage, in row order."""
        ids = self.live_ids()
        return ids, self.vectors(ids)

    def dense_search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` live (and ``allowed``) passage ids and cosine scores per query vector,
        merged across segments; ids are -1 past the last match."""
        vectors = np.atleast_2d(vectors)
        mask = self.live if allowed is None else self.live & allowed
        found_ids, found_scores = [], []
        for number, segment in enumerate(self.segments):
            part: np.ndarray | None = None  # every row: no selector
            if allowed is not None or number not in self._whole:
                part = mask[self.offsets[number] : self.offsets[number + 1]]
                if not part.any():
                    continue
                if part.all():
                    part = None
            scores, rows = segment.search(vectors, k, part)
            found_ids.append(np.where(rows >= 0, segment.ids[np.maximum(rows, 0)], -1))
            found_scores.append(np.where(rows >= 0, scores, -np.inf))
        if not found_ids:
            empty = np.zeros((len(vectors), 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        ids, scores = np.hstack(found_ids), np.hstack(found_scores)
        k = min(k, ids.shape[1], self.lexical.count if allowed is None else int(mask.sum()))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1).astype(
            np.float32
        )
