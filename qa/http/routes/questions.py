"""Questions: ``/v1/ask`` (with follow-ups) and ``/v1/search``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from qa.errors import InvalidInput
from qa.generation import Generated, Writer
from qa.http.deps import ServiceDep, groups_of, in_time, load, require_json
from qa.http.routes.openai import WriterDep
from qa.http.schemas import ERRORS, AskRequest, AskResponse, SearchResponse
from qa.search import Reply
from qa.search.scope import Scope, parse_filters
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
    "/v1/ask",
    response_model=AskResponse,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "stream"}},
    dependencies=[Depends(require_json)],
)
async def ask(request: Request, body: AskRequest, service: ServiceDep, writer: WriterDep) -> Any:
    """Answer a question (or a follow-up, with ``history``): passages with citations and the
    answering sentence; with a model configured (QA_LLM_URL), also the checked answer it wrote."""
    reply, collection = await in_time(request, partial(extract, request, service, body))
    out = answer_payload(request, reply, collection)
    if body.stream:
        events = _ask_events(writer, body, reply, collection, out)
        return EventSourceResponse(events, ping=15)
    if writer is None:
        return out
    generated = await writer.write(body.question, body.history, reply, collection)
    return {**out, "generated": generated.to_dict()}


def extract(request: Request, service: QAService, body: AskRequest) -> tuple[Reply, str]:
    """The extractive reply and the collection it is from."""
    collection = load(request, body.collection)
    history = body.history
    scope = Scope(groups_of(request), parse_filters(body.filters))
    reply = service.ask(body.question, collection, body.top_k, history, scope=scope)
    service.feedback.record_unanswered(reply, body.question, history, collection)
    return reply, collection


def answer_payload(request: Request, reply: Reply, collection: str) -> dict[str, object]:
    """The extractive reply as ``/v1/ask`` sends it, with a notice when there is no answer."""
    notice = reply.notice or (NOT_FOUND_NOTICE if reply.passages else NOTHING_NOTICE)
    return {**payload(request, reply, collection), "notice": None if reply.answer else notice}


async def _ask_events(
    writer: Writer | None, body: AskRequest, reply: Reply, collection: str, out: dict[str, object]
) -> AsyncIterator[ServerSentEvent]:
    """``reply`` (the extractive answer, at once), ``delta`` (the model's text as it comes),
    ``final`` (the checked answer, or ``null`` without a model)."""
    yield ServerSentEvent(json.dumps(out), event="reply")
    final: Generated | None = None
    if writer is not None:
        async for item in writer.stream(body.question, body.history, reply, collection):
            if isinstance(item, str):
                yield ServerSentEvent(json.dumps({"text": item}), event="delta")
            else:
                final = item
    payload = {"generated": final.to_dict() if final else None}
    yield ServerSentEvent(json.dumps(payload), event="final")


@router.get("/v1/search", response_model=SearchResponse, responses=ERRORS)
async def search(
    request: Request,
    service: ServiceDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="the query")],
    top_k: Annotated[int, Query(ge=1, le=50)] = 5,
    collection: str | None = None,
    filters: Annotated[
        str | None, Query(max_length=4000, description="metadata filters as a JSON object")
    ] = None,
) -> dict[str, object]:
    """Rank passages for a query, without choosing an answer sentence."""
    if not q.strip():
        raise InvalidInput("q: the query is empty")
    scope = Scope(groups_of(request), parse_filters(_json_object(filters)))
    return await in_time(request, partial(rank, request, service, q, top_k, collection, scope))


def _json_object(text: str | None) -> dict[str, Any] | None:
    """The ``filters`` query parameter: a JSON object, or absent."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidInput("filters: not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("filters: give a JSON object")
    return value


def rank(
    request: Request, service: QAService, q: str, top_k: int, collection: str | None, scope: Scope
) -> dict[str, object]:
    name = load(request, collection)
    reply = service.search(q, collection=name, top_k=top_k, scope=scope)
    return payload(request, reply, name)
