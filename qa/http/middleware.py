"""ASGI middleware: the request gate (rate limit, authentication, body limits) and access logs.

Order of work for every request, outermost first, so that nothing expensive happens for a
client that is not allowed it:

1. :class:`ObservabilityMiddleware` times the request and logs one line.
2. :class:`GateMiddleware` resolves the route's :class:`Policy`, charges the client's token
   bucket (429), checks the caller's key for routes that need one (401/403) *before* a byte
   of the body is read, and only then buffers the body under the limit the policy allows
   (413 when over it, 408 when it trickles in). Unknown routes never have their body read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.access import Authenticator, Caller
from qa.config import Settings
from qa.errors import BadRequest, QAError
from qa.http.errors import PayloadTooLarge, RateLimited, RequestTimeout, send_error
from qa.http.limits import RateLimiter, client_key
from qa.http.metrics import Metrics
from qa.http.policies import Policy, needs

access_log = logging.getLogger("qa.access")


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    if getattr(route, "path", None):
        return str(route.path)  # type: ignore[union-attr]
    policy = scope.get("qa.policy")
    if policy is not None:
        return str(policy.route)
    return "static" if scope.get("path", "/").startswith("/assets") else "unmatched"


def _plain(value: object) -> str:
    """A log value on one line: control characters (a ``%0A`` in a URL) are escaped, never written."""
    text = str(value)
    if text.isprintable():
        return text
    return json.dumps(text)[1:-1]


class ObservabilityMiddleware:
    """Counts and times every request and logs one structured line for it."""

    def __init__(self, app: ASGIApp, metrics: Metrics, json_logs: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.json_logs = json_logs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = _route_of(scope)
        method = scope.get("method", "")
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(elapsed)
        if status >= 400:
            self.metrics.errors.labels(route, str(status)).inc()
        record = {
            "method": method,
            "route": route,
            "path": scope.get("path", "")[:200],
            "status": status,
            "ms": round(elapsed * 1000, 1),
            "collection": scope.get("state", {}).get("collection"),
            "client": (scope.get("client") or ("", 0))[0],
        }
        if self.json_logs:
            access_log.info(json.dumps(record))
        else:
            access_log.info(" ".join(f"{k}={_plain(v)}" for k, v in record.items()))


class GateMiddleware:
    """Rate limit, authentication and body limits, in that order, before the app runs."""

    def __init__(
        self,
        app: ASGIApp,
        policy_of: Callable[[Scope], Policy],
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.policy_of = policy_of
        self.settings = settings
        self.metrics = metrics
        per_minute = settings.rate_limit_per_minute
        self.limiter = (
            RateLimiter(per_minute, settings.rate_limit_burst) if per_minute > 0 else None
        )
        self.limits = {
            "none": settings.max_body_bytes,
            "json": settings.max_body_bytes,
            "upload": settings.max_upload_bytes,
        }
        self.read_timeout_s = settings.body_read_timeout_s
        self.auth = Authenticator(settings)
        self.key_limiters: dict[str, RateLimiter] = {}  # a key's own rate, by key name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)  # CORS preflights carry no credentials and no body
            return
        policy = self.policy_of(scope)
        scope["qa.policy"] = policy
        refusal = self._refusal(scope, policy)
        if refusal is not None:
            await send_error(send, refusal, policy.errors)
            return
        if policy.body == "none" or scope.get("method") not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)  # the body (if any) is never read
            return
        try:
            body = await self._read_body(receive, self.limits[policy.body])
        except QAError as error:
            await send_error(send, error, policy.errors)
            return
        if body is None:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _refusal(self, scope: Scope, policy: Policy) -> QAError | None:
        """Why the request is refused before its body is read, or ``None``."""
        headers = scope.get("headers", [])
        peer = scope.get("qa.peer") or (scope.get("client") or ("", 0))[0]
        try:
            caller, wrong = self.auth.resolve(headers, peer), None
        except QAError as error:
            caller, wrong = None, error
        # the admin key is never limited; wrong credentials are charged like any request
        if policy.cost > 0 and (caller is None or caller.scope != "admin"):
            wait = self._wait(scope, caller, policy.cost)
            if wait > 0:
                self.metrics.rate_limited.labels(policy.route).inc()
                return RateLimited(max(1, math.ceil(wait)))
        if caller is None:
            return wrong
        scope["qa.caller"] = caller
        refused = self.auth.refusal(caller, needs(policy), headers)
        if refused is not None:
            return refused
        limit = self.limits[policy.body]
        declared = dict(headers).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                return BadRequest("invalid Content-Length header")
            if too_big:
                return PayloadTooLarge(limit)
        return None

    def _wait(self, scope: Scope, caller: Caller | None, cost: float) -> float:
        """Seconds until the request's address and key (with its own rate) have tokens."""
        wait = self.limiter.take(client_key(scope), cost) if self.limiter is not None else 0.0
        if caller is not None and caller.rate_per_minute > 0:
            per_minute = caller.rate_per_minute
            limiter = self.key_limiters.get(caller.key)
            if limiter is None or not math.isclose(limiter.rate * 60, per_minute):
                # a burst of ten seconds' worth: a page's few requests at once, not a minute's
                burst = max(1, round(per_minute / 6))
                limiter = self.key_limiters[caller.key] = RateLimiter(per_minute, burst)  # type: ignore[arg-type]
            wait = max(wait, limiter.take(caller.key, cost))
        return wait

    async def _read_body(self, receive: Receive, limit: int) -> bytes | None:
        """The whole body (at most ``limit`` bytes), or ``None`` when the client left.

        One deadline for the whole body, so a client trickling a byte at a time can't hold on.
        """
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.read_timeout_s
        while True:
            try:
                left = max(0.0, deadline - time.monotonic())
                message = await asyncio.wait_for(receive(), timeout=left)
            except TimeoutError:
                seconds = f"{self.read_timeout_s:g}"
                raise RequestTimeout(f"request body not received within {seconds} s") from None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class PeerMiddleware:
    """Keeps the address the connection came from (``qa.peer``) before the proxy-header
    middleware replaces the client with the forwarded one: identity headers are believed
    only from a trusted proxy, which is the peer, not the client it names."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["qa.peer"] = (scope.get("client") or ("", 0))[0]
        await self.app(scope, receive, send)
