"""Visible text of the Python 3.11 HTML documentation, as paragraphs (for check_pydocs_questions.py).

A page's text is its main content (``div[role=main]`` or ``div.body``) with every block element
boundary made a paragraph break; footnotes and other ``<aside>`` boxes are left out, as the
service's indexer leaves them out. Every paragraph is normalised (case, whitespace, curly quotes,
NBSP and ¶). Extracting all ~530 pages takes about two minutes, so the paragraphs are cached in
the temp directory (keyed on each file's mtime/size): call ``load_cache`` before and
``save_cache`` after.

``DOCS`` is the docs folder; assign ``pydocs_pages.DOCS`` to read another one.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import unicodedata
from functools import cache
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Doctype, ProcessingInstruction

DOCS = Path("/usr/share/doc/python3.11/html")
SKIP_DIRS = {"_sources", "_static", "_images", "_downloads"}
BLOCK = (  # elements whose boundaries are paragraph breaks
    {"p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "address"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd"}
    | {"table", "thead", "tbody", "tr", "td", "th", "caption"}
    | {"blockquote", "pre", "figure", "figcaption", "hr", "br", "details", "summary"}
    | {"form", "fieldset", "legend"}
)
# Not indexed by the service either (qa/html_text.py): page furniture, and <aside> (Sphinx puts
# footnotes, sidebars and topic boxes there), so gold found only there could not be retrieved.
DROP = {"script", "style", "noscript", "template", "head", "title", "aside", "nav", "footer", "svg"}
DROP_CLASSES = {"headerlink", "sphinxsidebar", "related", "footer"}  # headerlink: ¶ permalink
BREAK = "\u2029"
# curly quotes, en and em dash, NBSP and ¶
_QUOTES = str.maketrans("\u2018\u2019\u201c\u201d\u2013\u2014\u00a0\u00b6", "''\"\"--  ")
CACHE_VERSION = 2


def normalise(text: str) -> str:
    """Case-, whitespace- and quote-insensitive form (as ``qa.evaluation.normalise``, plus NBSP/¶)."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold().split())


def _walk(node: Tag, out: list[str]) -> None:
    for child in node.children:
        if isinstance(child, (Comment, Doctype, ProcessingInstruction)):
            continue
        if isinstance(child, NavigableString):
            out.append(str(child))
            continue
        if not isinstance(child, Tag) or child.name in DROP:
            continue
        classes = set(child.get("class") or [])
        if classes & DROP_CLASSES or child.has_attr("hidden"):
            continue
        if (child.get("role") or "").lower() in ("navigation", "search"):
            continue
        block = child.name in BLOCK
        if block:
            out.append(BREAK)
        _walk(child, out)
        if block:
            out.append(BREAK)


def _extract(path: Path) -> list[str]:
    soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")
    root = soup.find("div", attrs={"role": "main"}) or soup.find("div", class_="body") or soup.body
    parts: list[str] = []
    if root is not None:
        _walk(root, parts)
    text = "".join(parts)
    return [p for p in (normalise(block) for block in text.split(BREAK)) if p]


_CACHE: dict[str, list] = {}  # page -> [mtime_ns, size, paragraphs]
_CACHE_DIRTY = False


def _cache_file() -> Path:
    """Extraction takes ~2 minutes for all pages, so paragraphs are cached (by mtime and size)."""
    key = hashlib.sha1(f"{DOCS.resolve()}|{CACHE_VERSION}".encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"pydocs_paragraphs_{key}.json"


def load_cache() -> None:
    try:
        _CACHE.update(json.loads(_cache_file().read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass


def save_cache() -> None:
    if _CACHE_DIRTY:
        _cache_file().write_text(json.dumps(_CACHE, ensure_ascii=False), encoding="utf-8")


def paragraphs(page: str) -> tuple[str, ...]:
    """Normalised paragraphs of the visible main text of ``page`` (relative to DOCS)."""
    global _CACHE_DIRTY
    path = DOCS / page
    stat = path.stat()
    cached = _CACHE.get(page)
    if cached and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return tuple(cached[2])
    paras = _extract(path)
    _CACHE[page] = [stat.st_mtime_ns, stat.st_size, paras]
    _CACHE_DIRTY = True
    return tuple(paras)


@cache
def page_texts() -> dict[str, str]:
    """Every HTML page of the docs (outside the asset folders): one string, paragraphs joined
    by a separator no snippet can match across."""
    out = {}
    for path in sorted(DOCS.rglob("*.html")):
        rel = path.relative_to(DOCS)
        if rel.parts[0] in SKIP_DIRS:
            continue
        out[rel.as_posix()] = " \u2029 ".join(paragraphs(rel.as_posix()))
    return out


def pages_containing(snippet: str) -> list[str]:
    needle = normalise(snippet)
    return [page for page, text in page_texts().items() if needle in text]
