"""The offline pipeline: documents -> passages -> vectors -> a new store generation.

Updates are incremental: documents whose content hash is unchanged keep their passages,
passage ids and vectors; only new and changed documents are split and embedded (and even
then a passage whose embedded text was seen before reuses its vector). Every update is
written as a new generation and switched in atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Settings
from qa.ingest.documents import Document, Skip, discover
from qa.encoding.embedder import Embedder
from qa.ingest.parsing import ParserPool
from qa.ingest.passages import embedding_text, split_document, title_for_embedding
from qa.ingest.sentences import sentence_spans
from qa.store.collection import (
    MANIFEST,
    Collection,
    CollectionNotFound,
    DocumentRow,
    GenerationData,
    NothingToIndex,
    PassageRow,
    StoreError,
    clean_leftovers,
    current_generation,
    remove_uncommitted,
    write_generation,
    writer_lock,
)

log = logging.getLogger("qa.store.indexer")

SPLITTER_VERSION = 2
UPLOADS = "uploads"
RECORDS = ".records"  # documents sent as JSON (see qa/uploads.py)

Hook = Callable[[str], None]
Commit = Callable[[], None]  # runs once a new generation is written, just before it goes live


@dataclass
class IndexReport:
    """What an indexing run did."""

    collection: str
    generation: str | None = None
    documents: int = 0
    passages: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0
    reused_vectors: int = 0
    relocated: int = 0  # unchanged documents whose source (path, JSONL line) moved
    skipped: list[Skip] = field(default_factory=list)
    full_rebuild: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.relocated)

    def summary(self) -> str:
        return (
            f"{self.documents} documents, {self.passages} passages "
            f"({self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged; {self.embedded} passages embedded), "
            f"{len(self.skipped)} skipped"
        )

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "skipped"}
        out["skipped"] = [{"source": s.source, "reason": s.reason} for s in self.skipped]
        return out


def upload_roots(uploads: Path) -> list[Path]:
    """The folders that hold a collection's uploads: files by name, JSON documents by id hash."""
    return [p.resolve() for p in (uploads, uploads / RECORDS) if p.is_dir()]


