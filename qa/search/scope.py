"""What a search may look at: the caller's groups and the request's metadata filters, both
turned into one row mask that the retriever applies inside FAISS and BM25 before top-k.

Filters: AND across fields, OR within one field's list. A filter that keeps nothing gives no
passages (and a notice), never the unfiltered results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from qa.errors import InvalidInput, UnknownDocument
from qa.search.retriever import Hit, Query, Retriever
from qa.store import Collection, DocumentRow
from qa.store.rowmeta import PUBLIC, DocumentMeta

NO_MATCH_NOTICE = "No document matches the filters; nothing was searched."


@dataclass(frozen=True)
class Filters:
    """Metadata filters; an empty field does not filter."""

    document_id: tuple[str, ...] = ()
    source_prefix: tuple[str, ...] = ()  # a path inside the indexed folder, or a URL
    format: tuple[str, ...] = ()
    title_contains: tuple[str, ...] = ()  # case-insensitive
    tags: tuple[str, ...] = ()
    page_from: int | None = None  # PDF pages, inclusive
    page_to: int | None = None
    date_from: str | None = None  # ISO dates (YYYY-MM-DD), inclusive
    date_to: str | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) not in ((), None) for f in fields(self))

    def keeps(self, document: DocumentMeta) -> bool:
        """Whether the document-level fields keep ``document``."""
        if self.document_id and document.id not in self._ids:
            return False
        if self.source_prefix and not document.source.startswith(self.source_prefix):
            return False
        if self.format and document.format not in self._formats:
            return False
        title = document.title.lower()
        if self.title_contains and not any(part in title for part in self._titles):
            return False
        if self.tags and document.tags.isdisjoint(self.tags):
            return False
        day = document.date[:10]
        if self.date_from is not None and not (day and day >= self.date_from):
            return False
        return self.date_to is None or bool(day and day <= self.date_to)

    # the lists as sets, made once per filter (cached_property writes past the frozen fields)
    @cached_property
    def _ids(self) -> frozenset[str]:
        return frozenset(self.document_id)

    @cached_property
    def _formats(self) -> frozenset[str]:
        return frozenset(v.lower() for v in self.format)

    @cached_property
    def _titles(self) -> tuple[str, ...]:
        return tuple(v.lower() for v in self.title_contains)


FIELDS = {f.name for f in fields(Filters)} | {"page", "date"}


def parse_filters(raw: Mapping[str, object] | None) -> Filters:
    """Filters from a request's (or the CLI's) ``{field: value or [values]}``; unknown fields
    and bad values are an :class:`InvalidInput` (422)."""
    if not raw:
        return Filters()
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        known = ", ".join(sorted(FIELDS - {"page_from", "page_to", "date_from", "date_to"}))
        raise InvalidInput(f"filters: unknown field {unknown[0]!r}; known fields: {known}")
    values: dict[str, object] = {}
    for name, value in raw.items():
        if name in {"page", "date"}:
            low, high = _range(name, value)
            values |= {f"{name}_from": low, f"{name}_to": high}
        elif name in {"page_from", "page_to"}:
            values[name] = _page(name, value)
        elif name in {"date_from", "date_to"}:
            values[name] = _date(name, value)
        else:
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) and v for v in items):
                raise InvalidInput(f"filters.{name}: give a string or a list of strings")
            values[name] = tuple(items)  # type: ignore[arg-type]
    return Filters(**values)  # type: ignore[arg-type]


def _range(name: str, value: object) -> tuple[object, object]:
    """``[low, high]`` or ``"low..high"`` (either end may be empty)."""
    if isinstance(value, str):
        value = value.split("..", 1) if ".." in value else [value, value]
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidInput(f"filters.{name}: give [from, to] or 'from..to'")
    parse = _page if name == "page" else _date
    return tuple(None if v in (None, "") else parse(name, v) for v in value)  # type: ignore[return-value]


def _page(name: str, value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise InvalidInput(f"filters.{name}: {value!r} is not a page number") from None


def _date(name: str, value: object) -> str:
    text = str(value)
    parts = text.split("-")
    if not (len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[0]) == 4):
        raise InvalidInput(f"filters.{name}: {value!r} is not a date (YYYY-MM-DD)")
    return text


def allowed_rows(
    collection: Collection, groups: frozenset[str] | None, filters: Filters | None
) -> np.ndarray | None:
    """The row mask for a reader in ``groups`` (``None``: may see everything) under
    ``filters``; ``None`` when nothing is excluded."""
    mask = None if groups is None else collection.visible(groups)
    if filters:
        kept = collection.cached_mask(
            ("filters", filters), lambda: _filter_mask(collection, filters)
        )
        mask = kept if mask is None else mask & kept
    return mask


def _filter_mask(collection: Collection, filters: Filters) -> np.ndarray:
    """The rows ``filters`` keep: their documents' fields, then their pages."""
    meta = collection.meta
    kept = meta.document_mask(filters.keeps)
    if filters.page_from is not None or filters.page_to is not None:
        page = meta.page_of_row
        low, high = filters.page_from or 1, filters.page_to or np.iinfo(np.int32).max
        kept &= (page >= low) & (page <= high)
    return kept


@dataclass(frozen=True)
class Scope:
    """What one search may look at: a reader's groups (``None``: every document) and filters."""

    groups: frozenset[str] | None = None
    filters: Filters | None = None


def within(retriever: Retriever, scope: Scope | None, query: Query, k: int) -> list[Hit]:
    """The best ``k`` hits among the rows ``scope`` allows (none when no live row is)."""
    if scope is not None:
        retriever.allowed = allowed_rows(retriever.collection, scope.groups, scope.filters)
    allowed = retriever.allowed
    if allowed is not None and not (allowed & retriever.collection.live).any():
        return []
    return retriever.search(query, k)


def no_match_notice(retriever: Retriever, scope: Scope | None) -> str | None:
    """The notice of a search whose filters kept no passage (nothing was searched)."""
    allowed = retriever.allowed
    if scope is None or not scope.filters or allowed is None:
        return None
    return None if (allowed & retriever.collection.live).any() else NO_MATCH_NOTICE


def may_see(document: DocumentRow, groups: frozenset[str] | None) -> bool:
    """Whether a reader in ``groups`` (``None``: everything) may see ``document``."""
    return groups is None or not set(document.groups).isdisjoint(groups | {PUBLIC})


def hidden_document(document_id: str, collection: str) -> UnknownDocument:
    """What a reader is told about a document it may not see: exactly what it is told about
    one that does not exist."""
    return UnknownDocument(f"no document {document_id!r} in collection {collection!r}")
