"""What an update changes, decided document by document from content hashes, before anything
is split or embedded."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from qa.errors import StoreError
from qa.ingest.documents import Document, Skip
from qa.store.collection import Collection
from qa.store.manifest import (
    BuildInfo,
    ModelInfo,
    PassageSettings,
    SourceOptions,
    read_manifest,
)
from qa.store.sql import DocumentRow
from qa.store.writer import Commit, Hook

Verdict = Literal["unchanged", "moved", "new", "changed"]


@dataclass
class Update:
    """One indexing run's request."""

    documents: Iterable[Document]  # consumed once, as they come (a folder is read lazily)
    remove_missing: bool  # the documents given are all there is (a folder mirrored)
    delete: frozenset[str] = frozenset()  # ids to remove (when not ``remove_missing``)
    full: bool = False  # rebuild from scratch: split and embed everything again
    progress: bool = False  # progress bars on the terminal
    hook: Hook | None = None
    sources: list[str] | None = None  # the folders indexed; ``None`` keeps the previous ones
    source_options: SourceOptions | None = None  # ``None`` keeps the previous ones
    before_switch: Commit | None = None
    # the corpus' repeated paragraphs (furniture); ``None`` keeps the previous generation's
    repeated: frozenset[str] | None = None
    split: PassageSettings | None = None  # how this run splits (settled when the run starts)
    skipped: list[Skip] = field(default_factory=list)  # files left out while reading
    plan: Plan | None = None  # what the run judged (set when it starts)


@dataclass
class Plan:
    """What the previous generation holds, and what this run hides in it."""

    previous: Collection | None
    reuse: bool  # unchanged documents stay where they are (no full rebuild)
    old_hashes: Mapping[str, str]  # content hash of each live document of the previous generation
    seen: set[str] = field(default_factory=set)  # documents of the update met so far
    hidden: set[str] = field(default_factory=set)  # previous documents this run replaces or removes
    judged: dict[str, Verdict] = field(default_factory=dict)  # each document's verdict (status)

    def judge(self, document: Document) -> tuple[Verdict, DocumentRow | None]:
        """How ``document`` compares with the previous generation (and its new row when it
        only moved)."""
        verdict, moved = self._judge(document)
        self.judged[document.id] = verdict
        return verdict, moved

    def _judge(self, document: Document) -> tuple[Verdict, DocumentRow | None]:
        self.seen.add(document.id)
        old = self.old_hashes.get(document.id)
        if old is None:
            return "new", None
        if self.reuse and old == document.content_hash:
            return "unchanged", None
        self.hidden.add(document.id)
        if self.reuse and self.previous is not None:
            moved = _relocated(self.previous, document)
            if moved is not None:
                return "moved", moved
        return "changed", None

    def removed(self, update: Update) -> set[str]:
        """Previous documents the update removes (once every document was judged)."""
        if update.remove_missing:
            gone = set(self.old_hashes) - self.seen
        else:
            gone = {d for d in update.delete if d in self.old_hashes}
        self.hidden |= gone
        return gone


class LiveHashes(Mapping[str, str]):
    """``{document_id: content_hash}`` of a generation's live documents, looked up one id at
    a time: an update of ten documents of a million reads ten rows, not every document.
    Iterating reads them all (once)."""

    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self._all: dict[str, str] | None = None

    def __getitem__(self, document_id: str) -> str:
        found = self._collection.document_hashes([document_id])
        if document_id not in found:
            raise KeyError(document_id)
        return found[document_id]

    def __iter__(self) -> Iterator[str]:
        if self._all is None:
            self._all = self._collection.document_hashes()
        return iter(self._all)

    def __len__(self) -> int:
        count = 0
        for segment in self._collection.segments:
            rows = segment.db.select("SELECT COUNT(*) AS n FROM documents")
            count += int(rows[0]["n"]) - len(self._collection.deletions.get(segment.name, ()))
        return count


def old_hashes(previous: Collection | None, update: Update) -> Mapping[str, str]:
    """The previous generation's document hashes as the run needs them: all at once for a
    folder mirrored (every one is compared), looked up by id for a few documents given."""
    if previous is None:
        return {}
    return previous.document_hashes() if update.remove_missing else LiveHashes(previous)


def row_of(document: Document) -> DocumentRow:
    """The row a document is stored as."""
    return DocumentRow(
        id=document.id,
        title=document.title,
        source=document.source,
        format=document.format,
        text=document.text,
        body_start=document.body_start,
        pages=list(document.pages),
        content_hash=document.content_hash,
        groups=document.access_groups,
        tags=list(document.tags),
        date=document.date,
    )


def _relocated(previous: Collection, document: Document) -> DocumentRow | None:
    """The new row of a document whose hash changed only because its ``source`` did (a JSONL
    line number shifted by a deleted line, a moved folder): passages, ids and vectors stay."""
    old = previous.document(document.id)
    new = row_of(document)
    if old is None:
        return None
    same = (old.title, old.format, old.text, old.body_start, old.pages)
    if same == (new.title, new.format, new.text, new.body_start, new.pages):
        return new
    return None


def as_document(row: DocumentRow) -> Document:
    """A stored document as the splitter takes it (to split it again)."""
    return Document(
        row.id,
        row.title,
        row.source,
        row.text,
        row.format,
        row.body_start,
        list(row.pages),
        groups=list(row.groups),
        tags=list(row.tags),
        date=row.date,
    )


def build_info(
    collection: str, previous: Collection | None, update: Update, model: ModelInfo, next_id: int
) -> BuildInfo:
    """What the manifest records about a build; folders and options are kept from the
    previous generation unless the update gives them."""
    before = previous.manifest if previous is not None else None
    sources = update.sources
    if sources is None:
        sources = list(before.sources) if before is not None else []
    options = update.source_options
    if options is None:
        options = before.source_options if before is not None else SourceOptions()
    assert update.split is not None  # settled when the run started
    return BuildInfo(
        collection=collection,
        model=model,
        passage_settings=update.split,
        next_passage_id=next_id,
        sources=sources,
        source_options=options,
    )


def live_next_id(directory: Path) -> int:
    """``next_passage_id`` of the live generation (0 when there is none or it is unreadable)."""
    try:
        return read_manifest(directory).next_passage_id
    except StoreError:
        return 0
