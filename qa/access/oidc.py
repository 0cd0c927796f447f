"""QA_AUTH=oidc: a bearer JWT checked with PyJWT against the issuer's published keys.

The keys (JWKS) come from the address the issuer's discovery document names
(``{QA_OIDC_ISSUER}/.well-known/openid-configuration``), are cached, and are fetched again
when a token names a key id the cache does not hold (the issuer rotated its keys), but not
more often than every ``QA_OIDC_REFETCH_S`` seconds, so a stream of tokens with made-up key
ids can't make this server hammer the issuer.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import jwt

from qa.access.caller import Caller
from qa.config import Settings
from qa.errors import InvalidInput, ServiceBusy, Unauthorized

# asymmetric algorithms only: an HMAC "signature" made with the public key, or "none",
# must never pass (the algorithm confusion attacks)
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
MAX_DOCUMENT_BYTES = 1024 * 1024  # a discovery document or key set larger than this is refused
FETCH_TIMEOUT_S = 5.0


def _get_json(url: str) -> dict:
    """A JSON object from ``url`` (the issuer's discovery document or key set)."""
    if not url.startswith(("https://", "http://")):
        raise ServiceBusy(f"the identity provider's address {url!r} is not http(s)")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
            data = json.loads(response.read(MAX_DOCUMENT_BYTES + 1)[:MAX_DOCUMENT_BYTES])
    except (OSError, ValueError) as exc:
        raise ServiceBusy(f"could not read the identity provider's keys ({exc})") from None
    if not isinstance(data, dict):
        raise ServiceBusy("the identity provider's answer is not a JSON object")
    return data


class TokenVerifier:
    """Checks tokens of one issuer for one audience; knows the issuer's keys."""

    def __init__(
        self, issuer: str, audience: str, groups_claim: str = "groups", refetch_s: float = 60.0
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.groups_claim = groups_claim
        self.refetch_s = refetch_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self.fetches = 0  # how many times the key set was read (for tests and logs)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        if not settings.oidc_issuer or not settings.oidc_audience:
            raise InvalidInput("QA_AUTH=oidc needs QA_OIDC_ISSUER and QA_OIDC_AUDIENCE")
        return cls(
            settings.oidc_issuer.rstrip("/"),
            settings.oidc_audience,
            settings.oidc_groups_claim,
            settings.oidc_refetch_s,
        )

    def caller(self, token: str) -> Caller:
        """The caller a valid token names; :class:`Unauthorized` for any other token."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a JWT") from None
        key = self._key(str(kid or ""))
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
                leeway=30,  # clocks of the issuer and this server differ by a few seconds
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        groups = claims.get(self.groups_claim) or []
        if isinstance(groups, str):
            groups = groups.split(",")
        names = frozenset(str(g).strip() for g in groups if str(g).strip())
        return Caller(str(claims["sub"]), "read", names)

    def _key(self, kid: str) -> jwt.PyJWK:
        """The issuer's key ``kid``, reading the key set again when it is unknown (and the
        last read is older than the floor)."""
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self.refetch_s:
                self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("the token is signed with a key the issuer does not publish")
        return key

    def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        self.fetches += 1
        discovery = _get_json(f"{self.issuer}/.well-known/openid-configuration")
        try:
            found = jwt.PyJWKSet.from_dict(_get_json(str(discovery["jwks_uri"])))
        except (KeyError, jwt.PyJWTError) as exc:
            raise ServiceBusy(f"the identity provider's key set is unusable ({exc})") from None
        self._keys = {str(k.key_id or ""): k for k in found.keys}
