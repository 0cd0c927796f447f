"""Per-client rate limiting and the bound on questions being worked on at once."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict

from starlette.types import Scope


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
            # now the newest entry
            self._buckets[client] = (tokens - cost if allowed else tokens, now)
            self._expire(now)
            return 0.0 if allowed else (cost - tokens) / self.rate

    def _expire(self, now: float) -> None:
        while self._buckets:
            oldest, (_, last) = next(iter(self._buckets.items()))
            if now - last <= self.full_after and len(self._buckets) <= self.max_clients:
                return
            del self._buckets[oldest]


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
