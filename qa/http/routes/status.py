"""The status of every source of a collection (admin key): what is indexed, unchanged,
skipped or failed, and why."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from qa.http.deps import ServiceDep, require_admin, valid_name
from qa.http.schemas import ERRORS
from qa.store.status import STATES, SourceRecord, State

router = APIRouter(tags=["sources"], dependencies=[Depends(require_admin)])


class SourcesResponse(BaseModel):
    """Every source the collection knows, failures first."""

    collection: str
    generation: str
    counts: dict[str, int]  # sources in each state (of all, whatever ``state`` asked for)
    sources: list[SourceRecord]


@router.get("/v1/collections/{name}/sources", response_model=SourcesResponse, responses=ERRORS)
def sources(service: ServiceDep, name: str, state: State | None = None) -> SourcesResponse:
    """Every file (or URL) of the collection with its state, the reason for a skip or a
    failure, passages, content hash and when it was last checked and changed (``state``
    keeps one state only)."""
    name, generation, records = service.sources(valid_name(name))
    counts = Counter(r.state for r in records)
    chosen = [r for r in records if state is None or r.state == state]
    return SourcesResponse(
        collection=name,
        generation=generation,
        counts={s: counts.get(s, 0) for s in STATES},
        sources=chosen,
    )
