"""The library's front door: load collections once, search, answer. CLI, API and evaluation call this."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from qa.ingest import uploads as uploads_store
from qa.search.answer import AnswerParams, Reply, build_reply
from qa.search.followups import Turn, build_query
from qa.config import Settings, validate_collection_name
from qa.ingest.documents import SUPPORTED_SUFFIXES, Skip, read_jsonl_bytes
from qa.encoding.embedder import Embedder
from qa.store.indexer import UPLOADS, Indexer, IndexReport
from qa.ingest.parsing import ParserPool
from qa.encoding.rerank import CrossEncoderReranker
from qa.search.retriever import FusionParams, Mode, Retriever
from qa.store.collection import (
    Collection,
    CollectionNotFound,
    StoreError,
    current_generation,
    list_collections,
    read_manifest,
)

log = logging.getLogger("qa.service")

STARTERS = ".starters"  # one starter question per line, beside the bundled documents


class UnknownCollection(CollectionNotFound):
    """A collection name that has no index, with the names that do."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        listed = ", ".join(repr(n) for n in available) or "none yet"
        super().__init__(
            f"unknown collection {name!r}; available collections: {listed}. "
            f"Create it with `qa index PATH --collection {name}`"
        )


class UnknownDocument(LookupError):
    """A document id that the collection does not hold."""


class TooManyCollections(StoreError):
    """The write API would create more collections than ``QA_MAX_COLLECTIONS`` allows."""


