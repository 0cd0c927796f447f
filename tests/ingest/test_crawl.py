"""The crawler against a real local HTTP server (tests/ingest/site_server.py): scope,
robots.txt, sitemaps, redirects, errors, limits, content types and one document per page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qa.ingest.web import (
    USER_AGENT,
    CrawlParams,
    CrawlResult,
    FetchParams,
    Known,
    PageResult,
    crawl,
)
from qa.ingest.web.extract import read_page
from qa.ingest.web.fetch import Fetcher
from qa.ingest.web.urls import Scope, canonical
from tests.ingest.site_server import FURNITURE_WORDS, Route, Site, docs_site, serving

PARAMS = CrawlParams(
    max_pages=100,
    max_depth=3,
    concurrency=4,
    fetch=FetchParams(max_bytes=100_000, timeout_s=1.0, delay_s=0.0),
)


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[Site, str]]:
    site = docs_site()
    with serving(site) as base:
        yield site, base


@pytest.fixture(scope="module")
def crawled(site: tuple[Site, str]) -> CrawlResult:
    _, base = site
    return crawl(base + "/docs/", PARAMS)


def _page(result: CrawlResult, url: str) -> PageResult:
    matches = [p for p in result.pages if p.url == url]
    assert len(matches) == 1, (url, [p.url for p in result.pages])
    return matches[0]


def test_canonical_urls_drop_fragments_and_tracking() -> None:
    assert (
        canonical("HTTP://Example.COM:80/a/b.html?utm_source=x&id=3&fbclid=9#top")
        == "http://example.com/a/b.html?id=3"
    )
    assert canonical("../c.html", "https://h/a/b/") == "https://h/a/c.html"
    assert canonical("mailto:someone@example.com") is None
    assert canonical("javascript:void(0)") is None
    scope = Scope.of("https://h/guide/index.html")
    assert "https://h/guide/x/y.html" in scope and "https://h/guide/" in scope
    assert "https://h/guidebook/" not in scope and "http://h/guide/" not in scope
    assert "https://h/guide/a" in Scope.of("https://h/guide")


def test_pages_in_scope_are_documents_with_their_url(crawled: CrawlResult, site: tuple) -> None:
    _, base = site
    documents = {p.document.id: p.document for p in crawled.pages if p.document}
    assert set(documents) == {
        f"{base}/docs/",
        f"{base}/docs/install.html",
        f"{base}/docs/config.html",
        f"{base}/docs/old.html",
        f"{base}/docs/renamed.html",
        f"{base}/docs/manual.pdf",
    }
    for document in documents.values():
        assert document.source == document.id
    assert documents[f"{base}/docs/install.html"].title == "Installing"
    assert "disaster recovery" in documents[f"{base}/docs/manual.pdf"].text
    assert not crawled.truncated and not crawled.sitemap


def test_main_content_only_headings_kept(crawled: CrawlResult) -> None:
    for page in crawled.pages:
        if page.document is None:
            continue
        for word in FURNITURE_WORDS:
            assert word not in page.document.text, (page.url, word, page.document.text)
    install = next(p.document for p in crawled.pages if p.url.endswith("/install.html"))
    assert install is not None
    assert "\n\nUpgrading\n\n" in install.text  # the heading is its own paragraph


def test_robots_txt_obeyed_and_user_agent_named(crawled: CrawlResult, site: tuple) -> None:
    served, base = site
    assert "/docs/private/secret.html" not in served.paths_requested()
    assert _page(crawled, f"{base}/docs/private/secret.html").result == "out_of_scope"
    agents = {h.get("user-agent") for _, h in served.requests}
    assert agents == {USER_AGENT} and USER_AGENT.startswith("qa-bot/")


def test_out_of_scope_links_never_fetched(crawled: CrawlResult, site: tuple) -> None:
    served, _ = site
    assert "/outside.html" not in served.paths_requested()
    assert not any(p.url.endswith("/outside.html") for p in crawled.pages)


def test_redirects(crawled: CrawlResult, site: tuple) -> None:
    _, base = site
    moved = _page(crawled, f"{base}/docs/moved.html")
    renamed = _page(crawled, f"{base}/docs/renamed.html")
    # the redirect and its target are one page: the target's URL keeps the document
    assert renamed.document is not None and renamed.result == "fetched"
    assert moved.result == "skipped" and "duplicate of" in moved.reason
    away = _page(crawled, f"{base}/docs/away.html")
    assert away.result == "skipped" and "out of scope" in away.reason
    loop = _page(crawled, f"{base}/docs/loop-a.html")
    assert loop.result == "failed" and "redirect loop" in loop.reason


@pytest.mark.parametrize(
    ("path", "result", "reason"),
    [
        ("missing.html", "gone", "HTTP 404"),
        ("removed.html", "gone", "HTTP 410"),
        ("broken.html", "failed", "HTTP 500"),
        ("big.html", "skipped", "over the 0.0953674 MiB limit"),
        ("binary.html", "skipped", "binary content"),
        ("slow.html", "failed", "timed out after 1 s"),
        ("logo.png", "skipped", "unsupported content type image/png"),
    ],
)
def test_bad_pages_have_a_reason(
    crawled: CrawlResult, site: tuple, path: str, result: str, reason: str
) -> None:
    _, base = site
    page = _page(crawled, f"{base}/docs/{path}")
    assert page.result == result and reason in page.reason, page


def test_one_page_under_two_urls_is_one_document(crawled: CrawlResult, site: tuple) -> None:
    _, base = site
    copy = _page(crawled, f"{base}/docs/copy.html")
    assert copy.document is None and copy.document_id == f"{base}/docs/install.html"
    assert "duplicate of" in copy.reason
    # the tracked link (utm_* and a fragment) was the same URL: fetched once
    served, _ = site
    assert not any("utm_" in path for path in served.paths_requested())
    assert served.paths_requested().count("/docs/install.html") == 1


def test_sitemap_index_lists_the_pages(site: tuple) -> None:
    served, base = site
    result = crawl(base + "/sm/", PARAMS)
    assert result.sitemap
    urls = {p.url for p in result.pages}
    assert urls == {f"{base}/sm/", f"{base}/sm/a.html", f"{base}/sm/b.html"}
    assert "/sm/hidden.html" not in served.paths_requested()  # not listed: not followed


def test_page_limit_stops_the_crawl(site: tuple) -> None:
    _, base = site
    result = crawl(base + "/docs/", CrawlParams(max_pages=3, fetch=PARAMS.fetch))
    assert result.truncated and len(result.pages) == 3


def test_depth_zero_reads_the_start_page_only(site: tuple) -> None:
    _, base = site
    result = crawl(base + "/docs/", CrawlParams(max_depth=0, fetch=PARAMS.fetch))
    assert [p.url for p in result.pages] == [f"{base}/docs/"]


def test_known_pages_out_of_scope_or_disallowed_are_marked_for_removal(site: tuple) -> None:
    _, base = site
    known = {
        f"{base}/outside.html": Known(document_id=f"{base}/outside.html"),
        f"{base}/docs/private/secret.html": Known(document_id=f"{base}/docs/private/secret.html"),
        f"{base}/docs/away.html": Known(document_id=f"{base}/docs/away.html"),  # now redirects out
    }
    result = crawl(base + "/docs/", CrawlParams(max_depth=0, fetch=PARAMS.fetch), known)
    for url in known:
        page = _page(result, url)
        assert page.result == "out_of_scope" and page.document_id == url


def test_robots_crawl_delay_is_obeyed_when_longer() -> None:
    site = Site({"/robots.txt": Route(body=b"User-agent: qa-bot\nCrawl-delay: 2\n")})
    with serving(site) as base:
        fetcher = Fetcher(Scope.of(base + "/"), FetchParams(delay_s=0.1))
        try:
            assert fetcher.delay() == 2.0
        finally:
            fetcher.close()


SIDEBAR = (
    '<div class="sphinxsidebar" role="navigation"><h4>Previous topic</h4>'
    '<p><a href="a.html">Sorting HOW TO</a></p><h4>Next topic</h4><p><a href="b.html">FAQ</a></p>'
    '<h3>This Page</h3><ul><li><a href="bugs.html">Report a Bug</a></li>'
    '<li><a href="s.txt">Show Source</a></li></ul></div>'
)
INDEX_PAGE = (
    "<html><head><title>Python Frequently Asked Questions</title></head><body>"
    '<div class="related" role="navigation"><a href="index.html">Python 3.11 documentation</a>'
    '</div><div class="document"><div class="body" role="main"><section><h1>Python Frequently'
    ' Asked Questions</h1><ul><li><a href="general.html">General Python FAQ</a></li>'
    '<li><a href="programming.html">Programming FAQ</a></li></ul></section></div>'
    f'{SIDEBAR}</div><div class="footer">Copyright, Python Software Foundation.</div></body></html>'
)


def test_a_near_empty_page_keeps_no_sidebar() -> None:
    """An index of links is where trafilatura took Sphinx's sidebar for the content (as on the
    Python docs' faq/index.html): the landmarks are removed before it looks."""
    page = read_page("http://docs.test/faq/index.html", INDEX_PAGE.encode(), "text/html")
    assert page.document is not None and "Programming FAQ" in page.document.text
    for word in ("Previous topic", "Report a Bug", "Show Source", "Python 3.11 documentation"):
        assert word not in page.document.text
    assert "bugs.html" in page.links  # links are read before the furniture goes
