"""The one shape of every API error, ``{"error": {"code", "message"}}``, and the errors only
HTTP has (the rest are in :mod:`qa.errors`)."""

from __future__ import annotations

from collections.abc import Mapping

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


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON error response; every error the API sends is built here."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def response_of(error: QAError, message: str | None = None) -> JSONResponse:
    """The response for ``error`` (with ``message`` instead of its own, when given)."""
    return error_response(error.status, error.code, message or error.message, error.headers)


async def send_error(send: Send, error: QAError) -> None:
    """Send the response for ``error`` straight from middleware, before the app runs."""
    response = response_of(error)
    status, headers = response.status_code, response.raw_headers
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
