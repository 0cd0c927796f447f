"""The offline pipeline: documents -> passages -> vectors -> a new store generation.

Updates are incremental: documents whose content hash is unchanged keep their passages,
passage ids and vectors; only new and changed documents are split and embedded (and even
then a passage whose embedded text was seen before reuses its vector). Every update is
written as a new generation and switched in atomically.

One run: plan the change (:mod:`qa.store.changes`) -> split new documents -> vectors reused
or embedded -> assemble rows (:mod:`qa.store.pipeline`) -> write (:mod:`qa.store.writer`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from qa.config import Settings
from qa.encoding import Embedder
from qa.errors import CollectionNotFound, NothingToIndex, StoreError
from qa.ingest.corpus import drop_duplicates, strip_shared_title_suffix
from qa.ingest.discovery import discover
from qa.ingest.documents import Document, Skip
from qa.ingest.layout import repeated_paragraphs
from qa.ingest.parsing import ParserPool
from qa.store.changes import Plan, Update, plan_update
from qa.store.collection import Collection
from qa.store.layout import (
    UPLOADS,
    clean_leftovers,
    current_generation,
    remove_uncommitted,
    upload_roots,
    writer_lock,
)
from qa.store.manifest import BuildInfo, ModelInfo, PassageSettings, SourceOptions, read_manifest
from qa.store.pipeline import (
    NewPassage,
    PassageVectors,
    assemble,
    passage_vectors,
    split_documents,
)
from qa.store.progress import progress
from qa.store.sql import DocumentRow
from qa.store.writer import Commit, GenerationData, Hook, write_generation

log = logging.getLogger("qa.store.indexer")

# bump when the splitter's output changes: every document is split again (3: labels join
# the paragraph after them, closing notes the one before; context labels; corpus furniture)
SPLITTER_VERSION = 3


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
        """Whether the run had anything to write."""
        return bool(self.added or self.updated or self.removed or self.relocated)

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.documents} documents, {self.passages} passages "
            f"({self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged; {self.embedded} passages embedded), "
            f"{len(self.skipped)} skipped"
        )

    def to_dict(self) -> dict[str, object]:
        """The report as JSON (``qa index --json``, the write API)."""
        out: dict[str, object] = {k: v for k, v in vars(self).items() if k != "skipped"}
        out["skipped"] = [{"source": s.source, "reason": s.reason} for s in self.skipped]
        return out


class Indexer:
    """Builds and updates collections under ``settings.index_dir``."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder

    def split_settings(self, repeated: Iterable[str] = ()) -> PassageSettings:
        """How documents are split into passages (a change re-splits every document)."""
        return PassageSettings(
            max_tokens=self.settings.max_passage_tokens or self.embedder.max_tokens,
            min_chars=self.settings.min_passage_chars,
            title_in_embedding=self.settings.title_in_embedding,
            splitter_version=SPLITTER_VERSION,
            repeated=sorted(repeated),
        )

    def passage_settings(self) -> dict[str, int | bool]:
        """The configured splitting (reports and cache keys use it); the corpus-dependent
        ``repeated`` list, which only a build finds, is left out."""
        return self.split_settings().model_dump(exclude={"repeated"})

    def uploads_dir(self, collection: str) -> Path:
        """Where documents added through the write API are kept as files."""
        return self.settings.collection_dir(collection) / UPLOADS

    def index_paths(
        self,
        collection: str,
        paths: Iterable[Path],
        full: bool = False,
        progress: bool = False,
        hook: Hook | None = None,
        follow_links: bool = False,
        before_switch: Commit | None = None,
    ) -> IndexReport:
        """Make the collection mirror ``paths``: add new, re-embed changed, drop vanished
        documents. Symbolic links out of a folder are not followed unless ``follow_links``;
        ``before_switch`` as in :meth:`upsert` (the indexing gate)."""
        started = time.perf_counter()
        roots = [Path(p).expanduser().resolve() for p in paths]
        uploads = [u for u in upload_roots(self.uploads_dir(collection)) if u not in roots]
        documents, skipped = self._read(roots + uploads, follow_links, progress)
        documents, copies = drop_duplicates(documents)
        strip_shared_title_suffix(documents)
        update = Update(
            documents,
            repeated=repeated_paragraphs(documents),
            remove_missing=True,
            full=full,
            progress=progress,
            hook=hook,
            sources=[str(r) for r in roots],
            source_options=SourceOptions(follow_links=follow_links),
            before_switch=before_switch,
        )
        report = self._run(collection, update)
        report.skipped = skipped + copies + report.skipped
        report.seconds["total"] = time.perf_counter() - started
        return report

    def upsert(
        self,
        collection: str,
        documents: list[Document],
        hook: Hook | None = None,
        before_switch: Commit | None = None,
    ) -> IndexReport:
        """Add or replace documents, keeping everything else.

        ``before_switch()`` runs with the writer lock held once the new generation is
        written and only then (e.g. to keep an uploaded file only when it was accepted).
        """
        update = Update(documents, remove_missing=False, hook=hook, before_switch=before_switch)
        return self._run(collection, update)

    def delete(
        self,
        collection: str,
        document_ids: list[str],
        hook: Hook | None = None,
        before_switch: Commit | None = None,
    ) -> IndexReport:
        """Remove documents (and all their passages) from the collection."""
        update = Update(
            [],
            remove_missing=False,
            delete=frozenset(document_ids),
            hook=hook,
            before_switch=before_switch,
        )
        return self._run(collection, update)

    def _read(
        self, paths: list[Path], follow_links: bool, show: bool
    ) -> tuple[list[Document], list[Skip]]:
        """The documents under ``paths``, and the files skipped (each logged as it happens)."""
        documents: list[Document] = []
        skipped: list[Skip] = []
        max_bytes = int(self.settings.max_file_mb * 2**20)
        # each file within its time and memory budget
        with ParserPool.from_settings(self.settings) as parser:
            found = discover(paths, max_bytes, follow_links, parser)
            for item in progress(found, show, "Reading", "file"):
                if isinstance(item, Skip):
                    log.warning("%s", item)
                    skipped.append(item)
                else:
                    documents.append(item)
        return documents, skipped

    def _open_previous(
        self, directory: Path, update: Update, report: IndexReport
    ) -> Collection | None:
        """The live generation to build on (``None``, and a full rebuild, when there is none).

        Also settles how this run splits (``update.split``): the corpus' repeated paragraphs
        are the ones just found, or, for an update of a few documents, the previous ones.
        """
        update.split = self.split_settings(update.repeated or ())
        if update.full:
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
        if update.repeated is None:
            update.split = self.split_settings(previous.manifest.passage_settings.repeated)
        same_model = previous.manifest.model.fingerprint == self.embedder.identity.fingerprint
        same_split = previous.manifest.passage_settings == update.split
        if not (same_model and same_split):
            log.info(
                "model or passage settings changed since the last build: re-splitting everything"
            )
            report.full_rebuild = True
        return previous

    def _run(self, collection: str, update: Update) -> IndexReport:
        """Apply ``update`` under the collection's writer lock."""
        directory = self.settings.collection_dir(collection)
        report = IndexReport(collection=collection)
        timer = time.perf_counter()
        with writer_lock(directory):
            for leftover in clean_leftovers(directory):
                log.info("removed leftover %s", leftover)
            previous = self._open_previous(directory, update, report)
            try:
                return self._apply(collection, previous, update, report, timer)
            except BaseException:
                if current_generation(directory) is None:
                    remove_uncommitted(directory)  # a failed first write leaves no empty collection
                raise
            finally:
                if previous is not None:
                    previous.close()

    def _apply(
        self,
        collection: str,
        previous: Collection | None,
        update: Update,
        report: IndexReport,
        timer: float,
    ) -> IndexReport:
        """Plan, split, embed, assemble and write one update (the writer lock is held)."""

        def step(stage: str) -> None:
            log.debug("stage %s", stage)
            if update.hook:
                update.hook(stage)

        plan = plan_update(previous, update, report)
        if previous is not None and not report.changed and not report.full_rebuild:
            return self._up_to_date(collection, previous, update, report, timer)
        if not plan.kept and not plan.to_split:
            raise NothingToIndex(
                f"nothing to index in collection {collection!r}: no documents left"
            )
        step("split")
        documents, pieces = self._split(plan, update, report)
        if not plan.kept and not pieces:  # every document came out empty (bm25s can't index none)
            raise NothingToIndex(
                f"nothing to index in collection {collection!r}: no document has any text left"
            )
        report.seconds["split"] = time.perf_counter() - timer
        started = time.perf_counter()
        vectors = passage_vectors(self.embedder, previous, pieces, update.progress, step)
        report.embedded, report.reused_vectors = vectors.embedded, vectors.reused
        report.seconds["embed"] = time.perf_counter() - started
        started = time.perf_counter()
        data = self._assemble(collection, previous, plan, documents, pieces, vectors, update)
        report.seconds["assemble"] = time.perf_counter() - started
        started = time.perf_counter()
        directory = self.settings.collection_dir(collection)
        report.generation = write_generation(directory, data, step, update.before_switch)
        report.seconds["write"] = time.perf_counter() - started
        report.documents = len(data.documents)
        report.passages = len(data.passages)
        log.debug(
            "collection %r: generation %s live; %s", collection, report.generation, report.summary()
        )
        return report

    def _up_to_date(
        self,
        collection: str,
        previous: Collection,
        update: Update,
        report: IndexReport,
        timer: float,
    ) -> IndexReport:
        """Nothing changed: the live generation stays, and nothing is written."""
        report.generation = previous.generation
        report.documents = previous.manifest.counts.documents
        report.passages = previous.manifest.counts.passages
        report.seconds["prepare"] = time.perf_counter() - timer
        log.info("collection %r is up to date", collection)
        if update.before_switch is not None:
            update.before_switch()
        return report

    def _split(
        self, plan: Plan, update: Update, report: IndexReport
    ) -> tuple[list[DocumentRow], list[NewPassage]]:
        """The rows and passages of the new and changed documents."""
        show = update.progress and len(plan.to_split) > 200
        documents = progress(plan.to_split, show, "Splitting", "doc")
        assert update.split is not None
        rows, pieces, empty = split_documents(documents, self.embedder, update.split)
        for document in empty:
            reason = "no text to index after removing page furniture"
            report.skipped.append(Skip(document.source, reason))
            report.added -= document.id not in plan.old_hashes
            report.updated -= document.id in plan.old_hashes
        if not update.remove_missing and report.skipped:
            raise report.skipped[
                -1
            ]  # a write of given documents is refused whole when one has no text
        return rows, pieces

    def _assemble(
        self,
        collection: str,
        previous: Collection | None,
        plan: Plan,
        documents: list[DocumentRow],
        pieces: list[NewPassage],
        vectors: PassageVectors,
        update: Update,
    ) -> GenerationData:
        """The new generation: the kept documents' rows first, then the new ones."""
        # ids only ever grow, also across --full rebuilds, so an old citation never names another passage
        if previous is not None:
            first_id = previous.manifest.next_passage_id
        else:
            first_id = _live_next_id(self.settings.collection_dir(collection))
        build = self._build_info(collection, previous, update, first_id + len(pieces))
        return assemble(previous, plan, documents, pieces, vectors, first_id, build)

    def _build_info(
        self, collection: str, previous: Collection | None, update: Update, next_id: int
    ) -> BuildInfo:
        """What the manifest records about this build; folders and options are kept from the
        previous generation unless the update gives them."""
        before = previous.manifest if previous is not None else None
        sources = update.sources
        if sources is None:
            sources = list(before.sources) if before is not None else []
        options = update.source_options
        if options is None:
            options = before.source_options if before is not None else SourceOptions()
        return BuildInfo(
            collection=collection,
            model=ModelInfo.model_validate(self.embedder.identity, from_attributes=True),
            passage_settings=update.split or self.split_settings(),
            next_passage_id=next_id,
            sources=sources,
            source_options=options,
        )


def _live_next_id(directory: Path) -> int:
    """``next_passage_id`` of the live generation (0 when there is none or it is unreadable)."""
    try:
        return read_manifest(directory).next_passage_id
    except StoreError:
        return 0
