"""The HTTP API (FastAPI): a thin layer over :class:`qa.service.QAService`; also serves ``web/``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from qa import __version__
from qa.access import check_key
from qa.search.answer import Reply
from qa.search.followups import Turn
from qa.config import Settings
from qa.ingest.documents import Skip, UnsafePath
from qa.store.indexer import IndexReport
from qa.http.middleware import (
    UNMATCHED,
    GateMiddleware,
    InFlight,
    Metrics,
    ObservabilityMiddleware,
    Policy,
    RateLimiter,
    Scope,
)
from qa.http.schemas import (
    AskRequest,
    AskResponse,
    ClientConfig,
    CollectionInfo,
    CollectionList,
    DocumentIn,
    DocumentResponse,
    ErrorResponse,
    Health,
    PassageContext,
    SearchResponse,
    SkippedFile,
    StoredPassage,
    WriteResponse,
)
from qa.service import QAService, TooManyCollections, UnknownCollection, UnknownDocument
from qa.store.collection import BusyError, Collection, NothingToIndex, PassageRow, StoreError
from qa.ingest.uploads import NameConflict

log = logging.getLogger("qa.http.app")

NOT_FOUND_NOTICE = "The documents don't answer this question. The closest passages are listed below."
NOTHING_NOTICE = "Nothing in the documents matches this question."
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "malformed request",
        404: "unknown collection, passage or document",
        413: "body over the size limit",
        415: "body is not JSON",
        422: "invalid field",
        429: "rate limited",
    }.items()
}
STATIC = Policy("static", cost=0.05)  # the page, the widget, the docs: cheap, but not free
# What each route costs from the client's token bucket (a question is 1), who may call it,
# and the body it may send. Routes not listed cost 0.2 and take no body.
POLICIES: dict[tuple[str, str], Policy] = {
    ("POST", "/v1/ask"): Policy("/v1/ask", cost=1.0, body="json"),
    ("GET", "/v1/search"): Policy("/v1/search", cost=1.0),
    ("GET", "/v1/documents/{document_id:path}"): Policy("/v1/documents/{document_id:path}", cost=1.0),
    ("POST", "/v1/collections/{name}/documents"): Policy(
        "/v1/collections/{name}/documents", cost=1.0, auth="write", body="upload"
    ),
    ("DELETE", "/v1/collections/{name}/documents/{document_id:path}"): Policy(
        "/v1/collections/{name}/documents/{document_id:path}", cost=1.0, auth="write"
    ),
    ("POST", "/v1/collections/{name}/reindex"): Policy("/v1/collections/{name}/reindex", cost=1.0, auth="write"),
    ("GET", "/metrics"): Policy("/metrics", cost=0.2, auth="admin"),
    ("GET", "/healthz"): Policy("/healthz", cost=0.0),
}
STATIC_PATHS = {"/", "/widget.js", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/assets"}


class APIError(Exception):
    """An error with an HTTP status, a machine-readable code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        return 400, "malformed_json", f"request body is not valid JSON: {detail.get('ctx', {}).get('error', 'parse error')}"
    parts = []
    for error in errors[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{location or 'body'}: {message}")
    return 422, "validation_error", "; ".join(parts)


def create_app(settings: Settings, service: QAService | None = None) -> FastAPI:
    """The FastAPI application. ``service`` is created from ``settings`` when not given."""
    service = service or QAService(settings)
    metrics = Metrics()
    app = FastAPI(
        title="qa: questions over your documents",
        version=__version__,
        description="Ask questions; get passages with exact citations and the answering sentence.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.metrics = metrics

    # ------------------------------------------------------------------ errors
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(*_validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.status_code != 404 else f"no such route: {request.url.path}"
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(UnknownCollection)
    async def _unknown(request: Request, exc: UnknownCollection) -> JSONResponse:
        return error_response(404, "unknown_collection", str(exc))

    @app.exception_handler(Skip)
    async def _skip(request: Request, exc: Skip) -> JSONResponse:
        return error_response(422, "unreadable_document", f"{exc.source}: {exc.reason}")

    @app.exception_handler(UnsafePath)
    async def _unsafe(request: Request, exc: UnsafePath) -> JSONResponse:
        return error_response(400, "invalid_name", str(exc))

    @app.exception_handler(UnknownDocument)
    async def _unknown_document(request: Request, exc: UnknownDocument) -> JSONResponse:
        return error_response(404, "unknown_document", str(exc))

    @app.exception_handler(BusyError)
    async def _busy(request: Request, exc: BusyError) -> JSONResponse:
        return error_response(409, "busy", str(exc), {"Retry-After": "5"})

    @app.exception_handler(NothingToIndex)
    async def _nothing(request: Request, exc: NothingToIndex) -> JSONResponse:
        return error_response(409, "nothing_to_index", str(exc))

    @app.exception_handler(NameConflict)
    async def _conflict(request: Request, exc: NameConflict) -> JSONResponse:
        return error_response(409, "name_conflict", str(exc))

    @app.exception_handler(TooManyCollections)
    async def _too_many(request: Request, exc: TooManyCollections) -> JSONResponse:
        return error_response(409, "too_many_collections", str(exc))

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)  # the details (and server paths) stay in the log
        name = request.scope.get("state", {}).get("collection")
        which = f"collection {name!r}" if name else "the index"
        return error_response(503, "index_unavailable", f"{which} is unavailable right now; the server log has the details")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return error_response(500, "internal_error", "internal error; the server log has the details")

    # ------------------------------------------------------------------ helpers
    def require_json(request: Request) -> None:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            raise APIError(415, "unsupported_media_type", f"send the body as application/json, not {kind or 'nothing'}")

    def loaded(request: Request, name: str | None) -> Collection:
        collection = service.collection(name)
        request.scope.setdefault("state", {})["collection"] = collection.name
        metrics.documents.labels(collection.name).set(collection.counts["documents"])
        metrics.passages.labels(collection.name).set(collection.counts["passages"])
        return collection

    inflight = InFlight(settings.max_inflight)
    app.state.inflight = inflight

    async def in_time(work: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        """Run a question in a worker thread; 504 when it is not answered within request_timeout_s
        (a request still queued for a thread at the deadline never starts). At most
        ``max_inflight`` questions are worked on at once, counting abandoned ones until their
        thread ends; past that the answer is a quick 503 instead of a growing queue."""
        if not inflight.enter():
            raise APIError(503, "busy", "the server is answering as many questions as it can; try again shortly")

        claim = threading.Lock()
        state = {"value": "queued"}

        def run(*work_args: Any) -> dict[str, Any]:
            with claim:
                if state["value"] == "abandoned":  # the request gave up before a thread was free
                    raise TimeoutError
                state["value"] = "running"
            try:
                return work(*work_args)
            finally:
                inflight.leave()

        try:
            with anyio.fail_after(settings.request_timeout_s):
                return await anyio.to_thread.run_sync(run, *args, abandon_on_cancel=True)
        except TimeoutError:
            raise APIError(
                504, "timeout", f"no answer within {settings.request_timeout_s:g} s; the server is busy, try again"
            ) from None
        finally:
            with claim:
                if state["value"] == "queued":  # never started: it never will, so it leaves here
                    state["value"] = "abandoned"
                    inflight.leave()

    def reply_payload(reply: Reply, collection: Collection) -> dict[str, Any]:
        data = reply.to_dict()
        data["collection"] = collection.name
        data["generation"] = reply.generation
        return data

    # ------------------------------------------------------------------ questions
    @app.post("/v1/ask", response_model=AskResponse, responses=ERRORS, tags=["questions"], dependencies=[Depends(require_json)])
    async def ask(request: Request, body: AskRequest) -> dict[str, Any]:
        """Answer a question (or a follow-up, with ``history``): passages with citations and the answering sentence."""
        return await in_time(answer, request, body)

    def answer(request: Request, body: AskRequest) -> dict[str, Any]:
        collection = loaded(request, body.collection)
        history = [Turn(t.role, t.content) for t in body.history]
        reply = service.ask(body.question, history, body.top_k, collection.name)
        data = reply_payload(reply, collection)
        data["notice"] = None if reply.answer else (NOT_FOUND_NOTICE if reply.passages else NOTHING_NOTICE)
        return data

    @app.get("/v1/search", response_model=SearchResponse, responses=ERRORS, tags=["questions"])
    async def search(
        request: Request,
        q: Annotated[str, Query(min_length=1, max_length=2000, description="the query")],
        top_k: Annotated[int, Query(ge=1, le=50)] = 5,
        collection: str | None = None,
    ) -> dict[str, Any]:
        """Rank passages for a query, without choosing an answer sentence."""
        if not q.strip():
            raise APIError(422, "validation_error", "q: the query is empty")
        return await in_time(rank, request, q, top_k, collection)

    def rank(request: Request, q: str, top_k: int, collection: str | None) -> dict[str, Any]:
        loaded_collection = loaded(request, collection)
        reply = service.search(q, top_k, loaded_collection.name)
        return reply_payload(reply, loaded_collection)

    # ------------------------------------------------------------------ collections and sources
    def info(name: str, manifest: dict[str, Any]) -> CollectionInfo:
        return CollectionInfo(
            name=name,
            documents=manifest["counts"]["documents"],
            passages=manifest["counts"]["passages"],
            generation=manifest["generation"],
            created_at=manifest["created_at"],
            model=manifest["model"],
            sources=[public_root(s) for s in manifest.get("sources", [])],
        )

    @app.get("/v1/collections", response_model=CollectionList, tags=["collections"])
    def collections() -> CollectionList:
        """Every indexed collection with its counts, model and build time."""
        # read from the manifests: listing never loads (or checksums) an index
        out = [info(name, manifest) for name, manifest in service.manifests().items()]
        return CollectionList(collections=out, default=settings.collection)

    @app.get("/v1/collections/{name}", response_model=CollectionInfo, responses=ERRORS, tags=["collections"])
    def collection_info(request: Request, name: str) -> CollectionInfo:
        """One collection's counts, model and build time."""
        collection = loaded(request, _name(name))
        return info(collection.name, collection.manifest)

    def stored(row: PassageRow) -> StoredPassage:
        return StoredPassage(
            passage_id=row.id, document_id=row.document_id, ordinal=row.ordinal, paragraph=row.paragraph,
            char_start=row.char_start, char_end=row.char_end, page=row.page, text=row.text,
        )

    @app.get("/v1/passages/{passage_id}", response_model=PassageContext, responses=ERRORS, tags=["sources"])
    def passage(
        request: Request,
        passage_id: Annotated[int, PathParam(ge=0, le=2**63 - 1)],
        collection: str | None = None,
        before: Annotated[int, Query(ge=0, le=10)] = 1,
        after: Annotated[int, Query(ge=0, le=10)] = 1,
    ) -> PassageContext:
        """A passage with its neighbours in the document ("show more context")."""
        loaded_collection = loaded(request, collection)
        row = loaded_collection.passage(passage_id)
        if row is None:
            raise APIError(404, "unknown_passage", f"no passage {passage_id} in collection {loaded_collection.name!r}")
        around = loaded_collection.neighbours(row, before, after)
        return PassageContext(
            passage=stored(row),
            before=[stored(r) for r in around if r.ordinal < row.ordinal],
            after=[stored(r) for r in around if r.ordinal > row.ordinal],
            title=row.title,
            source=row.source,
            collection=loaded_collection.name,
        )

    @app.get("/v1/documents/{document_id:path}", response_model=DocumentResponse, responses=ERRORS, tags=["sources"])
    def document(request: Request, document_id: str, collection: str | None = None) -> DocumentResponse:
        """A whole document, so a citation's offsets can be shown in place."""
        loaded_collection = loaded(request, collection)
        row = loaded_collection.document(document_id)
        if row is None:
            raise APIError(404, "unknown_document", f"no document {document_id!r} in collection {loaded_collection.name!r}")
        return DocumentResponse(
            document_id=row.id, title=row.title, source=row.source, format=row.format, text=row.text,
            passages=[stored(p) for p in loaded_collection.passages_of([row.id])],
            collection=loaded_collection.name,
        )

    @app.get("/v1/config", response_model=ClientConfig, responses=ERRORS, tags=["web"])
    def client_config(collection: str | None = None) -> ClientConfig:
        """Title and starter questions for the chat page and widget (of one collection)."""
        name = _name(collection) if collection else settings.collection
        return ClientConfig(title=settings.title, collection=name, starter_questions=service.starter_questions(name))

    # ------------------------------------------------------------------ writes (need QA_API_KEY)
    def require_writer(request: Request) -> None:
        """The gate checked the key before the body was read; checked again here in case the
        app is mounted without its middleware."""
        refused = check_key(settings, request.scope.get("headers", []), "write")
        if refused is not None:
            raise APIError(*refused)

    def require_admin(request: Request) -> None:
        refused = check_key(settings, request.scope.get("headers", []), "admin")
        if refused is not None:
            raise APIError(*refused)

    def written(report: IndexReport, note: str | None = None) -> WriteResponse:
        return WriteResponse(
            collection=report.collection, generation=report.generation, documents=report.documents,
            passages=report.passages, added=report.added, updated=report.updated, removed=report.removed,
            unchanged=report.unchanged, embedded=report.embedded,
            skipped=[SkippedFile(source=s.source, reason=s.reason) for s in report.skipped], note=note,
        )

    upload_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": DocumentIn.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "name": {"type": "string", "description": "path inside the collection (default: the file name)"},
                        },
                    }
                },
            },
        }
    }

    @app.post(
        "/v1/collections/{name}/documents", response_model=WriteResponse, status_code=201, responses=ERRORS,
        tags=["writes"], dependencies=[Depends(require_writer)], openapi_extra=upload_body,
    )
    async def add_document(request: Request, name: str) -> WriteResponse:
        """Add or replace a document: JSON ``{id, title, text, source}`` or a file upload (multipart)."""
        name = _name(name, must_exist=False)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                document = DocumentIn.model_validate_json(await request.body())
            except ValidationError as exc:
                raise RequestValidationError(exc.errors()) from None
            report = await run_in_threadpool(
                service.add_text, name, document.id, document.title, document.text, document.source
            )
        elif kind == "multipart/form-data":
            form = await request.form()
            upload = form.get("file")
            if not isinstance(upload, StarletteUpload):
                raise APIError(422, "validation_error", "file: send the document in a form field named 'file'")
            filename = str(form.get("name") or upload.filename or "")
            data = await upload.read()
            report = await run_in_threadpool(service.add_file, name, filename, data)
        else:
            raise APIError(415, "unsupported_media_type", "send application/json or multipart/form-data")
        return written(report)

    @app.delete(
        "/v1/collections/{name}/documents/{document_id:path}", response_model=WriteResponse, responses=ERRORS,
        tags=["writes"], dependencies=[Depends(require_writer)],
    )
    def delete_document(name: str, document_id: str) -> WriteResponse:
        """Delete a document: its passages leave FAISS, BM25 and SQLite in one atomic switch."""
        report = service.delete_document(_name(name), document_id)
        uploads = str(service.indexer.uploads_dir(name).resolve())
        sources = service.collection(name).manifest.get("sources", [])
        note = None
        if sources and not all(s == uploads for s in sources):
            note = "if the document's file is still in an indexed folder, the next reindex adds it back"
        return written(report, note)

    @app.post(
        "/v1/collections/{name}/reindex", response_model=WriteResponse, responses=ERRORS, tags=["writes"],
        dependencies=[Depends(require_writer)],
    )
    def reindex(name: str, full: bool = False) -> WriteResponse:
        """Index the collection's folders again: new and changed files are embedded, vanished ones removed."""
        return written(service.reindex(_name(name), full))

    # ------------------------------------------------------------------ operations
    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        """The process is alive."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}}, tags=["operations"])
    def readyz() -> Any:
        """The default collection is loaded and the model is warm."""
        try:
            collection = service.collection()
        except StoreError as exc:
            return JSONResponse({"status": "unavailable", "detail": {"reason": str(exc)}}, status_code=503)
        warm = service.embedder.is_warm
        if not warm:
            return JSONResponse({"status": "warming", "detail": {}}, status_code=503)
        return Health(status="ready", detail={"collection": collection.name, "generation": collection.generation})

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"], dependencies=[Depends(require_admin)])
    def prometheus() -> Response:
        """Prometheus metrics: requests and latency by route and status, collection sizes (admin key)."""
        for name, manifest in service.manifests().items():
            metrics.documents.labels(name).set(manifest["counts"]["documents"])
            metrics.passages.labels(name).set(manifest["counts"]["passages"])
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------ web
    web = Path(settings.web_dir)

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(web / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/widget.js", include_in_schema=False)
    async def widget() -> Response:
        return FileResponse(
            web / "widget.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"}
        )

    if web.is_dir():
        app.mount("/assets", StaticFiles(directory=web), name="assets")

    # ------------------------------------------------------------------ middleware (last added = outermost)
    def policy_of(scope: Scope) -> Policy:
        """The policy of the route a request is for (resolved before the router runs)."""
        method = scope.get("method", "")
        for route in app.router.routes:
            match = route.matches(scope)[0]
            if match == Match.NONE:
                continue
            path = str(getattr(route, "path", ""))
            if path in STATIC_PATHS:
                return STATIC
            if match == Match.FULL:
                return POLICIES.get((method, path), Policy(path, cost=0.2))
            return Policy(path, cost=0.2)  # the path exists, the method doesn't: a 405, body unread
        return UNMATCHED

    def authorize(scope: Scope, need: str) -> tuple[int, str, str] | None:
        return check_key(settings, scope.get("headers", []), need)

    app.add_middleware(
        GateMiddleware,
        policy_of=policy_of,
        authorize=authorize,
        metrics=metrics,
        limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        if settings.rate_limit_per_minute > 0
        else None,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        read_timeout_s=settings.body_read_timeout_s,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, json_logs=settings.log_json)
    if settings.trusted_proxies:
        # X-Forwarded-For/-Proto only from the proxies named in QA_TRUSTED_PROXIES; the server
        # itself trusts no forwarded header (qa serve turns uvicorn's own handling off)
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


def public_root(source: str) -> str:
    """A collection's source as readers may see it: a folder's name, never its server path."""
    return Path(source).name if source.startswith("/") else source


def _name(name: str, must_exist: bool = True) -> str:
    from qa.config import validate_collection_name

    try:
        return validate_collection_name(name)
    except ValueError as exc:
        raise APIError(404 if must_exist else 400, "unknown_collection" if must_exist else "invalid_name", str(exc)) from None
