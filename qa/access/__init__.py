"""Who may do what: the caller's key checked against the configured one.

One admin key today (``QA_API_KEY``) guards writes and ``/metrics``. The check runs in the
request gate before any body is read, and again in the route (defence in depth).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from qa.config import Settings

Refusal = tuple[int, str, str]  # (HTTP status, error code, message)


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ('' when there is none)."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def check_key(
    settings: Settings, headers: Iterable[tuple[bytes, bytes]], need: str
) -> Refusal | None:
    """``None`` when the request may use a route that needs ``need`` ("write" or "admin")."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    if not key:
        if need == "write":
            return (
                403,
                "write_disabled",
                "the write API is disabled; start the server with QA_API_KEY set to enable it",
            )
        return (
            403,
            "admin_disabled",
            "this route needs the admin key; start the server with QA_API_KEY set to enable it",
        )
    token = bearer_token(headers)
    # constant time: the comparison must not tell how much of a guess was right
    if not hmac.compare_digest(
        token.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass")
    ):
        return 401, "unauthorized", "missing or wrong API key; send 'Authorization: Bearer <key>'"
    return None
