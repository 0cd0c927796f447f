"""Sitemaps (``urlset``) and sitemap indexes (``sitemapindex``): the pages a site lists."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin

import lxml.etree

MAX_SITEMAPS = 50  # sitemap files read per crawl (an index may list many)


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """The page URLs and the child sitemap URLs a sitemap lists (empty when it is not one).

    No DTDs, entities or network: a sitemap is data, not a program.
    """
    parser = lxml.etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True
    )
    try:
        root = lxml.etree.fromstring(body, parser)
    except lxml.etree.XMLSyntaxError:
        return [], []
    if root is None:
        return [], []
    kind = lxml.etree.QName(root).localname
    locs = [(el.text or "").strip() for el in root.iter("{*}loc") if (el.text or "").strip()]
    if kind == "sitemapindex":
        return [], locs
    if kind == "urlset":
        return locs, []
    return [], []


def read_sitemaps(first: list[str], get: Callable[[str], bytes | None]) -> list[str]:
    """Every page URL reachable from the sitemaps ``first`` (following indexes), in order,
    reading at most :data:`MAX_SITEMAPS` files; ``get`` returns a sitemap's bytes or ``None``."""
    pages: list[str] = []
    queue, seen = list(first), set(first)
    read = 0
    while queue and read < MAX_SITEMAPS:
        current = queue.pop(0)
        body = get(current)
        read += 1
        if body is None:
            continue
        urls, children = parse_sitemap(body)
        pages += [urljoin(current, url) for url in urls]  # relative ones too, leniently
        for child in (urljoin(current, url) for url in children):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return pages
