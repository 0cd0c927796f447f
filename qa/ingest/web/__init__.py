"""Websites as sources: crawl a documentation site politely (sitemaps, robots.txt, limits,
conditional requests) into one document per page, its main content only."""

from qa.ingest.web.crawl import CrawlParams, CrawlResult, Known, PageResult, crawl
from qa.ingest.web.fetch import USER_AGENT, FetchParams
from qa.ingest.web.state import STATE_FILE, PageState, SiteState
from qa.ingest.web.urls import Scope, canonical, is_url

__all__ = [
    "STATE_FILE",
    "USER_AGENT",
    "CrawlParams",
    "CrawlResult",
    "FetchParams",
    "Known",
    "PageResult",
    "PageState",
    "Scope",
    "SiteState",
    "canonical",
    "crawl",
    "is_url",
]
