"""The library's front door: load collections once, search, answer. CLI, API and evaluation call this."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from qa.answer import AnswerParams, Reply, build_reply
from qa.chat import Turn, build_query
from qa.config import Settings, validate_collection_name
from qa.embedder import Embedder
from qa.indexer import Indexer, IndexReport
from qa.retriever import FusionParams, Mode, Retriever
from qa.store import Collection, CollectionNotFound, current_generation, list_collections

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


class QAService:
    """Holds the model and the loaded collections; answers questions."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(
            settings.model, settings.batch_size, settings.threads, settings.query_backend,
            cache_dir=settings.index_dir / ".models",
        )
        self.indexer = Indexer(settings, self.embedder)
        self.fusion = FusionParams()
        self.answer_params = AnswerParams()
        self._collections: dict[str, Collection] = {}
        self._lock = threading.Lock()

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
            return loaded
        with self._lock:
            loaded = self._collections.get(name)
            if loaded is not None and live == loaded.generation:
                return loaded
            if live is None:
                raise UnknownCollection(name, self.collection_names())
            fresh = Collection.load(directory, expect_model=self.embedder.identity.to_dict())
            self._collections[name] = fresh
            log.debug("loaded collection %r generation %s", name, fresh.generation)
            return fresh

    def ensure_default(self, progress: bool = True) -> IndexReport | None:
        """Index the bundled corpus into the default collection when it has no index yet."""
        name = self.settings.collection
        if current_generation(self.settings.collection_dir(name)) is not None:
            return None
        log.info("collection %r has no index yet: building it from %s", name, self.settings.corpus_dir)
        return self.index([self.settings.corpus_dir], name, progress=progress)

    def index(
        self, paths: Sequence[Path], collection: str | None = None, full: bool = False, progress: bool = False
    ) -> IndexReport:
        return self.indexer.index_paths(collection or self.settings.collection, list(paths), full, progress)

    def starter_questions(self) -> list[str]:
        """Configured starters, else the bundled corpus's ``starters.txt`` when it is what is served."""
        if self.settings.starter_questions is not None:
            return self.settings.starter_questions
        starters = Path(self.settings.corpus_dir) / STARTERS
        try:
            sources = self.collection().manifest.get("sources", [])
        except CollectionNotFound:
            return []
        if starters.exists() and str(Path(self.settings.corpus_dir).resolve()) in sources:
            lines = starters.read_text(encoding="utf-8").splitlines()
            return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return []

    # ------------------------------------------------------------------ questions
    def retriever(self, collection: Collection, mode: Mode | None = None) -> Retriever:
        return Retriever(collection, self.embedder, mode or self.settings.retriever, self.fusion)

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
