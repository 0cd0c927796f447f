"""The Prometheus metrics of one app: requests, latency, errors, rate limiting, collection sizes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can coexist)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "qa_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "qa_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.errors = Counter(
            "qa_errors_total",
            "responses with status >= 400 by route and code",
            ["route", "status"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "qa_rate_limited_total",
            "requests refused by the rate limiter",
            ["route"],
            registry=self.registry,
        )
        self.documents = Gauge(
            "qa_collection_documents",
            "documents per collection",
            ["collection"],
            registry=self.registry,
        )
        self.passages = Gauge(
            "qa_collection_passages",
            "passages per collection",
            ["collection"],
            registry=self.registry,
        )

    def collection_size(self, name: str, documents: int, passages: int) -> None:
        """Record a collection's size (shown by the gauges)."""
        self.documents.labels(name).set(documents)
        self.passages.labels(name).set(passages)
