"""Sources: a passage with its neighbours, and a whole document, so citations can be shown
in place."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from qa.errors import UnknownPassage
from qa.http.deps import ServiceDep, groups_of, load, visible_document
from qa.http.schemas import ERRORS, DocumentResponse, PassageContext, StoredPassage
from qa.search.scope import may_see
from qa.service import QAService
from qa.store import DocumentRow, PassageRow

router = APIRouter(tags=["sources"])


def visible_document_or_none(service: QAService, collection: str, document_id: str) -> DocumentRow:
    """A passage's document (a deleted one reads as visible to nobody but admins)."""
    row = service.collection(collection).document(document_id)
    return row or DocumentRow(document_id, "", "", "", "", 0, [], "", groups=[])


def stored(row: PassageRow) -> StoredPassage:
    return StoredPassage.model_validate(row, from_attributes=True)


@router.get("/v1/passages/{passage_id}", response_model=PassageContext, responses=ERRORS)
def passage(
    request: Request,
    service: ServiceDep,
    passage_id: Annotated[int, PathParam(ge=0, le=2**63 - 1)],
    collection: str | None = None,
    before: Annotated[int, Query(ge=0, le=10)] = 1,
    after: Annotated[int, Query(ge=0, le=10)] = 1,
) -> PassageContext:
    """A passage with its neighbours in the document ("show more context")."""
    name = load(request, collection)
    row, around = service.passage(passage_id, name, before, after)
    if not may_see(visible_document_or_none(service, name, row.document_id), groups_of(request)):
        raise UnknownPassage(f"no passage {passage_id} in collection {name!r}")
    return PassageContext(
        passage=stored(row),
        before=[stored(r) for r in around if r.ordinal < row.ordinal],
        after=[stored(r) for r in around if r.ordinal > row.ordinal],
        title=row.title,
        source=row.source,
        collection=name,
    )


@router.get("/v1/documents/{document_id:path}", response_model=DocumentResponse, responses=ERRORS)
def document(
    request: Request, service: ServiceDep, document_id: str, collection: str | None = None
) -> DocumentResponse:
    """A whole document, so a citation's offsets can be shown in place."""
    name = load(request, collection)
    visible_document(request, service, name, document_id)
    row, passages = service.document(document_id, name)
    return DocumentResponse(
        document_id=row.id,
        title=row.title,
        source=row.source,
        format=row.format,
        text=row.text,
        passages=[stored(p) for p in passages],
        collection=name,
        groups=row.groups,
        tags=row.tags,
        date=row.date,
    )
