"""The offline pipeline: documents -> passages -> vectors -> new segments -> a new generation.

Updates are incremental: documents whose content hash is unchanged stay in their segments
with their passage ids and vectors; only new and changed documents are split, embedded and
written to a new segment (and even then a passage whose embedded text was seen before
reuses its vector); replaced and removed documents are hidden by the generation's deletion
list. Every update is committed as a new generation and switched in atomically.

One run: documents stream in (:mod:`qa.store.changes` judges each) -> split, embed and write
in batches (:mod:`qa.store.build`) -> commit (:mod:`qa.store.writer`) -> merge by policy
(:mod:`qa.store.merge`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from qa.config import Settings
from qa.encoding import Embedder
from qa.errors import CollectionNotFound, NothingToIndex, StoreError
from qa.ingest.corpus import prepare_corpus
from qa.ingest.discovery import discover
from qa.ingest.documents import Document, Skip
from qa.ingest.parsing import ParserPool
from qa.ingest.selection import Selection
from qa.store.build import SegmentBuild
from qa.store.changes import Plan, Update, as_document, build_info, live_next_id, old_hashes
from qa.store.collection import Collection
from qa.store.dense import DenseParams
from qa.store.layout import (
    UPLOADS,
    current_generation,
    remove_uncommitted,
    upload_roots,
    writer_lock,
)
from qa.store.manifest import ModelInfo, PassageSettings, SegmentRef, SourceOptions
from qa.store.merge import hide
from qa.store.pipeline import VECTORS_VERSION
from qa.store.progress import bar, progress
from qa.store.report import IndexReport
from qa.store.segment import SegmentInfo
from qa.store.status import record_run
from qa.store.writer import Commit, Hook, clean_up, commit_generation, segment_ref

log = logging.getLogger("qa.store.indexer")

# bump when the splitter's output changes: every document is split again (3: fragments join
# both ways, headings as context, corpus furniture)
SPLITTER_VERSION = 4


class Indexer:
    """Builds and updates collections under ``settings.index_dir``."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        parser: Callable[[], AbstractContextManager[ParserPool]] | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        # parses files (the Ray engine passes one that parses and embeds on a cluster)
        self.parser = parser or (lambda: ParserPool.from_settings(settings))
        # copies, site names and repeated paragraphs need every document's text first: done
        # locally; a cluster build streams documents to the segments without them
        self.corpus_rules = parser is None

    def split_settings(self, repeated: Iterable[str] = ()) -> PassageSettings:
        """How documents are split into passages (a change re-splits every document)."""
        return PassageSettings(
            max_tokens=self.settings.max_passage_tokens or self.embedder.max_tokens,
            min_chars=self.settings.min_passage_chars,
            title_in_embedding=self.settings.title_in_embedding,
            splitter_version=SPLITTER_VERSION,
            vectors_version=VECTORS_VERSION,
            own_sentence_vectors=self.settings.own_sentence_vectors,
            repeated=sorted(repeated),
        )

    def passage_settings(self) -> dict[str, int | bool]:
        """The configured splitting (reports, cache keys); without the corpus' ``repeated``."""
        return self.split_settings().model_dump(exclude={"repeated"})

    def uploads_dir(self, collection: str) -> Path:
        """Where documents added through the write API are kept as files."""
        return self.settings.collection_dir(collection) / UPLOADS

    def dense_params(self) -> DenseParams:
        """How new segments' dense indexes are chosen (``QA_DENSE_INDEX``)."""
        return DenseParams(
            choice=self.settings.dense_index, flat_below=self.settings.dense_flat_below
        )

    def for_engine(self, engine: str) -> Indexer:
        """This indexer (``local``), or one that parses and embeds with Ray Data (``ray``)."""
        if engine != "ray":
            return self
        from qa.store.ray_engine import ray_indexer  # Ray is an optional extra

        return ray_indexer(self.settings, self.embedder)

    def index_paths(
        self,
        collection: str,
        paths: Iterable[Path],
        full: bool = False,
        progress: bool = False,
        hook: Hook | None = None,
        follow_links: bool = False,
        before_switch: Commit | None = None,
        options: SourceOptions | None = None,
    ) -> IndexReport:
        """Make the collection mirror ``paths``: add new, re-embed changed, drop vanished
        documents. Symbolic links out of a folder are not followed unless ``follow_links``,
        files are chosen by ``options`` (which then give ``follow_links``) and ``.qaignore``;
        ``before_switch`` as in :meth:`upsert` (the indexing gate)."""
        started = time.perf_counter()
        options = options or SourceOptions(follow_links=follow_links)
        roots = [Path(p).expanduser().resolve() for p in paths]
        uploads = [u for u in upload_roots(self.uploads_dir(collection)) if u not in roots]
        skipped: list[Skip] = []
        read = self._read(roots + uploads, options, progress, skipped)
        documents, repeated = read, None
        if self.corpus_rules:  # holds the documents' texts (not their vectors) until split
            documents, copies, repeated = prepare_corpus(read)
            skipped += copies
        update = Update(
            documents,
            repeated=repeated,
            before_switch=before_switch,
            remove_missing=True,
            full=full,
            progress=progress,
            hook=hook,
            skipped=skipped,
            sources=[str(r) for r in roots],
            source_options=options,
        )
        report = self._run(collection, update)
        report.skipped = skipped + report.skipped
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
        self, paths: list[Path], options: SourceOptions, show: bool, skipped: list[Skip]
    ) -> Iterator[Document]:
        """The documents under ``paths``, as they are parsed; the files skipped go to
        ``skipped`` (each logged as it happens)."""
        max_bytes = int(self.settings.max_file_mb * 2**20)
        chosen = Selection.of(options.include, options.exclude)
        # each file within its time and memory budget
        with self.parser() as parser:
            found = discover(paths, max_bytes, options.follow_links, parser, chosen)
            for item in progress(found, show, "Reading", "file"):
                if isinstance(item, Skip):
                    log.warning("%s", item)
                    skipped.append(item)
                else:
                    yield item

    def _open_previous(
        self, directory: Path, update: Update, report: IndexReport
    ) -> Collection | None:
        """The live generation to build on (``None``, and a full rebuild, when there is none);
        settles ``update.split`` (a partial update keeps the previous repeated paragraphs)."""
        update.split = self.split_settings(update.repeated or ())
        previous = None if update.full else self._try_load(directory)
        if previous is None:
            report.full_rebuild = True
            return None
        if update.repeated is None:
            update.split = self.split_settings(previous.manifest.passage_settings.repeated)
        same_model = previous.manifest.model.fingerprint == self.embedder.identity.fingerprint
        same_split = previous.manifest.passage_settings == update.split
        if not (same_model and same_split):
            log.warning("model or passage/vector settings changed: splitting and embedding again")
            report.full_rebuild = True
        return previous

    def _try_load(self, directory: Path) -> Collection | None:
        """The live generation, or ``None`` (a damaged one is rebuilt from scratch)."""
        try:
            return Collection.load(directory, locked=True)
        except CollectionNotFound:
            return None
        except StoreError as exc:
            log.warning("rebuilding from scratch: %s", exc)
            return None

    def _run(self, collection: str, update: Update) -> IndexReport:
        """Apply ``update`` under the collection's writer lock."""
        directory = self.settings.collection_dir(collection)
        report = IndexReport(collection=collection)
        timer = time.perf_counter()
        with writer_lock(directory):
            for leftover in clean_up(directory):
                log.info("removed leftover %s", leftover)
            previous = self._open_previous(directory, update, report)
            try:
                report = self._apply(collection, previous, update, report, timer)
                record_run(directory, update, report)  # every file's state, as one switch saw it
                return report
            except BaseException:
                if current_generation(directory) is None:
                    remove_uncommitted(directory)  # a failed first write leaves no empty collection
                raise
            finally:
                if previous is not None:
                    previous.close()

    apply = _run  # an update built elsewhere (a website's sync, qa/store/sites.py)

    def _apply(
        self,
        collection: str,
        previous: Collection | None,
        update: Update,
        report: IndexReport,
        timer: float,
    ) -> IndexReport:
        """Judge, split, embed and write one update, then commit it (the writer lock is held)."""

        def step(stage: str) -> None:
            log.debug("stage %s", stage)
            if update.hook:
                update.hook(stage)

        directory = self.settings.collection_dir(collection)
        reuse = previous is not None and not report.full_rebuild
        plan = Plan(previous, reuse, old_hashes(previous, update))
        update.plan = plan
        # ids only ever grow, also across --full rebuilds, so an old citation never names another passage
        first_id = (
            previous.manifest.next_passage_id if previous is not None else live_next_id(directory)
        )
        meter = bar(update.progress, None, "Embedding", "passage")
        build = SegmentBuild(
            directory,
            self.embedder,
            previous,
            update.split or self.split_settings(),
            self.dense_params(),
            first_id,
            step,
            self.settings.segment_passages,
            advance=meter.update,
        )
        try:
            self._stream(plan, update, build, report)
            if previous is not None and not report.changed and not report.full_rebuild:
                return self._up_to_date(collection, previous, update, report, timer)
            report.seconds["split_embed"] = time.perf_counter() - timer
            started = time.perf_counter()
            segments = build.finish()
            meter.close()
            self._refuse_empty(collection, plan, build, update, report)
            report.generation, report.passages = self._commit(
                collection, plan, build, segments, update, step
            )
        except BaseException:
            meter.close()
            build.abort()
            raise
        report.seconds["write"] = time.perf_counter() - started
        report.embedded, report.reused_vectors = build.counts.embedded, build.counts.reused
        log.debug(
            "collection %r: generation %s live; %s", collection, report.generation, report.summary()
        )
        return report

    def _stream(self, plan: Plan, update: Update, build: SegmentBuild, report: IndexReport) -> None:
        """Judge each document as it arrives; new and changed ones go to ``build``."""
        for document in update.documents:
            verdict, moved = plan.judge(document)
            if verdict == "unchanged":
                report.unchanged += 1
            elif verdict == "moved" and moved is not None:
                report.unchanged += 1
                report.relocated += 1
                build.relocate(moved)
            else:
                report.added += verdict == "new"
                report.updated += verdict == "changed"
                build.add(document)
        report.removed = len(plan.removed(update))
        if report.full_rebuild and plan.previous is not None and not update.remove_missing:
            # settings changed under a partial update: keep the other documents by re-splitting them
            others = sorted(set(plan.old_hashes) - plan.hidden - plan.seen)
            for row in plan.previous.iter_documents(others):
                build.add(as_document(row))

    def _refuse_empty(
        self, collection: str, plan: Plan, build: SegmentBuild, update: Update, report: IndexReport
    ) -> None:
        """Documents with no text are skipped (a write of given ones is refused whole)."""
        for document in build.counts.empty:
            reason = "no text to index after removing page furniture"
            report.skipped.append(Skip(document.source, reason))
            report.added -= document.id not in plan.old_hashes
            report.updated -= document.id in plan.old_hashes
        if not update.remove_missing and build.counts.empty:
            raise report.skipped[-1]
        kept = len(plan.old_hashes) - len(plan.hidden) if plan.reuse else 0
        report.documents = kept + build.counts.documents
        if report.documents <= 0:
            detail = "no document has any text left" if build.counts.empty else "no documents left"
            raise NothingToIndex(f"nothing to index in collection {collection!r}: {detail}")

    def _commit(
        self,
        collection: str,
        plan: Plan,
        build: SegmentBuild,
        segments: list[SegmentInfo],
        update: Update,
        step: Hook,
    ) -> tuple[str, int]:
        """Commit the new generation: the previous segments (their replaced and removed
        documents hidden) and the new ones; its name and live passages."""
        directory = self.settings.collection_dir(collection)
        refs: list[SegmentRef] = []
        deletions: dict[str, list[str]] = {}
        kept = 0
        if plan.reuse and plan.previous is not None:
            refs, deletions = hide(plan.previous, plan.hidden)
            kept = len(plan.old_hashes) - len(plan.hidden)
        refs += [segment_ref(directory, info) for info in segments]
        model = ModelInfo.model_validate(self.embedder.identity, from_attributes=True)
        info = build_info(collection, plan.previous, update, model, build.next_id)
        name = commit_generation(
            directory,
            info,
            refs,
            deletions,
            documents=kept + build.counts.documents,
            dense_index=self.settings.dense_index,
            hook=step,
            before_switch=update.before_switch,
        )
        return name, sum(r.live for r in refs)

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
