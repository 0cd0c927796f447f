"""The library's front door: load collections once, search, answer. CLI, API and evaluation call this."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from qa.config import Settings, validate_collection_name
from qa.encoding import CrossEncoderReranker, Embedder
from qa.errors import (
    CollectionNotFound,
    StoreError,
    TooManyCollections,
    UnknownCollection,
    UnknownDocument,
    UnknownPassage,
    UnreadableDocument,
)
from qa.feedback.desk import FeedbackDesk
from qa.ingest.documents import SUPPORTED_SUFFIXES, unreadable
from qa.ingest.parsing import ParserPool
from qa.ingest.readers import read_jsonl_bytes
from qa.search import (
    AnswerParams,
    CollectionParams,
    FusionParams,
    Mode,
    Reply,
    Retriever,
    SearchParams,
    Turn,
    build_query,
    build_reply,
    link_citations,
)
from qa.search.replies import ReplyCache
from qa.search.scope import Scope, no_match_notice, within
from qa.store import (
    UPLOADS,
    Collection,
    DocumentRow,
    Indexer,
    IndexReport,
    Manifest,
    PassageRow,
    current_generation,
    list_collections,
    read_manifest,
)
from qa.store import uploads as uploads_store
from qa.store.background import BackgroundMerger
from qa.store.manifest import SourceOptions
from qa.store.site_schedule import SiteSync, site_source
from qa.store.watch import FolderWatching

log = logging.getLogger("qa.service")

STARTERS = ".starters"  # one starter question per line, beside the bundled documents


class QAService(FolderWatching, SiteSync):
    """Holds the model and the loaded collections; answers questions."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(
            settings.model,
            settings.batch_size,
            settings.threads,
            settings.query_backend,
            cache_dir=settings.index_dir / ".models",
            passage_backend=settings.passage_backend,
        )
        self.indexer = Indexer(settings, self.embedder)
        # the configured search settings; a collection's tuning.json overrides them for it
        self.params = CollectionParams(settings)
        self.fusion: FusionParams = self.params.default.fusion
        self.answer_params: AnswerParams = self.params.default.answer
        self.reranker = CrossEncoderReranker(settings.reranker) if settings.reranker else None
        self.replies = ReplyCache(settings.reply_cache)
        self._collections: OrderedDict[str, Collection] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self._parser: ParserPool | None = None  # started on the first upload
        self._parser_lock = threading.Lock()
        self.feedback = FeedbackDesk(settings, self.embedder, self.collection)
        self.merger: BackgroundMerger | None = None  # qa serve starts it

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
            with contextlib.suppress(KeyError):  # unloaded meanwhile by another thread
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
                    model, memory = self.embedder.identity.to_dict(), self.settings.dense_memory
                    fresh = Collection.load(directory, expect_model=model, dense_memory=memory)
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
                evicted, _ = self._collections.popitem(last=False)  # closed by its last reader
                log.debug("unloaded collection %r (QA_MAX_LOADED_COLLECTIONS)", evicted)
            log.debug("loaded collection %r generation %s", name, fresh.generation)
            return fresh

    def manifests(self) -> dict[str, Manifest]:
        """The live manifest of every collection, read from disk without loading any index."""
        out = {}
        for name in self.collection_names():
            try:
                out[name] = read_manifest(self.settings.collection_dir(name))
            except StoreError as exc:
                log.warning("collection %s not listed: %s", name, exc)
        return out

    def manifest(self, collection: str | None = None) -> Manifest:
        """The live manifest of a collection, loaded (so a broken index is reported)."""
        return self.collection(collection).manifest

    @property
    def is_warm(self) -> bool:
        """The model has answered once, so the next question is fast."""
        return self.embedder.is_warm

    def passage(
        self, passage_id: int, collection: str | None = None, before: int = 1, after: int = 1
    ) -> tuple[PassageRow, list[PassageRow]]:
        """A passage, and the run of its document's passages from ``before`` ahead of it to
        ``after`` past it (itself included)."""
        loaded = self.collection(collection)
        row = loaded.passage(passage_id)
        if row is None:
            raise UnknownPassage(f"no passage {passage_id} in collection {loaded.name!r}")
        return row, loaded.neighbours(row, before, after)

    def document(
        self, document_id: str, collection: str | None = None
    ) -> tuple[DocumentRow, list[PassageRow]]:
        """A whole document and its passages."""
        loaded = self.collection(collection)
        row = loaded.document(document_id)
        if row is None:
            raise UnknownDocument(f"no document {document_id!r} in collection {loaded.name!r}")
        return row, loaded.passages_of([row.id])

    def document_at(
        self, document_id: str, passage_id: int | None, collection: str | None = None
    ) -> tuple[DocumentRow, PassageRow | None]:
        """A document and, when it has it, the passage ``passage_id`` (both from one
        generation): what the document page shows."""
        loaded = self.collection(collection)
        row = loaded.document(document_id)
        if row is None:
            raise UnknownDocument(f"no document {document_id!r} in collection {loaded.name!r}")
        passage = loaded.passage(passage_id) if passage_id is not None else None
        return row, passage if passage is not None and passage.document_id == row.id else None

    def ensure_default(self, progress: bool = True) -> IndexReport | None:
        """Index the bundled corpus into the default collection when it has no index yet."""
        name = self.settings.collection
        if current_generation(self.settings.collection_dir(name)) is not None:
            return None
        log.info(
            "collection %r has no index yet: building it from %s", name, self.settings.corpus_dir
        )
        return self.index([self.settings.corpus_dir], name, progress=progress)

    def index(
        self,
        paths: Sequence[Path],
        collection: str | None = None,
        full: bool = False,
        progress: bool = False,
        follow_links: bool = False,
        engine: str = "local",
        options: SourceOptions | None = None,  # which files go in; wins over follow_links
    ) -> IndexReport:
        return self._written(
            self.indexer.for_engine(engine).index_paths(
                collection or self.settings.collection,
                list(paths),
                full,
                progress,
                follow_links=follow_links,
                options=options,
            )
        )

    def starter_questions(self, collection: str | None = None) -> list[str]:
        """Configured starters (for the default collection), else the bundled corpus's
        ``.starters`` file when the collection was built from the bundled corpus."""
        name = collection or self.settings.collection
        if self.settings.starter_questions is not None and name == self.settings.collection:
            return self.settings.starter_questions
        starters = Path(self.settings.corpus_dir) / STARTERS
        try:
            sources = self.collection(name).manifest.sources
        except (UnknownCollection, CollectionNotFound):
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
            raise UnreadableDocument(
                f"{document_id}: unsupported file type {target.suffix or '(none)'!r}; "
                "send .txt, .md, .html or .pdf"
            )
        with unreadable(document_id):  # named as the client did, not by the server's path
            document = self.upload_parser().parse_bytes(target, document_id, data)
        document.source = f"{UPLOADS}/{document_id}"
        with unreadable():
            return self._written(
                self.indexer.upsert(
                    collection,
                    [document],
                    before_switch=lambda: uploads_store.save(uploads, target, data, document_id),
                )
            )

    def add_text(
        self,
        collection: str,
        document_id: str,
        title: str,
        text: str,
        source: str | None,
        meta: dict[str, list[str]] | None = None,  # its ``groups`` and ``tags``
    ) -> IndexReport:
        """Add or replace a document given as text; it is kept as a one-line JSONL file."""
        uploads = self.indexer.uploads_dir(self._check_room(collection))
        uploads_store.check_document_id(document_id)
        target = uploads_store.record_path(uploads, document_id)
        line = uploads_store.record_line(document_id, title, text, source, meta)
        with unreadable():
            documents = read_jsonl_bytes(Path(document_id), line)
            if not documents:
                raise UnreadableDocument(f"{document_id}: empty document (no title and no text)")
            return self._written(
                self.indexer.upsert(
                    collection,
                    documents,
                    before_switch=lambda: uploads_store.save(uploads, target, line, document_id),
                )
            )

    def delete_document(self, collection: str, document_id: str) -> IndexReport:
        """Remove a document from the index (and its file, when it was uploaded through the API)."""
        loaded = self.collection(collection)
        if loaded.document(document_id) is None:
            raise UnknownDocument(f"no document {document_id!r} in collection {loaded.name!r}")
        uploads = self.indexer.uploads_dir(loaded.name)
        return self._written(
            self.indexer.delete(
                loaded.name,
                [document_id],
                before_switch=lambda: uploads_store.remove(uploads, document_id),
            )
        )

    def reindex(self, collection: str, full: bool = False) -> IndexReport:
        """Index the collection's folders again (new, changed and vanished files), or re-sync
        the website it was built from."""
        loaded = self.collection(collection)
        if site_source(self.settings.collection_dir(loaded.name)) is not None:
            return self.sync_site(None, loaded.name, full)  # built from a website: re-sync it
        sources = [Path(p) for p in loaded.manifest.sources]
        options = loaded.manifest.source_options  # the same files chosen as the last time
        return self._written(
            self.indexer.index_paths(loaded.name, sources, full=full, options=options)
        )

    # ------------------------------------------------------------------ questions
    def retriever(
        self, collection: Collection, mode: Mode | None = None, fusion: FusionParams | None = None
    ) -> Retriever:
        return Retriever(
            collection,
            self.embedder,
            mode or self.settings.retriever,
            fusion or self.params.of(collection.name).fusion,
            self.reranker,
            self.settings.reranker_top_n,
        )

    def search(
        self,
        question: str,
        collection: str | Collection | None = None,
        top_k: int | None = None,
        history: Sequence[Turn] = (),
        *,
        with_answer: bool = False,
        mode: Mode | None = None,
        params: SearchParams | None = None,
        scope: Scope | None = None,
    ) -> Reply:
        """Rank passages for ``question`` (a follow-up with ``history``) that ``scope`` allows, in
        a collection (by name, or a generation not yet live: the indexing gate)."""
        started = time.perf_counter()
        loaded = collection if isinstance(collection, Collection) else self.collection(collection)
        k = top_k or self.settings.top_k
        key = None
        if params is None and loaded is not collection:  # not the gate's or tuning's own
            params = self.params.of(loaded.name)
            key = (loaded.name, loaded.generation, question, tuple(history), k, mode)
            key += (with_answer, scope, repr(params))
            if (cached := self.replies.get(key, started)) is not None:
                return cached
        params = params or self.params.of(loaded.name)
        query = build_query(question, history, self.embedder)
        encoded = time.perf_counter()
        retriever = self.retriever(loaded, mode, params.fusion)
        hits = within(retriever, scope, query, k)
        searched = time.perf_counter()
        allowed = retriever.allowed
        reply = build_reply(query, hits, loaded, self.embedder, params.answer, with_answer, allowed)
        link_citations(reply, loaded.name, self.settings.public_url or "")
        reply.notice = no_match_notice(retriever, scope) or reply.notice
        done = time.perf_counter()
        marks = {"embed": (started, encoded), "search": (encoded, searched)}
        marks |= {"answer": (searched, done), "total": (started, done)}
        reply.timings_ms = {name: round((b - a) * 1000, 2) for name, (a, b) in marks.items()}
        self.replies.put(key, reply)
        return reply

    def ask(
        self,
        question: str,
        collection: str | None = None,
        top_k: int | None = None,
        history: Sequence[Turn] = (),
        scope: Scope | None = None,
    ) -> Reply:
        """Passages with citations and the sentence that answers, or no answer."""
        return self.search(question, collection, top_k, history, with_answer=True, scope=scope)
