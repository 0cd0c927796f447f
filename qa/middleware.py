"""ASGI middleware: body limits and read timeouts, rate limiting, metrics and access logs."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("qa.access")


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
    return getattr(route, "path", None) or ("static" if scope.get("path", "/").startswith("/assets") else "unmatched")


class ObservabilityMiddleware:
    """Counts and times every request and logs one structured line for it."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, json_logs: bool = True, resolve: Callable[[Scope], str | None] | None = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.json_logs = json_logs
        self.resolve = resolve  # the route template of a request refused before routing (413, 408, 429)

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
            if route == "unmatched" and self.resolve is not None:
                route = self.resolve(scope) or route
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
            access_log.info(json.dumps(record) if self.json_logs else " ".join(f"{k}={v}" for k, v in record.items()))


class BodyLimitMiddleware:
    """Refuses bodies over the limit (413) and bodies that trickle in too slowly (408)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_max_bytes: int,
        upload_prefix: str = "/v1/collections/",
        read_timeout_s: float = 10.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes
        self.upload_prefix = upload_prefix
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_max_bytes if scope["path"].startswith(self.upload_prefix) else self.max_bytes
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await send_error(send, 400, "bad_request", "invalid Content-Length header")
                return
            if too_big:
                await send_error(send, 413, "payload_too_large", f"request body is over the {limit}-byte limit")
                return
        if scope.get("method") not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        # Buffer the body (at most ``limit`` bytes), so an oversized or stalled upload is
        # refused here, before any route sees it.
        chunks: list[bytes] = []
        size = 0
        # One deadline for the whole body, so a client trickling a byte at a time can't hold on.
        deadline = time.monotonic() + self.read_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                await send_error(send, 408, "request_timeout", f"request body not received within {self.read_timeout_s:g} s")
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_error(send, 413, "payload_too_large", f"request body is over the {limit}-byte limit")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RateLimiter:
    """A token bucket per client: ``per_minute`` sustained, ``burst`` at once."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when allowed, else the seconds to wait before the next request is allowed."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                if len(self._buckets) > 10_000:
                    self._forget(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate

    def _forget(self, now: float) -> None:
        full_after = self.burst / self.rate
        for client, (_, last) in list(self._buckets.items()):
            if now - last > full_after:
                del self._buckets[client]


class RateLimitMiddleware:
    """429 with ``Retry-After`` when a client exceeds its budget on the question routes."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, metrics: Metrics, paths: tuple[str, ...]) -> None:
        self.app = app
        self.limiter = limiter
        self.metrics = metrics
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths and scope.get("method") != "OPTIONS":
            client = (scope.get("client") or ("unknown", 0))[0]
            wait = self.limiter.take(client)
            if wait > 0:
                self.metrics.rate_limited.labels(scope["path"]).inc()
                await send_error(
                    send, 429, "rate_limited",
                    f"too many requests; try again in {math.ceil(wait)} s",
                    {"Retry-After": str(math.ceil(wait))},
                )
                return
        await self.app(scope, receive, send)
