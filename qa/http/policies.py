"""What each route costs and needs, looked up before the router runs (so the gate can refuse
a request before reading its body)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

Auth = Literal["none", "write", "admin"]
Body = Literal["none", "json", "upload"]
Errors = Literal["qa", "openai"]


@dataclass(frozen=True)
class Policy:
    """What a route costs and needs: rate-limit tokens, the caller's role, the body it may take."""

    route: str  # the route template ("unmatched" for no route), as logged and counted
    cost: float = 1.0  # tokens taken from the client's bucket (a question costs 1)
    auth: Auth = "none"
    body: Body = "none"
    errors: Errors = "qa"  # the shape of its errors: ours, or OpenAI's on the compatible routes


UNMATCHED = Policy("unmatched", cost=0.2)
STATIC = Policy("static", cost=0.05)  # the page, the widget, the docs: cheap, but not free
# What each route costs from the client's token bucket (a question is 1), who may call it,
# and the body it may send. Routes not listed cost 0.2 and take no body.
POLICIES: dict[tuple[str, str], Policy] = {
    ("POST", "/v1/ask"): Policy("/v1/ask", cost=1.0, body="json"),
    # the OpenAI-compatible routes: the same limits as /v1/ask and the collection listing
    ("POST", "/v1/chat/completions"): Policy(
        "/v1/chat/completions", cost=1.0, body="json", errors="openai"
    ),
    ("GET", "/v1/models"): Policy("/v1/models", cost=0.2, errors="openai"),
    ("GET", "/v1/models/{model}"): Policy("/v1/models/{model}", cost=0.2, errors="openai"),
    ("GET", "/v1/search"): Policy("/v1/search", cost=1.0),
    ("GET", "/v1/documents/{document_id:path}"): Policy(
        "/v1/documents/{document_id:path}", cost=1.0
    ),
    ("GET", "/documents/{document_id:path}"): Policy("/documents/{document_id:path}", cost=1.0),
    ("POST", "/v1/collections/{name}/documents"): Policy(
        "/v1/collections/{name}/documents", cost=1.0, auth="write", body="upload"
    ),
    ("DELETE", "/v1/collections/{name}/documents/{document_id:path}"): Policy(
        "/v1/collections/{name}/documents/{document_id:path}", cost=1.0, auth="write"
    ),
    ("POST", "/v1/collections/{name}/reindex"): Policy(
        "/v1/collections/{name}/reindex", cost=1.0, auth="write"
    ),
    # a verdict writes a row: it costs what a question does, and its body is JSON-limited
    ("POST", "/v1/feedback"): Policy("/v1/feedback", cost=1.0, body="json"),
    ("GET", "/v1/feedback"): Policy("/v1/feedback", cost=0.2, auth="admin"),
    ("GET", "/v1/feedback/report"): Policy("/v1/feedback/report", cost=1.0, auth="admin"),
    ("GET", "/metrics"): Policy("/metrics", cost=0.2, auth="admin"),
    ("GET", "/v1/collections/{name}/sources"): Policy(
        "/v1/collections/{name}/sources", cost=0.2, auth="admin"
    ),
    ("GET", "/healthz"): Policy("/healthz", cost=0.0),
}
OPENAI_PATHS = frozenset(path for (_, path), p in POLICIES.items() if p.errors == "openai")
STATIC_PATHS = frozenset(
    {"/", "/widget.js", "/admin", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/assets"}
)


# open to anyone in every auth mode: the pages and scripts (they hold no documents), health
OPEN_ROUTES = frozenset({"static", "unmatched", "/healthz", "/readyz"})


def needs(policy: Policy) -> Literal["none", "read", "write", "admin"]:
    """The access level a route needs: its policy's, else read (open routes need none)."""
    if policy.auth != "none":
        return policy.auth
    return "none" if policy.route in OPEN_ROUTES or policy in (STATIC, UNMATCHED) else "read"


def policy_of(routes: Sequence[BaseRoute], scope: Scope) -> Policy:
    """The policy of the route among ``routes`` that a request is for."""
    method = scope.get("method", "")
    for route in routes:
        match = route.matches(scope)[0]
        if match == Match.NONE:
            continue
        path = str(getattr(route, "path", ""))
        if path in STATIC_PATHS:
            return STATIC
        if match == Match.FULL:
            return POLICIES.get((method, path), Policy(path, cost=0.2))
        errors: Errors = "openai" if path in OPENAI_PATHS else "qa"
        # the path exists, the method doesn't: a 405, body unread
        return Policy(path, cost=0.2, errors=errors)
    return UNMATCHED
