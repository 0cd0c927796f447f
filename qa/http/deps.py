"""What several routes share: the app's service and settings, the collection a request is
for, the question runner with its deadline and in-flight bound, and the route guards."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

import anyio
from fastapi import Depends, Request
from starlette.datastructures import State

from qa.access import Authenticator, Caller, Role
from qa.config import Settings, validate_collection_name
from qa.errors import (
    InvalidName,
    NotFound,
    ServiceBusy,
    Timeout,
    UnknownCollection,
    UnsupportedMediaType,
)
from qa.http.limits import InFlight
from qa.http.metrics import Metrics
from qa.search.scope import hidden_document, may_see
from qa.service import QAService
from qa.store import DocumentRow

T = TypeVar("T")


async def get_service(request: Request) -> QAService:
    return request.app.state.service


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


ServiceDep = Annotated[QAService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def metrics_of(request: Request) -> Metrics:
    return request.app.state.metrics


def caller_of(request: Request) -> Caller:
    """The caller the gate resolved (resolved here when the app runs without its gate)."""
    caller = request.scope.get("qa.caller")
    if caller is None:
        auth: Authenticator = request.app.state.auth
        peer = (request.scope.get("client") or ("", 0))[0]
        caller = request.scope["qa.caller"] = auth.resolve(request.scope.get("headers", []), peer)
    return caller


def readable(request: Request) -> list[str]:
    """The collections the caller may use."""
    service: QAService = request.app.state.service
    return [n for n in service.collection_names() if caller_of(request).reads(n)]


def load(request: Request, name: str | None) -> str:
    """Load the collection a request is for (default: the served one) and return its name,
    which the request's log line shows from now on. One the caller may not use is a 404
    exactly like one that does not exist (naming only the collections it may use)."""
    service: QAService = request.app.state.service
    wanted = name or service.settings.collection
    try:
        if not caller_of(request).reads(wanted):
            raise UnknownCollection(wanted)
        collection = service.collection(name)
    except UnknownCollection as missing:
        raise UnknownCollection(missing.name, readable(request)) from None
    request.scope.setdefault("state", {})["collection"] = collection.name
    counts = collection.counts
    metrics_of(request).collection_size(collection.name, counts["documents"], counts["passages"])
    return collection.name


def valid_name(name: str, must_exist: bool = True) -> str:
    """A collection name from the URL: a 404 when it can't name a collection that exists, a
    400 when it can't name one to create."""
    try:
        return validate_collection_name(name)
    except ValueError as exc:
        if must_exist:
            raise NotFound(str(exc), code="unknown_collection") from None
        raise InvalidName(str(exc)) from None


def require_json(request: Request) -> None:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as application/json, not {kind or 'nothing'}")


def _require(request: Request, need: Role) -> None:
    """The gate checked the caller before the body was read; checked again here in case the
    app is mounted without its middleware."""
    auth: Authenticator = request.app.state.auth
    refused = auth.refusal(caller_of(request), need, request.scope.get("headers", []))
    if refused is not None:
        raise refused


def visible_document(
    request: Request, service: QAService, collection: str, document_id: str
) -> DocumentRow:
    """The document, when it exists and the caller may see it; else the same 404 for both."""
    row = service.collection(collection).document(document_id)
    if row is None or not may_see(row, groups_of(request)):
        raise hidden_document(document_id, collection)
    return row


def groups_of(request: Request) -> frozenset[str] | None:
    """The groups whose documents the caller may read (``None``: every document)."""
    return caller_of(request).groups


def require_writer(request: Request) -> None:
    _require(request, "write")


def require_admin(request: Request) -> None:
    _require(request, "admin")


def _threads(state: State) -> anyio.CapacityLimiter:
    """The app's limit on threads answering questions at once (made in the event loop).

    More threads than cores don't answer more: on 2 cores, with 32 clients asking new
    questions, 40 threads answered 42-53 a second and 2 threads 59-71, p99 1.2-1.7 s against
    0.57-0.72 s (``scripts/bench_new_questions.py``): the GIL and the cores shared by fewer.
    """
    limiter = getattr(state, "question_threads", None)
    if limiter is None:
        threads = state.settings.question_threads or max(2, os.cpu_count() or 2)
        limiter = state.question_threads = anyio.CapacityLimiter(threads)
    return limiter


async def in_time(request: Request, work: Callable[[], T]) -> T:
    """Run a question in a worker thread; 504 when it is not answered within request_timeout_s
    (a request still queued for a thread at the deadline never starts). At most
    ``max_inflight`` questions are worked on at once, counting abandoned ones until their
    thread ends; past that the answer is a quick 503 instead of a growing queue."""
    settings: Settings = request.app.state.settings
    inflight: InFlight = request.app.state.inflight
    if not inflight.enter():
        raise ServiceBusy("the server is answering as many questions as it can; try again shortly")
    claim = threading.Lock()
    state: Literal["queued", "running", "abandoned"] = "queued"

    def run() -> T:
        nonlocal state
        with claim:
            if state == "abandoned":  # the request gave up before a thread was free
                raise TimeoutError
            state = "running"
        try:
            return work()
        finally:
            inflight.leave()

    try:
        with anyio.fail_after(settings.request_timeout_s):
            return await anyio.to_thread.run_sync(
                run, abandon_on_cancel=True, limiter=_threads(request.app.state)
            )
    except TimeoutError:
        seconds = f"{settings.request_timeout_s:g}"
        raise Timeout(f"no answer within {seconds} s; the server is busy, try again") from None
    finally:
        with claim:
            if state == "queued":  # never started: it never will, so it leaves here
                state = "abandoned"
                inflight.leave()
