"""Feedback: a reader's verdict on an answer (public, rate-limited), and for the admin the
raw records and the grouped report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from qa.feedback import FeedbackIn, FeedbackRecord, Report
from qa.http.deps import ServiceDep, in_time, load, require_admin, require_json
from qa.http.schemas import ERRORS, ErrorResponse

router = APIRouter(tags=["feedback"])
ADMIN_ERRORS = {
    **ERRORS,
    401: {"model": ErrorResponse, "description": "missing or wrong admin key"},
    403: {"model": ErrorResponse, "description": "no admin key configured (QA_API_KEY)"},
}
Since = Annotated[
    str | None,
    Query(max_length=40, description="30m, 12h, 7d, 2w ago, or a date (2024-05-01, UTC)"),
]


class FeedbackSaved(BaseModel):
    """What was stored: the record's id and time (the record holds only what was sent)."""

    id: int
    collection: str
    created_at: str


class FeedbackPage(BaseModel):
    """One page of records, oldest first; ask for the next with ``after=next_after``."""

    records: list[FeedbackRecord]
    next_after: int | None = Field(description="null when this is the last page")


@router.post(
    "/v1/feedback",
    response_model=FeedbackSaved,
    status_code=201,
    responses=ERRORS,
    dependencies=[Depends(require_json)],
)
def post_feedback(request: Request, service: ServiceDep, body: FeedbackIn) -> FeedbackSaved:
    """Rate an answer: helpful, or not helpful with an optional reason and comment."""
    name = load(request, body.collection)
    record = service.feedback.record(body, name)
    return FeedbackSaved(id=record.id, collection=name, created_at=record.created_at)


@router.get(
    "/v1/feedback",
    response_model=FeedbackPage,
    responses=ADMIN_ERRORS,
    dependencies=[Depends(require_admin)],
)
def list_feedback(
    request: Request,
    service: ServiceDep,
    collection: str | None = None,
    since: Since = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FeedbackPage:
    """The raw records of a collection, a page at a time (admin key)."""
    name = load(request, collection)
    records = service.feedback.records(name, since, after, limit)
    more = len(records) == limit
    return FeedbackPage(records=records, next_after=records[-1].id if more else None)


@router.get(
    "/v1/feedback/report",
    response_model=Report,
    responses=ADMIN_ERRORS,
    dependencies=[Depends(require_admin)],
)
async def feedback_report(
    request: Request, service: ServiceDep, collection: str | None = None, since: Since = None
) -> Report:
    """Unanswered questions and not-helpful answers, grouped by similar questions, largest
    groups first (admin key)."""

    def work() -> Report:
        return service.feedback.report(load(request, collection), since)

    return await in_time(request, work)