class QAService:
    """Holds the model and the loaded collections; answers questions."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(
            settings.model, settings.batch_size, settings.threads, settings.query_backend,
            cache_dir=settings.index_dir / ".models",
        )
        self.indexer = Indexer(settings, self.embedder)
        self.fusion = FusionParams(
            method=settings.fusion, alpha=settings.fusion_alpha, sentence_weight=settings.sentence_weight
        )
        self.answer_params = AnswerParams(min_score=settings.min_answer_score)
        self.reranker = CrossEncoderReranker(settings.reranker) if settings.reranker else None
        self._collections: OrderedDict[str, Collection] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self._parser: ParserPool | None = None  # started on the first upload
        self._parser_lock = threading.Lock()

    # ------------------------------------------------------------------ collections
    def collection_names(self) -> list[str]:
        return list_collections(self.settings.index_dir)

    def collection(self, name: str | None = None) -> Collection:
        """The live generation of a collection, loaded once and reloaded when it changes."""
        try:
            name = validate_collection_name(name or self.settings.collection)
        except ValueError:
            raise UnknownCollection(str(name), self.collection_names()) from None
        directory = self.settings.collection_dir(name)
        live = current_generation(directory)
        loaded = self._collections.get(name)
        if loaded is not None and live == loaded.generation:
            with contextlib.suppress(KeyError):  # unloaded meanwhile by another thread: still usable
                self._collections.move_to_end(name)
            return loaded
        with self._lock:
            loaded = self._collections.get(name)
            if loaded is not None and live == loaded.generation:
                return loaded
            if live is None:
                raise UnknownCollection(name, self.collection_names())
            for attempt in range(3):
                try:
                    fresh = Collection.load(directory, expect_model=self.embedder.identity.to_dict())
                    break
                except (StoreError, OSError):
                    # writers switched past this generation and removed it while it loaded: load the new one
                    now = current_generation(directory)
                    if attempt == 2 or now is None or now == live:
                        raise
                    live = now
            self._collections[name] = fresh
            self._collections.move_to_end(name)
            while len(self._collections) > self.settings.max_loaded_collections:
                evicted, _ = self._collections.popitem(last=False)  # closed when its last reader is done
                log.debug("unloaded collection %r (QA_MAX_LOADED_COLLECTIONS)", evicted)
            log.debug("loaded collection %r generation %s", name, fresh.generation)
            return fresh

    def manifests(self) -> dict[str, dict[str, object]]:
        """The live manifest of every collection, read from disk without loading any index."""
        out = {}
        for name in self.collection_names():
            try:
                out[name] = read_manifest(self.settings.collection_dir(name))
            except StoreError as exc:
                log.warning("collection %s not listed: %s", name, exc)
        return out

    def ensure_default(self, progress: bool = True) -> IndexReport | None:
        """Index the bundled corpus into the default collection when it has no index yet."""
        name = self.settings.collection
        if current_generation(self.settings.collection_dir(name)) is not None:
            return None
        log.info("collection %r has no index yet: building it from %s", name, self.settings.corpus_dir)
        return self.index([self.settings.corpus_dir], name, progress=progress)

    def index(
        self,
        paths: Sequence[Path],
        collection: str | None = None,
        full: bool = False,
        progress: bool = False,
        follow_links: bool = False,
    ) -> IndexReport:
        return self.indexer.index_paths(
            collection or self.settings.collection, list(paths), full, progress, follow_links=follow_links
        )

    def starter_questions(self, collection: str | None = None) -> list[str]:
        """Configured starters (for the default collection), else the bundled corpus's
        ``.starters`` file when the collection was built from the bundled corpus."""
        name = collection or self.settings.collection
        if self.settings.starter_questions is not None and name == self.settings.collection:
            return self.settings.starter_questions
        starters = Path(self.settings.corpus_dir) / STARTERS
        try:
            sources = self.collection(name).manifest.get("sources", [])
        except CollectionNotFound:
            return []
        if starters.exists() and str(Path(self.settings.corpus_dir).resolve()) in sources:
            lines = starters.read_text(encoding="utf-8").splitlines()
            return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return []

    # ------------------------------------------------------------------ writes
    def upload_parser(self) -> ParserPool:
        """The worker process that parses uploads within QA_PARSE_TIMEOUT_S and QA_PARSE_MEMORY_MB."""
        with self._parser_lock:
            if self._parser is None:
                self._parser = ParserPool.from_settings(self.settings, workers=1)
            return self._parser

    def stop_parser(self) -> None:
        """Stop the upload parser's worker process (a later upload starts it again)."""
        with self._parser_lock:
            parser, self._parser = self._parser, None
        if parser is not None:
            parser.close()

    def _check_room(self, collection: str) -> str:
        """The collection's name, when it exists or one more may be created."""
        name = validate_collection_name(collection)
        existing = self.collection_names()
        if name not in existing and len(existing) >= self.settings.max_collections:
            raise TooManyCollections(
                f"collection {name!r} would be collection number {len(existing) + 1}, over the limit of "
                f"{self.settings.max_collections} (QA_MAX_COLLECTIONS)"
            )
        return name

    def add_file(self, collection: str, name: str, data: bytes) -> IndexReport:
        """Keep an uploaded file in the collection's uploads and index it (add or replace).

        Nothing is written unless the document is accepted: the file is saved just before
        the new generation goes live.
        """
        uploads = self.indexer.uploads_dir(self._check_room(collection))
        target, document_id = uploads_store.file_path(uploads, name)
        if target.suffix.lower() not in SUPPORTED_SUFFIXES - {".jsonl"}:
            raise Skip(document_id, f"unsupported file type {target.suffix or '(none)'!r}; send .txt, .md, .html or .pdf")
        try:
            document = self.upload_parser().parse_bytes(target, document_id, data)
        except Skip as skip:  # name the upload as the client did, not by the server's path
            raise Skip(document_id, skip.reason) from None
        document.source = f"{UPLOADS}/{document_id}"
        return self.indexer.upsert(
            collection, [document], before_switch=lambda: uploads_store.save(uploads, target, data, document_id)
        )

    def add_text(self, collection: str, document_id: str, title: str, text: str, source: str | None) -> IndexReport:
        """Add or replace a document given as text; it is kept as a one-line JSONL file."""
        uploads = self.indexer.uploads_dir(self._check_room(collection))
        uploads_store.check_document_id(document_id)
        target = uploads_store.record_path(uploads, document_id)
        line = uploads_store.record_line(document_id, title, text, source)
        documents = read_jsonl_bytes(Path(document_id), line)
        if not documents:
            raise Skip(document_id, "empty document (no title and no text)")
        return self.indexer.upsert(
            collection, documents, before_switch=lambda: uploads_store.save(uploads, target, line, document_id)
        )

    def delete_document(self, collection: str, document_id: str) -> IndexReport:
        """Remove a document from the index (and its file, when it was uploaded through the API)."""
        loaded = self.collection(collection)
        if loaded.document(document_id) is None:
            raise UnknownDocument(f"no document {document_id!r} in collection {loaded.name!r}")
        uploads = self.indexer.uploads_dir(loaded.name)
        return self.indexer.delete(
            loaded.name, [document_id], before_switch=lambda: uploads_store.remove(uploads, document_id)
        )

    def reindex(self, collection: str, full: bool = False) -> IndexReport:
        """Index the collection's folders again (new, changed and vanished files)."""
        loaded = self.collection(collection)
        sources = [Path(p) for p in loaded.manifest.get("sources", [])]
        follow = bool(loaded.manifest.get("source_options", {}).get("follow_links", False))
        return self.indexer.index_paths(loaded.name, sources, full=full, follow_links=follow)

    # ------------------------------------------------------------------ questions
    def retriever(self, collection: Collection, mode: Mode | None = None) -> Retriever:
        return Retriever(
            collection, self.embedder, mode or self.settings.retriever, self.fusion,
            self.reranker, self.settings.reranker_top_n,
        )

    def search(
        self,
        question: str,
        top_k: int | None = None,
        collection: str | None = None,
        history: Sequence[Turn] = (),
        with_answer: bool = False,
        mode: Mode | None = None,
    ) -> Reply:
        """Rank passages for ``question`` (a follow-up when ``history`` is given)."""
        started = time.perf_counter()
        loaded = self.collection(collection)
        query = build_query(question, history, self.embedder)
        encoded = time.perf_counter()
        hits = self.retriever(loaded, mode).search(query, top_k or self.settings.top_k)
        searched = time.perf_counter()
        reply = build_reply(query, hits, loaded, self.embedder, self.answer_params, with_answer)
        done = time.perf_counter()
        reply.timings_ms = {
            "embed": round((encoded - started) * 1000, 2),
            "search": round((searched - encoded) * 1000, 2),
            "answer": round((done - searched) * 1000, 2),
            "total": round((done - started) * 1000, 2),
        }
        return reply

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        collection: str | None = None,
    ) -> Reply:
        """Passages with citations and the sentence that answers, or no answer."""
        return self.search(question, top_k, collection, history, with_answer=True)
