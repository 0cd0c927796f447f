"""From a request's headers and peer address to a :class:`Caller`, by the mode ``QA_AUTH``
names, and whether that caller may use a route. Runs in the request gate, before any body
byte is read.

* ``none``: everyone reads everything; the write API and admin routes need ``QA_API_KEY``.
* ``keys``: a bearer token from ``qa keys create`` (or ``QA_API_KEY``, an admin key).
* ``header``: ``X-Forwarded-User``/``X-Forwarded-Groups`` from an authenticating proxy,
  believed only when the peer is one of ``QA_TRUSTED_PROXIES``.
* ``oidc``: a bearer JWT signed by ``QA_OIDC_ISSUER`` for ``QA_OIDC_AUDIENCE``.

In every mode but ``none``, a request without credentials reads only the ``public``
documents when ``QA_PUBLIC_READ`` is on, and nothing otherwise.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from qa.access.caller import ADMIN, EVERYONE, NOBODY, PUBLIC_READER, Caller, Level
from qa.access.keys import KeyStore
from qa.config import Settings
from qa.errors import Forbidden, InvalidInput, QAError, Unauthorized

if TYPE_CHECKING:
    from qa.access.oidc import TokenVerifier

Headers = Iterable[tuple[bytes, bytes]]
USER_HEADER, GROUPS_HEADER = b"x-forwarded-user", b"x-forwarded-groups"
MAX_GROUPS = 256  # a header naming more is cut here: a caller's groups are a short list


def _header(headers: Headers, name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


def _bearer(headers: Headers) -> str:
    scheme, _, token = _header(headers, b"authorization").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Authenticator:
    """Resolves callers for one server (its settings, key store and token verifier)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mode = settings.auth
        self.keys = KeyStore(settings.index_dir)
        # checked only where they decide identities (QA_AUTH=header)
        networks = _networks(settings) if self.mode == "header" else []
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in networks]
        self.any_proxy = "*" in settings.trusted_proxies
        self.verifier: TokenVerifier | None = None
        if self.mode == "oidc":
            from qa.access.oidc import TokenVerifier

            self.verifier = TokenVerifier.from_settings(settings)

    def resolve(self, headers: Headers, peer: str) -> Caller:
        """The caller a request is from; raises :class:`Unauthorized` for credentials that
        are given but wrong (a request without any is an anonymous caller)."""
        headers = list(headers)
        token = _bearer(headers)
        admin = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        # constant time: the comparison must not tell how much of a guess was right
        if token and admin and hmac.compare_digest(token.encode(), admin.encode()):
            return ADMIN
        if self.mode == "none":
            return EVERYONE
        if self.mode == "keys" and token:
            key = self.keys.find(token)
            if key is None:
                raise Unauthorized("unknown or revoked API key")
            return key.caller()
        if self.mode == "oidc" and token and self.verifier is not None:
            return self.verifier.caller(token)
        if self.mode == "header" and self._trusted(peer):
            user = _header(headers, USER_HEADER)
            if user:
                groups = _header(headers, GROUPS_HEADER).split(",")[:MAX_GROUPS]
                return Caller(user, "read", frozenset(g.strip() for g in groups if g.strip()))
        if token:
            raise Unauthorized("this server does not accept that kind of token")
        return PUBLIC_READER if self.settings.public_read else NOBODY

    def _trusted(self, peer: str) -> bool:
        """Whether ``peer`` is one of the proxies identity headers are believed from."""
        if self.any_proxy:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def refusal(self, caller: Caller, need: Level, headers: Headers) -> QAError | None:
        """Why ``caller`` may not use a route that needs ``need``, or ``None``."""
        if caller.origins:
            origin = _header(headers, b"origin").rstrip("/")
            if origin not in caller.origins:
                return Forbidden("this key may not be used from this origin", code="wrong_origin")
        if caller.may(need):
            return None
        if self.mode == "none" or not caller.identified:
            if need in {"write", "admin"} and self.mode == "none":
                return _none_mode_refusal(self.settings, need)
            return Unauthorized("this route needs credentials; send 'Authorization: Bearer <key>'")
        return Forbidden(f"this route needs {need} access", code="insufficient_scope")


def _none_mode_refusal(settings: Settings, need: Level) -> QAError:
    """QA_AUTH=none: the refusal the single admin key always gave."""
    from qa.access import DISABLED

    if not settings.api_key:
        return Forbidden(DISABLED[need], code=f"{need}_disabled")  # type: ignore[index]
    return Unauthorized("missing or wrong API key; send 'Authorization: Bearer <key>'")


def _networks(settings: Settings) -> list[str]:
    """The proxies' addresses and ranges (a clear error, at start-up, for anything else)."""
    out = [p for p in settings.trusted_proxies if p != "*"]
    for value in out:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise InvalidInput(
                f"QA_TRUSTED_PROXIES: {value!r} is not an IP address or CIDR range"
            ) from None
    return out
