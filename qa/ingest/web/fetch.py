"""One HTTP client per crawl: robots.txt obeyed, a politeness delay between requests,
conditional requests, redirects followed only within the crawl's scope, and every response
read up to a size limit and a time budget."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from qa import __version__
from qa.ingest.web.urls import Scope, canonical

# the project has no public home page yet to link here; the name is what robots.txt rules match
USER_AGENT = f"qa-bot/{__version__} (self-hosted question-answering indexer)"
ROBOTS_NAME = "qa-bot"  # the name robots.txt rules address
MAX_REDIRECTS = 10
MAX_ROBOTS_BYTES = 512 * 1024  # Google's limit is 500 KiB; past it the rest is ignored

# "left_scope": a redirect out of the crawl's scope or to a page robots.txt disallows
Outcome = Literal["ok", "unchanged", "gone", "skipped", "left_scope", "failed"]


@dataclass(frozen=True)
class FetchParams:
    """Limits of one crawl's requests (from ``QA_CRAWL_*``)."""

    max_bytes: int = 10 * 2**20
    timeout_s: float = 15.0
    delay_s: float = 0.25


@dataclass
class Response:
    """What fetching one URL gave: the body (``ok``), or why there is none."""

    url: str  # the canonical URL asked for
    outcome: Outcome
    final_url: str = ""  # after redirects within scope
    status: int = 0
    reason: str = ""
    content_type: str = ""
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Fetcher:
    """Fetches pages of one scope politely; safe to call from several threads."""

    def __init__(self, scope: Scope, params: FetchParams) -> None:
        self.scope = scope
        self.params = params
        self.client = httpx.Client(
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(params.timeout_s),
            follow_redirects=False,  # each hop is checked against the scope and robots.txt
        )
        self._robots: RobotFileParser | None = None
        self.robots_note = ""  # why robots.txt allows nothing, when it could not be read
        self._robots_lock = threading.Lock()
        self._gate = threading.Lock()
        self._next_start = 0.0

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ robots.txt
    def robots(self) -> RobotFileParser:
        """The host's robots.txt, read once (missing: everything allowed; unreachable or a
        server error: nothing allowed, as RFC 9309 asks)."""
        with self._robots_lock:
            if self._robots is None:
                self._robots = self._read_robots()
            return self._robots

    def _read_robots(self) -> RobotFileParser:
        parser = RobotFileParser(self.scope.origin + "/robots.txt")
        response = self._get(self.scope.origin + "/robots.txt", {}, MAX_ROBOTS_BYTES, cut=True)
        if response.outcome == "ok":
            parser.parse(response.body.decode("utf-8", "replace").splitlines())
        elif 400 <= response.status < 500:
            parser.allow_all = True
        else:
            parser.disallow_all = True
            self.robots_note = f"robots.txt unreadable ({response.reason}): nothing is allowed"
        return parser

    def allowed(self, url: str) -> bool:
        return self.robots().can_fetch(ROBOTS_NAME, url)

    def delay(self) -> float:
        """Seconds between two requests' starts: ours, or robots.txt's Crawl-delay if longer."""
        asked = self.robots().crawl_delay(ROBOTS_NAME)
        return max(self.params.delay_s, float(asked or 0))

    # ------------------------------------------------------------------ pages
    def fetch(self, url: str, etag: str | None = None, modified: str | None = None) -> Response:
        """GET ``url`` (conditionally when ``etag`` or ``modified`` are known), following
        redirects that stay in scope and are allowed by robots.txt."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        seen = {url}
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self._wait_turn()
            response = self._get(current, headers, self.params.max_bytes)
            response.url, response.final_url = url, current
            location = response.headers.get("location")
            if not (300 <= response.status < 400 and response.status != 304 and location):
                return response
            target = canonical(location, current)
            if target is None or target not in self.scope:
                return _stop(url, "left_scope", f"redirects out of scope to {location}", current)
            if target in seen:
                return _stop(url, "failed", f"redirect loop at {target}", current)
            if not self.allowed(target):
                return _stop(url, "left_scope", f"redirects to {target}, disallowed by robots.txt")
            seen.add(target)
            current = target
        return _stop(url, "failed", f"more than {MAX_REDIRECTS} redirects", current)

    def _wait_turn(self) -> None:
        """Keep at least :meth:`delay` seconds between the starts of two requests."""
        pause = self.delay()
        with self._gate:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + pause
        if start > now:
            time.sleep(start - now)

    def _get(self, url: str, headers: dict[str, str], limit: int, cut: bool = False) -> Response:
        """One request; the body is read up to ``limit`` bytes (past it: skipped, or with
        ``cut`` the part read) within the time budget."""
        deadline = time.monotonic() + self.params.timeout_s
        try:
            with self.client.stream("GET", url, headers=headers) as reply:
                response = _head(url, reply)
                if response.outcome != "ok":
                    return response
                declared = int(reply.headers.get("content-length") or 0)
                if declared > limit and not cut:
                    return _too_big(url, limit, f"{declared / 2**20:.1f} MiB")
                body = bytearray()
                for chunk in reply.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        if cut:
                            break
                        return _too_big(url, limit, "larger")  # the rest is never read
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the whole response took too long")
                response.body = bytes(body[:limit])
                return response
        except httpx.TimeoutException:
            reason = f"timed out after {self.params.timeout_s:g} s"
            return _stop(url, "failed", reason)
        except httpx.HTTPError as exc:
            return _stop(url, "failed", f"{exc.__class__.__name__}: {exc}")


def _head(url: str, reply: httpx.Response) -> Response:
    """The response's outcome from its status line and headers alone."""
    status = reply.status_code
    headers = {k.lower(): v for k, v in reply.headers.items()}
    response = Response(
        url,
        "ok",
        status=status,
        content_type=headers.get("content-type", "").split(";")[0].strip().lower(),
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
        headers=headers,
    )
    if status == 304:
        response.outcome = "unchanged"
    elif status in (404, 410):
        response.outcome, response.reason = "gone", f"HTTP {status}"
    elif 300 <= status < 400:
        response.outcome = "skipped"
        response.reason = f"HTTP {status} without a Location" if "location" not in headers else ""
    elif status != 200:
        response.outcome, response.reason = "failed", f"HTTP {status}"
    return response


def _too_big(url: str, limit: int, size: str) -> Response:
    return _stop(
        url,
        "skipped",
        f"page is {size}, over the {limit / 2**20:g} MiB limit (raise QA_CRAWL_MAX_PAGE_MB)",
    )


def _stop(url: str, outcome: Outcome, reason: str, final: str = "") -> Response:
    return Response(url, outcome, final_url=final or url, reason=reason)


def host_of(url: str) -> str:
    return urlsplit(url).netloc
