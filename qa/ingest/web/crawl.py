"""Crawl a documentation site: the pages its sitemap lists (sitemap indexes followed), or
else the links from the start page within its host and folder, breadth first to a depth;
pages fetched a few at a time through one polite :class:`Fetcher`.

Pages known from the last sync are asked for again conditionally (so a page removed from
the site answers 404 and is removed from the index), and one page is one document: its id
is its canonical URL, and two URLs giving the same page or the same text are indexed once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from qa.ingest.documents import Document, Skip
from qa.ingest.web.extract import Page, PdfReader, read_page
from qa.ingest.web.fetch import Fetcher, FetchParams, Response
from qa.ingest.web.sitemap import read_sitemaps
from qa.ingest.web.urls import Scope, canonical

log = logging.getLogger("qa.ingest.web")

Result = Literal["fetched", "unchanged", "gone", "out_of_scope", "skipped", "failed"]


@dataclass(frozen=True)
class CrawlParams:
    """A crawl's limits (``QA_CRAWL_*``)."""

    max_pages: int = 1000
    max_depth: int = 10
    concurrency: int = 4
    fetch: FetchParams = field(default_factory=FetchParams)
    pdf_reader: PdfReader | None = None  # default: in this process, without a budget


@dataclass(frozen=True)
class Known:
    """What the last sync kept about a URL: its validators and the document it gave."""

    etag: str | None = None
    last_modified: str | None = None
    document_id: str | None = None


@dataclass
class PageResult:
    """What the crawl learnt about one URL."""

    url: str
    result: Result
    reason: str = ""
    status: int = 0
    document: Document | None = None  # when fetched and readable
    document_id: str | None = None  # the document this URL is (canonical URL)
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class CrawlResult:
    """Every URL the crawl touched, and whether it stopped at the page limit."""

    start: str
    pages: list[PageResult] = field(default_factory=list)
    truncated: bool = False
    sitemap: bool = False  # the pages came from the site's sitemap


def crawl(
    start: str,
    params: CrawlParams,
    known: dict[str, Known] | None = None,
    on_page: Callable[[PageResult], None] | None = None,
) -> CrawlResult:
    """Crawl the site at ``start`` (an http(s) URL); ``known`` are the URLs of the last sync."""
    root = canonical(start)
    if root is None:
        raise ValueError(f"not an http(s) address: {start!r}")
    scope = Scope.of(root)
    known = known or {}
    result = CrawlResult(root)
    fetcher = Fetcher(scope, params.fetch)
    try:
        listed = _sitemap_pages(fetcher, scope)
        result.sitemap = bool(listed)
        frontier = [root, *listed]
        for url in known:
            if url not in scope:
                outside = PageResult(url, "out_of_scope", f"outside {scope.describe()}")
                outside.document_id = known[url].document_id  # removed from the index
                result.pages.append(outside)
            elif url not in frontier:
                frontier.append(url)
        _walk(fetcher, frontier, params, known, result, on_page)
    finally:
        fetcher.close()
    _one_document_per_page(result)
    return result


def _sitemap_pages(fetcher: Fetcher, scope: Scope) -> list[str]:
    """In-scope pages of the site's sitemaps: those robots.txt names, else ``sitemap.xml``
    in the start folder or at the host's root."""

    def get(url: str) -> bytes | None:
        if canonical(url) is None or not fetcher.allowed(url):
            return None
        response = fetcher.fetch(url)
        return response.body if response.outcome == "ok" else None

    declared = list(fetcher.robots().site_maps() or [])
    candidates = declared or [scope.describe() + "sitemap.xml", scope.origin + "/sitemap.xml"]
    for first in dict.fromkeys(candidates):
        pages = [u for u in map(canonical, read_sitemaps([first], get)) if u and u in scope]
        if pages:
            return list(dict.fromkeys(pages))
    return []