def _embed_hash(model_fingerprint: str, text: str) -> str:
    digest = hashlib.sha256(model_fingerprint.encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class Indexer:
    """Builds and updates collections under ``settings.index_dir``."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder

    # ------------------------------------------------------------------ settings
    def passage_settings(self) -> dict[str, Any]:
        return {
            "max_tokens": self.settings.max_passage_tokens or self.embedder.max_tokens,
            "min_chars": self.settings.min_passage_chars,
            "title_in_embedding": self.settings.title_in_embedding,
            "splitter_version": SPLITTER_VERSION,
        }

    def uploads_dir(self, collection: str) -> Path:
        """Where documents added through the write API are kept as files."""
        return self.settings.collection_dir(collection) / UPLOADS

    # ------------------------------------------------------------------ entry points
    def index_paths(
        self,
        collection: str,
        paths: Iterable[Path],
        full: bool = False,
        progress: bool = False,
        hook: Hook | None = None,
        follow_links: bool = False,
    ) -> IndexReport:
        """Make the collection mirror ``paths``: add new, re-embed changed, drop vanished documents.

        Symbolic links out of a folder are not followed unless ``follow_links``.
        """
        started = time.perf_counter()
        roots = [Path(p).expanduser().resolve() for p in paths]
        uploads = [u for u in upload_roots(self.uploads_dir(collection)) if u not in roots]
        documents: list[Document] = []
        skipped: list[Skip] = []
        max_bytes = int(self.settings.max_file_mb * 2**20)
        with ParserPool.from_settings(self.settings) as parser:  # each file within its time and memory budget
            found = discover(roots + uploads, max_bytes, follow_links, parser)
            for item in _progress(found, progress, "Reading", "file"):
                if isinstance(item, Skip):
                    log.warning("%s", item)  # one line per skipped file, as it happens
                    skipped.append(item)
                else:
                    documents.append(item)
        report = self._update(
            collection,
            documents,
            remove_missing=True,
            full=full,
            progress=progress,
            hook=hook,
            sources=[str(r) for r in roots],
            source_options={"follow_links": follow_links},
        )
        report.skipped = skipped + report.skipped
        report.seconds["total"] = time.perf_counter() - started
        return report

    def upsert(
        self, collection: str, documents: list[Document], hook: Hook | None = None, before_switch: Commit | None = None
    ) -> IndexReport:
        """Add or replace documents, keeping everything else.

        ``before_switch()`` runs with the writer lock held once the new generation is
        written and only then (e.g. to keep an uploaded file only when it was accepted).
        """
        return self._update(collection, documents, remove_missing=False, hook=hook, before_switch=before_switch)

    def delete(
        self, collection: str, document_ids: list[str], hook: Hook | None = None, before_switch: Commit | None = None
    ) -> IndexReport:
        """Remove documents (and all their passages) from the collection."""
        return self._update(
            collection, [], remove_missing=False, delete=set(document_ids), hook=hook, before_switch=before_switch
        )

    # ------------------------------------------------------------------ the update
    def _open_previous(self, directory: Path, full: bool, report: IndexReport) -> Collection | None:
        if full:
            report.full_rebuild = True
            return None
        try:
            previous = Collection.load(directory)
        except CollectionNotFound:
            report.full_rebuild = True
            return None
        except StoreError as exc:
            log.warning("rebuilding from scratch: %s", exc)
            report.full_rebuild = True
            return None
        model = previous.manifest.get("model", {})
        same_model = model.get("fingerprint") == self.embedder.identity.fingerprint
        same_split = previous.manifest.get("passage_settings") == self.passage_settings()
        if not (same_model and same_split):
            log.info("model or passage settings changed since the last build: re-splitting everything")
            report.full_rebuild = True
        return previous

    def _update(
        self,
        collection: str,
        documents: list[Document],
        remove_missing: bool,
        delete: set[str] | None = None,
        full: bool = False,
        progress: bool = False,
        hook: Hook | None = None,
        sources: list[str] | None = None,
        source_options: dict[str, Any] | None = None,
        before_switch: Commit | None = None,
    ) -> IndexReport:
        directory = self.settings.collection_dir(collection)
        report = IndexReport(collection=collection)
        timer = time.perf_counter()
        with writer_lock(directory):
            for leftover in clean_leftovers(directory):
                log.info("removed leftover %s", leftover)
            previous = self._open_previous(directory, full, report)
            try:
                return self._apply(
                    collection, directory, previous, documents, remove_missing, delete or set(),
                    progress, hook, sources, report, timer, source_options, before_switch,
                )
            except BaseException:
                if current_generation(directory) is None:
                    remove_uncommitted(directory)  # a failed first write leaves no empty collection behind
                raise
            finally:
                if previous is not None:
                    previous.close()

    def _apply(
        self,
        collection: str,
        directory: Path,
        previous: Collection | None,
        documents: list[Document],
        remove_missing: bool,
        delete: set[str],
        progress: bool,
        hook: Hook | None,
        sources: list[str] | None,
        report: IndexReport,
        timer: float,
        source_options: dict[str, Any] | None = None,
        before_switch: Commit | None = None,
    ) -> IndexReport:
        def step(stage: str) -> None:
            log.debug("stage %s", stage)
            if hook:
                hook(stage)

        old_hashes = previous.document_hashes() if previous else {}
        incoming = {d.id: d for d in documents}
        if remove_missing:
            removed = set(old_hashes) - set(incoming)
        else:
            removed = delete & set(old_hashes)
        reuse_all = previous is not None and not report.full_rebuild
        unchanged = {
            i for i, d in incoming.items() if reuse_all and old_hashes.get(i) == d.content_hash
        }
        # same content, new source (a JSONL line number shifted by a deleted line, a moved
        # folder): keep passages, ids and vectors; only the document row is rewritten
        relocated = _relocated(previous, incoming, old_hashes, unchanged) if reuse_all else {}
        unchanged |= set(relocated)
        report.relocated = len(relocated)
        kept = (set(old_hashes) - removed - set(incoming)) | unchanged if reuse_all else set()
        to_split = [d for i, d in incoming.items() if i not in unchanged]
        if not reuse_all and previous is not None and not remove_missing:
            # settings changed under a partial update: keep the other documents by re-splitting them
            keep_ids = set(old_hashes) - removed - set(incoming)
            to_split += [_as_document(row) for row in previous.iter_documents(sorted(keep_ids))]
        report.added = sum(1 for i in incoming if i not in old_hashes)
        report.updated = sum(1 for i in incoming if i in old_hashes and i not in unchanged)
        report.removed = len(removed)
        report.unchanged = len(unchanged)
        if previous is not None and not report.changed and not report.full_rebuild:
            report.generation = previous.generation
            report.documents = previous.counts["documents"]
            report.passages = previous.counts["passages"]
            report.seconds["prepare"] = time.perf_counter() - timer
            log.info("collection %r is up to date", collection)
            if before_switch is not None:
                before_switch()
            return report
        if not kept and not to_split:
            raise NothingToIndex(f"nothing to index in collection {collection!r}: no documents left")

        # passages of new and changed documents
        settings = self.passage_settings()
        new_docs: list[DocumentRow] = []
        pieces: list[tuple[Document, Any, str]] = []  # (document, passage, embedding text)
        step("split")
        for document in _progress(to_split, progress and len(to_split) > 200, "Splitting", "doc"):
            title, _ = title_for_embedding(
                document, self.embedder.count_tokens, settings["max_tokens"], settings["title_in_embedding"]
            )
            passages = split_document(
                document,
                self.embedder.count_tokens,
                max_tokens=settings["max_tokens"],
                min_chars=settings["min_chars"],
                title_in_embedding=settings["title_in_embedding"],
            )
            if not passages:
                report.skipped.append(Skip(document.source, "no text to index after removing page furniture"))
                report.added -= document.id not in old_hashes
                report.updated -= document.id in old_hashes
                continue
            new_docs.append(_row(document))
            pieces.extend((document, p, embedding_text(title, p.text)) for p in passages)
        if not remove_missing and report.skipped:
            raise report.skipped[-1]  # a write of given documents is refused whole when one has no text
        if not kept and not pieces:  # every document came out empty (and bm25s can't index nothing)
            raise NothingToIndex(f"nothing to index in collection {collection!r}: no document has any text left")
        report.seconds["split"] = time.perf_counter() - timer

        # vectors: reuse by embedded-text hash, embed the rest
        fingerprint = self.embedder.identity.fingerprint
        hashes = [_embed_hash(fingerprint, text) for _, _, text in pieces]
        reusable = _reusable_vectors(previous, hashes) if previous is not None else {}
        missing = sorted({h for h in hashes if h not in reusable})
        text_of = {h: text for h, (_, _, text) in zip(hashes, pieces)}
        spans_of = {h: _sentences(passage.text) for h, (_, passage, _) in zip(hashes, pieces)}
        length_of = {h: len(passage.text) for h, (_, passage, _) in zip(hashes, pieces)}
        started = time.perf_counter()
        vectors_by_hash = {h: vector for h, (vector, _) in reusable.items()}
        sentences_by_hash = {h: sentences for h, (_, sentences) in reusable.items()}
        if missing:
            self.embedder.model  # noqa: B018 - load before the progress bar starts timing
            bar = _bar(progress, len(missing), "Embedding", "passage")
            def advance(count: int) -> None:
                bar.update(count)
                step("embed")
            embedded, sentence_vectors = self.embedder.encode_passages(
                [text_of[h] for h in missing],
                [_shift(spans_of[h], len(text_of[h]) - length_of[h]) for h in missing],
                progress=advance,
            )
            bar.close()
            vectors_by_hash.update(zip(missing, embedded))
            sentences_by_hash.update(zip(missing, sentence_vectors))
        report.embedded = len(missing)
        report.reused_vectors = sum(1 for h in hashes if h in reusable)
        report.seconds["embed"] = time.perf_counter() - started

        # assemble the generation: kept rows first, then new ones
        started = time.perf_counter()
        # ids only ever grow, also across --full rebuilds, so an old citation never names another passage
        next_id = int(previous.manifest.get("next_passage_id", 0)) if previous else _live_next_id(directory)
        kept_docs = list(previous.iter_documents(sorted(kept))) if previous and kept else []
        kept_docs = [relocated.get(d.id, d) for d in kept_docs]
        kept_passages = previous.passages_of(sorted(kept)) if previous and kept else []
        kept_vectors = previous.vectors(p.id for p in kept_passages) if previous and kept_passages else None
        rows: list[PassageRow] = list(kept_passages)
        new_vectors = []
        sentence_spans: list[tuple[int, int, int]] = []
        sentence_vectors: list[np.ndarray] = []
        if kept_passages:
            for passage_id, (spans, vectors_of) in previous.sentences(p.id for p in kept_passages).items():  # type: ignore[union-attr]
                sentence_spans.extend((passage_id, a, b) for a, b in spans)
                sentence_vectors.append(vectors_of)
        for (document, passage, text), digest in zip(pieces, hashes):
            rows.append(
                PassageRow(
                    id=next_id, document_id=document.id, ordinal=passage.ordinal,
                    paragraph=passage.paragraph, char_start=passage.char_start,
                    char_end=passage.char_end, page=passage.page, text=passage.text,
                    hash=passage.hash, embed_hash=digest, title=document.title,
                )
            )
            new_vectors.append(vectors_by_hash[digest])
            sentence_spans.extend((next_id, a, b) for a, b in spans_of[digest])
            sentence_vectors.append(sentences_by_hash[digest])
            next_id += 1
        dimension = self.embedder.identity.dimension
        blocks = [b for b in (kept_vectors, np.asarray(new_vectors, dtype=np.float32).reshape(-1, dimension)) if b is not None]
        vectors = np.concatenate(blocks) if blocks else np.zeros((0, dimension), dtype=np.float32)
        documents_rows = kept_docs + new_docs
        titles = {d.id: d.title for d in documents_rows}
        lexical = [f"{titles[r.document_id]}\n{r.text}" if settings["title_in_embedding"] else r.text for r in rows]
        manifest = {
            "collection": collection,
            "model": self.embedder.identity.to_dict(),
            "passage_settings": settings,
            "next_passage_id": next_id,
            "sources": sources if sources is not None else (previous.manifest.get("sources", []) if previous else []),
            "source_options": source_options
            if source_options is not None
            else (previous.manifest.get("source_options", {}) if previous else {}),
        }
        report.seconds["assemble"] = time.perf_counter() - started
        started = time.perf_counter()
        report.generation = write_generation(
            directory,
            GenerationData(
                documents_rows, rows, vectors, lexical,
                np.asarray(sentence_spans, dtype=np.int64).reshape(-1, 3),
                np.concatenate(sentence_vectors) if sentence_vectors else np.zeros((0, dimension), dtype=np.float32),
                manifest,
            ),
            hook=step,
            before_switch=before_switch,
        )
        report.seconds["write"] = time.perf_counter() - started
        report.documents = len(documents_rows)
        report.passages = len(rows)
        log.debug("collection %r: generation %s live; %s", collection, report.generation, report.summary())
        return report


# --------------------------------------------------------------------------- helpers


def _row(document: Document) -> DocumentRow:
    return DocumentRow(
        id=document.id, title=document.title, source=document.source, format=document.format,
        text=document.text, body_start=document.body_start, pages=list(document.pages),
        content_hash=document.content_hash,
    )


def _live_next_id(directory: Path) -> int:
    """``next_passage_id`` of the live generation (0 when there is none or it is unreadable)."""
    try:
        manifest = json.loads((directory / str(current_generation(directory)) / MANIFEST).read_text(encoding="utf-8"))
        return int(manifest.get("next_passage_id", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def _relocated(
    previous: Collection, incoming: dict[str, Document], old_hashes: dict[str, str], unchanged: set[str]
) -> dict[str, DocumentRow]:
    """New rows of documents whose hash changed only because their ``source`` did."""
    candidates = sorted(i for i in incoming if i in old_hashes and i not in unchanged)
    out = {}
    for old in previous.iter_documents(candidates):
        new = _row(incoming[old.id])
        if (old.title, old.format, old.text, old.body_start, old.pages) == (
            new.title, new.format, new.text, new.body_start, new.pages
        ):
            out[old.id] = new
    return out


def _as_document(row: DocumentRow) -> Document:
    return Document(row.id, row.title, row.source, row.text, row.format, row.body_start, list(row.pages))


def _reusable_vectors(previous: Collection, hashes: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{embed_hash: (passage vector, sentence vectors)}`` already in the previous generation."""
    found = previous.ids_by_embed_hash(hashes)
    if not found:
        return {}
    vectors = previous.vectors(found.values())
    sentences = previous.sentences(found.values())
    return {
        digest: (vector, sentences[passage_id][1])
        for (digest, passage_id), vector in zip(found.items(), vectors)
        if passage_id in sentences
    }


def _sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a passage (the whole passage when it has no sentence boundary)."""
    return sentence_spans(text) or [(0, len(text))]


def _shift(spans: list[tuple[int, int]], offset: int) -> list[tuple[int, int]]:
    """Spans inside the passage moved into the embedded text (the passage is its suffix)."""
    return [(start + offset, end + offset) for start, end in spans]


def _bar(enabled: bool, total: int | None, label: str, unit: str) -> Any:
    import sys

    from tqdm import tqdm

    return tqdm(
        total=total, desc=label, unit=f" {unit}s", disable=not enabled, dynamic_ncols=True,
        smoothing=0.1, mininterval=0.2 if sys.stderr.isatty() else 5.0,
    )


def _progress(items: Iterable[Any], enabled: bool, label: str, unit: str) -> Iterable[Any]:
    if not enabled:
        return items
    bar = _bar(True, None, label, unit)

    def counted() -> Iterable[Any]:
        try:
            for item in items:
                bar.update(1)
                yield item
        finally:
            bar.close()

    return counted()
