"""What each row of a loaded collection belongs to: its document's access list and metadata,
and its page, read once per generation so that permissions and filters become row masks
(``allowed=``) applied inside the search, before top-k is cut."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qa.store.segment import Segment

PUBLIC = "public"
_OPTIONAL = ("groups", "tags", "date")  # columns segments written before access lists lack


@dataclass(frozen=True)
class DocumentMeta:
    """What filters and permissions look at in one document."""

    id: str
    title: str
    source: str  # as readers see it
    format: str
    groups: frozenset[str]
    tags: frozenset[str]
    date: str


@dataclass
class RowMeta:
    """Per collection row: the number of its document in ``documents``, and its page (0: none)."""

    documents: list[DocumentMeta]
    document_of_row: np.ndarray  # int32, -1 for a row without a document row
    page_of_row: np.ndarray  # int32

    def rows_of_documents(self, keep: np.ndarray) -> np.ndarray:
        """Row mask of the rows whose document's entry in ``keep`` (bool per document) is set."""
        keep = np.append(np.asarray(keep, dtype=bool), False)  # -1 rows map to the False
        return keep[self.document_of_row]

    def document_mask(self, test: Callable[[DocumentMeta], bool]) -> np.ndarray:
        """Row mask of the rows whose document passes ``test``."""
        return self.rows_of_documents(np.fromiter(map(test, self.documents), bool))


def read_row_meta(
    segments: Sequence[Segment], offsets: Sequence[int], public_source: Callable[[str], str]
) -> RowMeta:
    """The documents and pages of every row of ``segments`` (rows numbered from ``offsets``)."""
    total = int(offsets[-1]) if len(offsets) else 0
    documents: list[DocumentMeta] = []
    document_of_row = np.full(total, -1, dtype=np.int32)
    page_of_row = np.zeros(total, dtype=np.int32)
    for number, segment in enumerate(segments):
        columns = {r["name"] for r in segment.db.select("PRAGMA table_info(documents)")}
        extra = "".join(f", {c}" for c in _OPTIONAL if c in columns)
        position: dict[str, int] = {}
        for row in segment.db.select(f"SELECT id, title, source, format{extra} FROM documents"):
            position[row["id"]] = len(documents)
            documents.append(_document(row, columns, public_source))
        rows = segment.db.select("SELECT id, document_id, page FROM passages")
        ids = np.array([r["id"] for r in rows], dtype=np.int64)
        local = segment.rows_of(ids)
        found = local >= 0
        at = int(offsets[number]) + local[found]
        document_of_row[at] = np.array(
            [position.get(r["document_id"], -1) for r in rows], dtype=np.int32
        )[found]
        page_of_row[at] = np.array([r["page"] or 0 for r in rows], dtype=np.int32)[found]
    return RowMeta(documents, document_of_row, page_of_row)


def _document(row: object, columns: set[str], public_source: Callable[[str], str]) -> DocumentMeta:
    get = row.__getitem__  # type: ignore[attr-defined]
    return DocumentMeta(
        id=get("id"),
        title=get("title"),
        source=public_source(get("source")),
        format=get("format"),
        groups=frozenset(json.loads(get("groups")) if "groups" in columns else [PUBLIC]),
        tags=frozenset(json.loads(get("tags")) if "tags" in columns else []),
        date=get("date") if "date" in columns else "",
    )
