"""Who may do what: the request's caller (user, groups, collections, scope) resolved from
keys, trusted proxy headers or an OIDC token (``QA_AUTH``), and the single admin key
(``QA_API_KEY``). The check runs in the request gate before any body is read, and again in
the route (defence in depth). Nothing outside this package knows how a caller was identified.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Literal

from qa.access.caller import Caller
from qa.access.keys import Key, KeyStore
from qa.access.resolve import Authenticator
from qa.config import Settings
from qa.errors import Forbidden, QAError, Unauthorized

__all__ = [
    "Authenticator",
    "Caller",
    "Key",
    "KeyStore",
    "Role",
    "bearer_token",
    "check_key",
]

Role = Literal["write", "admin"]
DISABLED = {
    "write": "the write API is disabled; start the server with QA_API_KEY set to enable it",
    "admin": "this route needs the admin key; start the server with QA_API_KEY set to enable it",
}


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ('' when there is none)."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def check_key(
    settings: Settings, headers: Iterable[tuple[bytes, bytes]], need: Role
) -> QAError | None:
    """``None`` when the request may use a route that needs ``need``, else the refusal."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    if not key:
        return Forbidden(DISABLED[need], code=f"{need}_disabled")
    token = bearer_token(headers)
    # constant time: the comparison must not tell how much of a guess was right
    if not hmac.compare_digest(
        token.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass")
    ):
        return Unauthorized("missing or wrong API key; send 'Authorization: Bearer <key>'")
    return None
