"""Reading a collection: the live generation loaded, checked, and searched."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.errors import CollectionNotFound, StoreError
from qa.store.layout import (
    BM25,
    FAISS,
    SENTENCE_SPANS,
    SENTENCE_VECTORS,
    SQLITE,
    UPLOADS,
    current_generation,
    sha256_file,
)
from qa.store.lexical import LexicalIndex
from qa.store.manifest import FORMAT_VERSION, Manifest, ModelInfo, format_error, read_manifest
from qa.store.sql import (
    PASSAGES_WITH_DOCUMENT,
    Database,
    DocumentRow,
    PassageRow,
    document_row,
    passage_row,
)

if TYPE_CHECKING:
    import sqlite3

    import faiss

SMALL_INDEX = 200_000  # below this many vectors FAISS searches in one thread

Sentences = tuple[list[tuple[int, int]], np.ndarray]  # spans inside the passage, their vectors


class Collection:
    """One loaded, read-only generation of a collection."""

    def __init__(
        self,
        name: str,
        path: Path,
        manifest: Manifest,
        dense: faiss.IndexIDMap2,
        lexical: LexicalIndex,
    ) -> None:
        self.name = name
        self.path = path
        self.manifest = manifest
        self.dense = dense
        self.lexical = lexical
        self._sentence_spans = _load_array(path / SENTENCE_SPANS)
        self._sentence_keys = (
            np.ascontiguousarray(self._sentence_spans[:, 0])
            if len(self._sentence_spans)
            else np.zeros(0, dtype=np.int64)
        )
        self._sentence_vectors = _load_array(path / SENTENCE_VECTORS)
        self._db = Database(path / SQLITE)
        roots = [Path(p) for p in manifest.sources if p.startswith("/")]
        self._roots = [*roots, path.parent / UPLOADS]

    @classmethod
    def load(
        cls,
        collection_dir: Path,
        expect_model: ModelInfo | Mapping[str, object] | None = None,
        verify: bool = True,
        generation: str | None = None,
    ) -> Collection:
        """Load the live generation (or ``generation``, written but not yet live: the
        indexing gate scores it before the switch), checking manifest, checksums and model.

        ``expect_model`` is the configured model (a :class:`ModelInfo`, or its fields as a
        mapping); a collection built with another one is refused.
        """
        import faiss

        name = collection_dir.name
        generation = generation or current_generation(collection_dir)
        if generation is None:
            raise CollectionNotFound(f"collection {name!r} has not been indexed")
        path = collection_dir / generation
        manifest = read_manifest(collection_dir, generation)
        if manifest.format_version != FORMAT_VERSION:
            raise format_error(name, manifest.format_version)
        if expect_model is not None:
            check_model(name, manifest.model, ModelInfo.model_validate(expect_model))
        if verify:
            _verify_files(name, path, manifest)
        try:
            dense = faiss.read_index(str(path / FAISS))
            lexical = LexicalIndex.load(path / BM25)
            return cls(name, path, manifest, dense, lexical)
        except Exception as exc:  # noqa: BLE001 - any failure to load is reported as a damaged store
            raise StoreError(
                f"collection {name!r} could not be loaded: {exc}; rebuild it with `qa index --full`"
            ) from None

    def close(self) -> None:
        """Close the SQLite connection (the arrays are unmapped with the object)."""
        self._db.close()

    @property
    def generation(self) -> str:
        """The generation's name (``gen-000007``)."""
        return self.manifest.generation

    @property
    def counts(self) -> dict[str, int]:
        """``{"documents": n, "passages": m}``."""
        return self.manifest.counts.model_dump()

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

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        """Passages by id (ids not in this generation are absent from the result)."""
        sql = f"{PASSAGES_WITH_DOCUMENT} WHERE p.id IN ({{marks}})"
        rows = self._db.select_in(sql, [int(i) for i in ids])
        return {row["id"]: self._passage(row) for row in rows}

    def passage(self, passage_id: int) -> PassageRow | None:
        """One passage, or ``None`` when this generation has no such id."""
        return self.passages([passage_id]).get(passage_id)

    def neighbours(self, passage: PassageRow, before: int = 1, after: int = 1) -> list[PassageRow]:
        """The passage with up to ``before``/``after`` passages around it in its document."""
        rows = self._db.select(
            f"{PASSAGES_WITH_DOCUMENT} WHERE p.document_id = ? AND p.ordinal BETWEEN ? AND ? "
            "ORDER BY p.ordinal",
            (passage.document_id, passage.ordinal - before, passage.ordinal + after),
        )
        return [self._passage(row) for row in rows]

    def passages_of(self, document_ids: Iterable[str]) -> list[PassageRow]:
        """All passages of the given documents, in the order given, then passage order."""
        sql = (
            f"{PASSAGES_WITH_DOCUMENT} WHERE p.document_id IN ({{marks}}) "
            "ORDER BY p.document_id, p.ordinal"
        )
        return [self._passage(row) for row in self._db.select_in(sql, document_ids)]

    def _passage(self, row: sqlite3.Row) -> PassageRow:
        return passage_row(row, self.public_source(row["source"]))

    def document(self, document_id: str) -> DocumentRow | None:
        """One document, or ``None`` when this generation has no such id."""
        rows = self._db.select("SELECT * FROM documents WHERE id = ?", (document_id,))
        if not rows:
            return None
        return document_row(rows[0], self.public_source(rows[0]["source"]))

    def document_hashes(self) -> dict[str, str]:
        """``{document_id: content_hash}`` for every document."""
        rows = self._db.select("SELECT id, content_hash FROM documents")
        return {row["id"]: row["content_hash"] for row in rows}

    def iter_documents(self, ids: Iterable[str]) -> Iterator[DocumentRow]:
        """The documents of ``ids`` that exist, one query each, in the order given."""
        for document_id in ids:
            row = self.document(document_id)
            if row is not None:
                yield row

    def ids_by_embed_hash(self, hashes: Iterable[str]) -> dict[str, int]:
        """A passage id for each embedded-text hash already in this generation."""
        sql = (
            "SELECT embed_hash, MIN(id) AS id FROM passages WHERE embed_hash IN ({marks}) "
            "GROUP BY embed_hash"
        )
        return {
            row["embed_hash"]: row["id"] for row in self._db.select_in(sql, sorted(set(hashes)))
        }

    def sentences(self, ids: Iterable[int]) -> dict[int, Sentences]:
        """``{passage_id: (spans, vectors)}`` of the passages' sentences (spans inside the
        passage)."""
        wanted = np.fromiter((int(i) for i in ids), dtype=np.int64)
        firsts = np.searchsorted(self._sentence_keys, wanted)
        lasts = np.searchsorted(self._sentence_keys, wanted + 1)
        out: dict[int, Sentences] = {}
        for passage_id, first, last in zip(wanted.tolist(), firsts.tolist(), lasts.tolist()):
            if last > first:
                spans = [(a, b) for a, b in self._sentence_spans[first:last, 1:].tolist()]
                out[passage_id] = (spans, self._sentence_vectors[first:last].astype(np.float32))
        return out

    def vectors(self, ids: Iterable[int]) -> np.ndarray:
        """Stored vectors of the given passage ids."""
        wanted = np.fromiter((int(i) for i in ids), dtype=np.int64)
        if not len(wanted):
            return np.zeros((0, self.dense.d), dtype=np.float32)
        return self.dense.reconstruct_batch(wanted)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of every passage, in the FAISS index's order."""
        import faiss

        ids = faiss.vector_to_array(self.dense.id_map).astype(np.int64)
        if not len(ids):
            return ids, np.zeros((0, self.dense.d), dtype=np.float32)
        return ids, self.dense.index.reconstruct_n(0, self.dense.ntotal)

    def dense_search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` passage ids and cosine scores for each query vector."""
        import faiss

        k = min(k, self.dense.ntotal)
        if k <= 0:
            empty = np.zeros((len(vectors), 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        if self.dense.ntotal < SMALL_INDEX:
            # a few queries over a small index: OpenMP threads cost more than they save (the
            # setting is per calling thread, and requests run on several)
            faiss.omp_set_num_threads(1)
        scores, ids = self.dense.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return ids, scores


def _verify_files(name: str, path: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is there with its checksum."""
    for relative, checksum in manifest.files.items():
        file = path / relative
        if not file.exists() or sha256_file(file) != checksum:
            raise StoreError(
                f"collection {name!r} is corrupt: {path.name}/{relative} is missing or "
                f"its checksum does not match the manifest; rebuild it with "
                f"`qa index --full --collection {name} PATH`"
            )


def _load_array(path: Path) -> np.ndarray:
    """A ``.npy`` file memory-mapped (loaded when empty, which can't be mapped); no pickle."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:
        return np.load(path, allow_pickle=False)


def check_model(name: str, built: ModelInfo, configured: ModelInfo) -> None:
    """Refuse to search an index with vectors from another model."""
    if built.dimension != configured.dimension or built.fingerprint != configured.fingerprint:
        raise StoreError(
            f"collection {name!r} was built with the model {built.name!r} "
            f"({built.dimension}-d, fingerprint {built.fingerprint[:12]}), "
            f"but the configured model is {configured.name!r} ({configured.dimension}-d, "
            f"fingerprint {configured.fingerprint[:12]}); use the same --model/QA_MODEL, "
            f"or rebuild with `qa index --full --collection {name} PATH`"
        )
