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
import ipaddress
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("qa.access")

Auth = Literal["none", "write", "admin"]
Body = Literal["none", "json", "upload"]


@dataclass(frozen=True)
class Policy:
    """What a route costs and needs: rate-limit tokens, the caller's role, the body it may take."""

    route: str  # the route template ("unmatched" for no route), as logged and counted
    cost: float = 1.0  # tokens taken from the client's bucket (a question costs 1)
    auth: Auth = "none"
    body: Body = "none"


UNMATCHED = Policy("unmatched", cost=0.2)
Authorize = Callable[[Scope, Auth], "tuple[int, str, str] | None"]


async def send_error(send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    """Send a JSON error response ``{"error": {"code", "message"}}`` directly."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can coexist)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "qa_requests_total", "HTTP requests by route and status", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "qa_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.errors = Counter(
            "qa_errors_total", "responses with status >= 400 by route and code", ["route", "status"], registry=self.registry
        )
        self.rate_limited = Counter(
            "qa_rate_limited_total", "requests refused by the rate limiter", ["route"], registry=self.registry
        )
        self.documents = Gauge("qa_collection_documents", "documents per collection", ["collection"], registry=self.registry)
        self.passages = Gauge("qa_collection_passages", "passages per collection", ["collection"], registry=self.registry)


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
            elapsed = time.perf_counter() - started
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


def client_key(scope: Scope) -> str:
    """The rate-limit bucket of a request: its IPv4 address, or the /64 of an IPv6 address
    (one host on IPv6 usually holds a whole /64, so per-address buckets would be free to multiply)."""
    host = (scope.get("client") or ("unknown", 0))[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return str(host)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimiter:
    """A token bucket per client: ``per_minute`` tokens sustained, ``burst`` at once.

    Buckets live in insertion-ordered dict kept in last-use order, so expiring idle
    clients looks only at the oldest entries (O(1) amortised per call, never a scan), and
    the table never holds more than ``max_clients`` (the least recently seen go first;
    a forgotten client comes back with a full bucket, which is what an idle one has anyway).
    """

    def __init__(self, per_minute: int, burst: int, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self.full_after = self.burst / self.rate  # an idle bucket is full again after this
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, cost: float = 1.0) -> float:
        """0 when allowed (``cost`` tokens taken), else the seconds until it would be."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= cost
            self._buckets[client] = (tokens - cost if allowed else tokens, now)  # now the newest entry
            self._expire(now)
            return 0.0 if allowed else (cost - tokens) / self.rate

    def _expire(self, now: float) -> None:
        while self._buckets:
            oldest, (_, last) = next(iter(self._buckets.items()))
            if now - last <= self.full_after and len(self._buckets) <= self.max_clients:
                return
            del self._buckets[oldest]


class GateMiddleware:
    """Rate limit, authentication and body limits, in that order, before the app runs."""

    def __init__(
        self,
        app: ASGIApp,
        policy_of: Callable[[Scope], Policy],
        authorize: Authorize,
        metrics: Metrics,
        limiter: RateLimiter | None,
        max_body_bytes: int,
        max_upload_bytes: int,
        read_timeout_s: float = 10.0,
    ) -> None:
        self.app = app
        self.policy_of = policy_of
        self.authorize = authorize
        self.metrics = metrics
        self.limiter = limiter
        self.limits = {"none": max_body_bytes, "json": max_body_bytes, "upload": max_upload_bytes}
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)  # CORS preflights carry no credentials and no body
            return
        policy = self.policy_of(scope)
        scope["qa.policy"] = policy
        if self.limiter is not None and policy.cost > 0:
            wait = self.limiter.take(client_key(scope), policy.cost)
            if wait > 0 and self.authorize(scope, "admin") is not None:  # the admin key is never limited
                self.metrics.rate_limited.labels(policy.route).inc()
                seconds = max(1, math.ceil(wait))
                await send_error(
                    send, 429, "rate_limited", f"too many requests; try again in {seconds} s", {"Retry-After": str(seconds)}
                )
                return
        if policy.auth != "none":
            refused = self.authorize(scope, policy.auth)
            if refused is not None:
                await send_error(send, *refused)
                return
        limit = self.limits[policy.body]
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await send_error(send, 400, "bad_request", "invalid Content-Length header")
                return
            if too_big:
                await send_error(send, 413, "payload_too_large", f"request body is over the {limit}-byte limit")
                return
        if policy.body == "none" or scope.get("method") not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)  # the body (if any) is never read
            return
        body = await self._read_body(receive, send, limit)
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

    async def _read_body(self, receive: Receive, send: Send, limit: int) -> bytes | None:
        """The whole body (at most ``limit`` bytes), or ``None`` once an error was sent.

        One deadline for the whole body, so a client trickling a byte at a time can't hold on.
        """
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.read_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                await send_error(send, 408, "request_timeout", f"request body not received within {self.read_timeout_s:g} s")
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_error(send, 413, "payload_too_large", f"request body is over the {limit}-byte limit")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class InFlight:
    """Counts questions being worked on, including ones whose request was abandoned at the
    deadline (their threads run on): at ``limit`` new questions are refused instead of queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self._count >= self.limit:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        return self._count
