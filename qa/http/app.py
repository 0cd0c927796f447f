"""The HTTP API (FastAPI): a thin layer over :class:`qa.service.QAService`; also serves ``web/``."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa import __version__
from qa.access import Authenticator
from qa.config import Settings
from qa.errors import BadRequest, InvalidInput, QAError, StoreError
from qa.generation import Writer
from qa.http.errors import Shape, error_response, response_of
from qa.http.limits import InFlight
from qa.http.metrics import Metrics
from qa.http.middleware import GateMiddleware, ObservabilityMiddleware, PeerMiddleware
from qa.http.policies import policy_of
from qa.http.routes import ROUTERS
from qa.service import QAService

log = logging.getLogger("qa.http.app")


def create_app(settings: Settings, service: QAService | None = None) -> FastAPI:
    """The FastAPI application. ``service`` is created from ``settings`` when not given."""
    app = FastAPI(
        title="qa: questions over your documents",
        version=__version__,
        description="Ask questions; get passages with exact citations and the answering sentence.",
        docs_url="/docs",
        redoc_url=None,
        # the routers' routes go straight onto the app, not through include_router: the gate
        # looks a request's route up in app.router.routes before routing, and newer FastAPI
        # keeps an included router there as one entry that doesn't say which route matched
        routes=[route for router in ROUTERS for route in router.routes],
    )
    app.state.service = service or QAService(settings)
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.inflight = InFlight(settings.max_inflight)
    app.state.auth = Authenticator(settings)
    app.state.writer = Writer.from_settings(app.state.service, settings)
    web = Path(settings.web_dir)
    if web.is_dir():
        app.mount("/assets", StaticFiles(directory=web), name="assets")
    app.add_exception_handler(QAError, _qa_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _crash)
    _add_middleware(app, settings)
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware, innermost first (the last one added runs first)."""
    app.add_middleware(
        GateMiddleware,
        policy_of=partial(policy_of, app.router.routes),
        settings=settings,
        metrics=app.state.metrics,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
    app.add_middleware(
        ObservabilityMiddleware, metrics=app.state.metrics, json_logs=settings.log_json
    )
    if settings.trusted_proxies:
        # X-Forwarded-For/-Proto only from the proxies named in QA_TRUSTED_PROXIES; the server
        # itself trusts no forwarded header (qa serve turns uvicorn's own handling off)
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(PeerMiddleware)  # outermost: the peer before any forwarded header


def _shape(request: Request) -> Shape:
    """The error shape of the route a request is for (OpenAI's on the compatible routes)."""
    policy = request.scope.get("qa.policy")
    return policy.errors if policy is not None else "qa"


async def _qa_error(request: Request, exc: QAError) -> JSONResponse:
    """Every error of the library and the routes: its own status, code, message and headers."""
    if not isinstance(exc, StoreError):
        return response_of(exc, shape=_shape(request))
    log.error("store error: %s", exc)  # the details (and server paths) stay in the log
    name = request.scope.get("state", {}).get("collection")
    which = f"collection {name!r}" if name else "the index"
    message = f"{which} is unavailable right now; the server log has the details"
    return response_of(exc, message, shape=_shape(request))


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A body that is not JSON (400), or fields that are not allowed (422, the first five)."""
    errors = exc.errors()
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:
        reason = broken.get("ctx", {}).get("error", "parse error")
        error = BadRequest(f"request body is not valid JSON: {reason}", code="malformed_json")
        return response_of(error, shape=_shape(request))
    parts = []
    for error in errors[:5]:
        where = (str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        location = ".".join(where)
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{location or 'body'}: {message}")
    first = ".".join(str(p) for p in errors[0].get("loc", ())[1:2]) if errors else ""
    return response_of(InvalidInput("; ".join(parts), param=first or None), shape=_shape(request))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The router's own errors: no such route (404), or not with that method (405)."""
    shape = _shape(request)
    if exc.status_code == 404:
        message = f"no such route: {request.url.path}"
        return error_response(404, "not_found", message, shape=shape)
    code = "method_not_allowed" if exc.status_code == 405 else "http_error"
    return error_response(exc.status_code, code, str(exc.detail), exc.headers, shape=shape)


async def _crash(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path)
    message = "internal error; the server log has the details"
    return error_response(500, "internal_error", message, shape=_shape(request))