def _walk(
    fetcher: Fetcher,
    frontier: list[str],
    params: CrawlParams,
    known: dict[str, Known],
    result: CrawlResult,
    on_page: Callable[[PageResult], None] | None,
) -> None:
    """Breadth first, one depth at a time, ``params.concurrency`` pages at once."""
    seen = set(frontier)
    fetched = 0
    depth = 0
    follow_links = not result.sitemap  # a sitemap lists the pages; links are not followed
    with ThreadPoolExecutor(params.concurrency, thread_name_prefix="qa-crawl") as pool:
        while frontier:
            room = params.max_pages - fetched
            if room <= 0:
                result.truncated = True
                log.warning("crawl stopped at %d pages (QA_CRAWL_MAX_PAGES)", params.max_pages)
                break
            batch, frontier = frontier[:room], frontier[room:]
            fetched += len(batch)
            visits = pool.map(lambda url: _visit(fetcher, url, known.get(url), params), batch)
            following: list[str] = []
            for page, links in visits:
                result.pages.append(page)
                if on_page is not None:
                    on_page(page)
                if follow_links and depth < params.max_depth:
                    following += [u for u in links if u not in seen and u in fetcher.scope]
                    seen.update(following)
            frontier += list(dict.fromkeys(following))
            depth += 1


def _visit(
    fetcher: Fetcher, url: str, known: Known | None, params: CrawlParams
) -> tuple[PageResult, list[str]]:
    """Fetch and read one page; its result and the in-scope links it has."""
    known = known or Known()
    if not fetcher.allowed(url):
        page = PageResult(url, "out_of_scope", fetcher.robots_note or "disallowed by robots.txt")
        page.document_id = known.document_id  # removed from the index
        return page, []
    response = fetcher.fetch(url, known.etag, known.last_modified)
    page = PageResult(
        url,
        "fetched",
        status=response.status,
        etag=response.etag or known.etag,
        last_modified=response.last_modified or known.last_modified,
    )
    if response.outcome == "left_scope":  # a known page that now leads out is removed
        page.result = "out_of_scope" if known.document_id else "skipped"
        page.reason, page.document_id = response.reason, known.document_id
        return page, []
    if response.outcome != "ok":
        page.result = "failed" if response.outcome == "failed" else response.outcome
        page.reason = response.reason or ("not modified" if response.outcome == "unchanged" else "")
        page.document_id = known.document_id
        return page, []
    return _read(response, page, fetcher.scope, params.pdf_reader)


def _read(
    response: Response, page: PageResult, scope: Scope, pdf_reader: PdfReader | None
) -> tuple[PageResult, list[str]]:
    """The document of a fetched body, and its links (resolved against where it was read)."""
    base = response.final_url or response.url
    charset = _charset(response.headers.get("content-type", ""))
    try:
        read: Page = read_page(base, response.body, response.content_type, charset, pdf_reader)
    except Skip as skip:
        page.result, page.reason = "skipped", skip.reason
        return page, []
    links = [u for u in (canonical(href, base) for href in read.links) if u is not None]
    if read.document is None:
        page.result, page.reason = "skipped", read.skip
        return page, links if read.follow else []
    target = canonical(read.canonical, base) if read.canonical else None
    document_id = target if target is not None and target in scope else canonical(base) or base
    read.document.id = read.document.source = page.document_id = document_id
    page.document = read.document
    return page, links if read.follow else []


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


def _one_document_per_page(result: CrawlResult) -> None:
    """Two URLs of one page (the same canonical URL, or the same text) give one document:
    the URL that is the canonical one (else the shortest) keeps it; the others are skipped."""
    fetched = [p for p in result.pages if p.document is not None]
    fetched.sort(key=lambda p: (p.url != p.document_id, len(p.url), p.url))
    by_id: set[str] = set()
    by_text: dict[str, str] = {}
    for page in fetched:
        assert page.document is not None
        text = hashlib.sha256(page.document.text.encode("utf-8", "surrogatepass")).hexdigest()
        twin = page.document_id if page.document_id in by_id else by_text.get(text)
        if twin is not None:
            page.result, page.reason = "skipped", f"duplicate of {twin}"
            page.document, page.document_id = None, twin
            continue
        by_id.add(page.document.id)
        by_text[text] = page.document.id
