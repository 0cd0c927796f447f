"""The shape of every API error, ``{"error": {"code", "message"}}`` (OpenAI's
``{"error": {"message", "type", "param", "code"}}`` on the OpenAI-compatible routes), and the
errors only HTTP has (the rest are in :mod:`qa.errors`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from starlette.responses import JSONResponse
from starlette.types import Send

from qa.errors import QAError


class RateLimited(QAError):
    """The client's token bucket is empty."""

    status, code = 429, "rate_limited"

    def __init__(self, seconds: int) -> None:
        super().__init__(f"too many requests; try again in {seconds} s")
        self.headers = {"Retry-After": str(seconds)}


class PayloadTooLarge(QAError):
    """A body over the limit of its route."""

    status, code = 413, "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is over the {limit}-byte limit")


class RequestTimeout(QAError):
    """The request's headers or body did not arrive in time."""

    status, code = 408, "request_timeout"


Shape = Literal["qa", "openai"]
# OpenAI's error types by status; a client library picks its exception class by the status
OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    shape: Shape = "qa",
    param: str | None = None,
) -> JSONResponse:
    """The JSON error response; every error the API sends is built here."""
    if shape == "openai":
        # OpenAI answers a bad parameter with 400, where the rest of the API says 422
        status = 400 if status == 422 else status
        kind = (
            "server_error" if status >= 500 else OPENAI_TYPES.get(status, "invalid_request_error")
        )
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    else:
        body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def response_of(error: QAError, message: str | None = None, shape: Shape = "qa") -> JSONResponse:
    """The response for ``error`` (with ``message`` instead of its own, when given)."""
    return error_response(
        error.status,
        error.code,
        message or error.message,
        error.headers,
        shape=shape,
        param=error.param,
    )


async def send_error(send: Send, error: QAError, shape: Shape = "qa") -> None:
    """Send the response for ``error`` straight from middleware, before the app runs."""
    response = response_of(error, shape=shape)
    status, headers = response.status_code, response.raw_headers
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
