"""OpenAI-compatible routes: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client (Open WebUI, LibreChat, the ``openai`` library) can talk to the service:
``model`` names a collection, the last user message is the question and the earlier turns
its history. Errors here use OpenAI's shape (the gate's policy for these routes says so).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sse_starlette import EventSourceResponse

from qa.errors import InvalidInput, NotFound, UnknownCollection
from qa.generation import Generated, Writer
from qa.http.completions import Composed, Envelope, compose, extractive, streamed_tail
from qa.http.deps import (
    ServiceDep,
    SettingsDep,
    caller_of,
    groups_of,
    in_time,
    load,
    readable,
    require_json,
    valid_name,
)
from qa.http.openai_schemas import (
    OPENAI_ERRORS,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    ModelCard,
    ModelList,
)
from qa.http.schemas import MAX_HISTORY_TURNS, MAX_QUESTION_CHARS
from qa.search import Reply, Turn
from qa.search.followups import MAX_TURN_CHARS
from qa.search.scope import Scope
from qa.service import QAService

router = APIRouter(tags=["openai"])


async def get_writer(request: Request) -> Writer | None:
    return request.app.state.writer


WriterDep = Annotated[Writer | None, Depends(get_writer)]


def _created(stamp: str) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(stamp).timestamp())
    except ValueError:
        return 0


@router.get("/v1/models", response_model=ModelList, responses=OPENAI_ERRORS)
def models(request: Request, service: ServiceDep) -> ModelList:
    """The collections (those the caller may use), as OpenAI models: pick one as ``model``."""
    caller = caller_of(request)
    cards = [
        ModelCard(id=n, created=_created(m.created_at))
        for n, m in service.manifests().items()
        if caller.reads(n)
    ]
    return ModelList(data=cards)


@router.get("/v1/models/{model}", response_model=ModelCard, responses=OPENAI_ERRORS)
def model(request: Request, service: ServiceDep, model: str) -> ModelCard:
    """One collection, as an OpenAI model."""
    caller = caller_of(request)
    manifests = {n: m for n, m in service.manifests().items() if caller.reads(n)}
    if model not in manifests:
        raise _unknown_model(model, sorted(manifests))
    return ModelCard(id=model, created=_created(manifests[model].created_at))


def _unknown_model(name: str, available: list[str]) -> NotFound:
    listed = ", ".join(repr(n) for n in available) or "none yet"
    message = f"unknown model {name!r}: models are collections; available: {listed}"
    return NotFound(message, code="model_not_found", param="model")


def conversation(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The question (the last message, which must be the user's) and the turns before it."""
    last = messages[-1]
    question = last.text().strip()
    if last.role != "user" or not question:
        raise InvalidInput("the last message must be the user's question", param="messages")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            f"the question is over {MAX_QUESTION_CHARS} characters", param="messages"
        )
    turns = [
        Turn(role=m.role, content=m.text()[-MAX_TURN_CHARS:])  # type: ignore[arg-type]
        for m in messages[:-1]
        if m.role in ("user", "assistant") and m.text().strip()
    ]
    return question, turns[-MAX_HISTORY_TURNS:]


def _retrieve(
    request: Request,
    service: QAService,
    collection: str,
    question: str,
    history: list[Turn],
    top_k: int,
) -> tuple[Reply, str]:
    try:
        name = load(request, valid_name(collection))
    except (UnknownCollection, NotFound):
        raise _unknown_model(collection, readable(request)) from None
    scope = Scope(groups_of(request))
    reply = service.ask(question, collection=name, top_k=top_k, history=history, scope=scope)
    service.feedback.record_unanswered(reply, question, history, name)
    return reply, name


def _usage(service: QAService, question: str, history: list[Turn], content: str) -> dict[str, int]:
    """Word pieces of the conversation and of the answer (the service's own tokenizer)."""
    prompt, completion = service.embedder.count_tokens(
        ["\n".join([*(t.content for t in history), question]), content]
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={
        **OPENAI_ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "with `stream: true`"},
    },
    dependencies=[Depends(require_json)],
)
async def chat_completions(
    request: Request,
    body: ChatRequest,
    service: ServiceDep,
    settings: SettingsDep,
    writer: WriterDep,
) -> Any:
    """Answer the last user message from the collection named by ``model`` (OpenAI's shapes;
    ``stream: true`` for Server-Sent Events). The citations travel in ``citations``."""
    question, history = conversation(body.messages)
    top_k = max(settings.top_k, writer.passages if writer else 0)
    work = partial(_retrieve, request, service, body.model, question, history, top_k)
    reply, name = await in_time(request, work)
    envelope = Envelope(model=name)
    options = {
        "max_tokens": body.max_completion_tokens or body.max_tokens,
        "temperature": body.temperature,
    }
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _events(service, writer, envelope, reply, question, history, name, options, usage)
        return EventSourceResponse(events, ping=15)
    generated = None
    if writer is not None:
        generated = await writer.write(question, history, reply, name, **options)
    composed = compose(reply, generated)
    return envelope.completion(
        composed, reply, _usage(service, question, history, composed.content)
    )


async def _events(
    service: QAService,
    writer: Writer | None,
    envelope: Envelope,
    reply: Reply,
    question: str,
    history: list[Turn],
    collection: str,
    options: dict[str, Any],
    usage: bool,
) -> AsyncIterator[str]:
    """OpenAI's chunks: the role, the text as it comes, then the tail with the citations."""
    yield json.dumps(envelope.chunk({"role": "assistant", "content": ""}))
    streamed: list[str] = []
    if writer is None or reply.answer is None:
        final: Composed = extractive(reply)
        yield json.dumps(envelope.chunk({"content": final.content}))
    else:
        generated: Generated | None = None
        async for item in writer.stream(question, history, reply, collection, **options):
            if isinstance(item, str):
                streamed.append(item)
                yield json.dumps(envelope.chunk({"content": item}))
            else:
                generated = item
        assert generated is not None  # the writer's stream always ends with its result
        final = streamed_tail(reply, generated, "".join(streamed))
        yield json.dumps(envelope.chunk({"content": final.content}))
    extra = {
        "citations": [c.to_dict() for c in final.citations],
        "retractions": final.retractions,
        "qa": final.summary(reply),
    }
    yield json.dumps(envelope.chunk({}, "stop", **extra))
    if usage:
        content = "".join(streamed) + final.content
        yield json.dumps(envelope.usage_chunk(_usage(service, question, history, content)))
    yield "[DONE]"
