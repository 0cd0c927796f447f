"""Questions: ``/v1/ask`` (with follow-ups) and ``/v1/search``."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from qa.errors import InvalidInput
from qa.http.deps import ServiceDep, in_time, load, require_json
from qa.http.schemas import ERRORS, AskRequest, AskResponse, SearchResponse
from qa.search import Reply
from qa.service import QAService

NOT_FOUND_NOTICE = (
    "The documents don't answer this question. The closest passages are listed below."
)
NOTHING_NOTICE = "Nothing in the documents matches this question."

router = APIRouter(tags=["questions"])


def payload(request: Request, reply: Reply, collection: str) -> dict[str, object]:
    """A reply as the API sends it: the reply plus the collection and generation it is from,
    its citations' addresses absolute (on the address the request came to, unless
    QA_PUBLIC_URL names the public one)."""
    data = reply.to_dict()
    base = str(request.base_url).rstrip("/")
    for passage in data["passages"]:
        citation = passage["citation"]
        if citation["url"].startswith("/"):
            citation["url"] = base + citation["url"]
    return {**data, "collection": collection, "generation": reply.generation}


@router.post(
    "/v1/ask", response_model=AskResponse, responses=ERRORS, dependencies=[Depends(require_json)]
)
async def ask(request: Request, body: AskRequest, service: ServiceDep) -> dict[str, object]:
    """Answer a question (or a follow-up, with ``history``): passages with citations and the answering sentence."""
    return await in_time(request, partial(answer, request, service, body))


def answer(request: Request, service: QAService, body: AskRequest) -> dict[str, object]:
    collection = load(request, body.collection)
    history = body.history
    reply = service.ask(body.question, collection=collection, top_k=body.top_k, history=history)
    service.feedback.record_unanswered(reply, body.question, history, collection)
    notice = NOT_FOUND_NOTICE if reply.passages else NOTHING_NOTICE
    return {**payload(request, reply, collection), "notice": None if reply.answer else notice}


@router.get("/v1/search", response_model=SearchResponse, responses=ERRORS)
async def search(
    request: Request,
    service: ServiceDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="the query")],
    top_k: Annotated[int, Query(ge=1, le=50)] = 5,
    collection: str | None = None,
) -> dict[str, object]:
    """Rank passages for a query, without choosing an answer sentence."""
    if not q.strip():
        raise InvalidInput("q: the query is empty")
    return await in_time(request, partial(rank, request, service, q, top_k, collection))


def rank(
    request: Request, service: QAService, q: str, top_k: int, collection: str | None
) -> dict[str, object]:
    name = load(request, collection)
    return payload(request, service.search(q, collection=name, top_k=top_k), name)
