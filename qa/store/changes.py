"""What an update changes, decided from content hashes before anything is split or embedded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.ingest.documents import Document
from qa.store.collection import Collection
from qa.store.manifest import PassageSettings, SourceOptions
from qa.store.sql import DocumentRow
from qa.store.writer import Commit, Hook

if TYPE_CHECKING:
    from qa.store.indexer import IndexReport


@dataclass
class Update:
    """One indexing run's request."""

    documents: list[Document]
    remove_missing: bool  # the documents given are all there is (a folder mirrored)
    delete: frozenset[str] = frozenset()  # ids to remove (when not ``remove_missing``)
    full: bool = False  # rebuild from scratch: split and embed everything again
    progress: bool = False  # progress bars on the terminal
    hook: Hook | None = None
    sources: list[str] | None = None  # the folders indexed; ``None`` keeps the previous ones
    source_options: SourceOptions | None = None  # ``None`` keeps the previous ones
    before_switch: Commit | None = None
    repeated: frozenset[str] | None = (
        None  # the corpus' repeated paragraphs; ``None`` keeps the previous
    )
    split: PassageSettings | None = None  # how this run splits (resolved when the run starts)


@dataclass
class Plan:
    """Which documents are kept as they are, and which are split and embedded."""

    old_hashes: dict[str, str]  # content hash of every document of the previous generation
    kept: set[str]  # documents whose rows, passages, ids and vectors are copied over
    relocated: dict[str, DocumentRow]  # kept documents whose row is rewritten (new source)
    to_split: list[Document]


def plan_update(previous: Collection | None, update: Update, report: IndexReport) -> Plan:
    """The plan of ``update`` over ``previous``; counts what is added, updated, removed and
    unchanged into ``report``."""
    old_hashes = previous.document_hashes() if previous is not None else {}
    incoming = {d.id: d for d in update.documents}
    if update.remove_missing:
        removed = set(old_hashes) - set(incoming)
    else:
        removed = set(update.delete) & set(old_hashes)
    unchanged: set[str] = set()
    relocated: dict[str, DocumentRow] = {}
    kept: set[str] = set()
    if previous is not None and not report.full_rebuild:
        unchanged = {i for i, d in incoming.items() if old_hashes.get(i) == d.content_hash}
        # same content, new source (a JSONL line number shifted by a deleted line, a moved
        # folder): keep passages, ids and vectors; only the document row is rewritten
        relocated = _relocated(previous, incoming, old_hashes, unchanged)
        unchanged |= set(relocated)
        kept = (set(old_hashes) - removed - set(incoming)) | unchanged
    to_split = [d for i, d in incoming.items() if i not in unchanged]
    if report.full_rebuild and previous is not None and not update.remove_missing:
        # settings changed under a partial update: keep the other documents by re-splitting them
        keep_ids = set(old_hashes) - removed - set(incoming)
        to_split += [document_of(row) for row in previous.iter_documents(sorted(keep_ids))]
    report.relocated = len(relocated)
    report.added = sum(1 for i in incoming if i not in old_hashes)
    report.updated = sum(1 for i in incoming if i in old_hashes and i not in unchanged)
    report.removed = len(removed)
    report.unchanged = len(unchanged)
    return Plan(old_hashes, kept, relocated, to_split)


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
    )


def _relocated(
    previous: Collection,
    incoming: dict[str, Document],
    old_hashes: dict[str, str],
    unchanged: set[str],
) -> dict[str, DocumentRow]:
    """New rows of documents whose hash changed only because their ``source`` did."""
    candidates = sorted(i for i in incoming if i in old_hashes and i not in unchanged)
    out = {}
    for old in previous.iter_documents(candidates):
        new = row_of(incoming[old.id])
        same = (old.title, old.format, old.text, old.body_start, old.pages)
        if same == (new.title, new.format, new.text, new.body_start, new.pages):
            out[old.id] = new
    return out


def document_of(row: DocumentRow) -> Document:
    """A stored document as the splitter takes it (to split it again)."""
    return Document(
        row.id, row.title, row.source, row.text, row.format, row.body_start, list(row.pages)
    )
