"""The document page: one document as HTML, the cited passage marked and scrolled to.

Every piece of text (title, source, document text) goes through :func:`html.escape`; the
only markup is this module's own. Offsets are Python's (code points), the same as the
stored ones, so a mark lands exactly on the cited characters. The page loads its style and
its one script (which scrolls to the passage) from ``/assets``, so its Content-Security-
Policy allows no inline code at all.
"""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass, field

from qa.search import web_address
from qa.search.links import text_fragment
from qa.store import DocumentRow, PassageRow

# No inline script or style, no plugins, no framing, no form posts, no <base> rewriting.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E"
    "%3Crect width='32' height='32' rx='8' fill='%233552c8'/%3E%3C/svg%3E"
)
SPAN = re.compile(r"(\d{1,9})-(\d{1,9})")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="icon" href="{icon}">
<link rel="stylesheet" href="/assets/document.css">
<script src="/assets/document.js" defer></script>
</head>
<body>
{skip}<header class="head">
<p class="site"><a href="/">{site}</a></p>
<h1 id="title">{heading}</h1>
<p class="meta">{meta}</p>
{links}{notice}</header>
<main>
<article class="text" aria-labelledby="title">{text}</article>
</main>
</body>
</html>
"""


@dataclass
class Marks:
    """What is marked in the text: the cited passage, and spans inside it (document offsets)."""

    cited: tuple[int, int] | None = None
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, class)
    page_starts: list[int] = field(default_factory=list)  # where pages 2, 3, ... begin


def parse_span(value: str | None) -> tuple[int, int] | None:
    """``START-END`` as a pair, or ``None`` when absent or not in that form (a mangled link
    still opens the document, just without the mark)."""
    match = SPAN.fullmatch(value or "")
    if match is None:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    return (start, end) if end > start else None


def marks_for(
    document: DocumentRow, passage: PassageRow | None, highlight: tuple[int, int] | None
) -> Marks:
    """The marks of a document page: the passage (when it is in this document) and the
    highlight, relative to the passage when there is one, else to the document."""
    size = len(document.text)
    pages = [start for start in document.pages[1:] if 0 < start < size]
    if passage is None:
        spans = []
        if highlight is not None and highlight[0] < size:
            spans = [(highlight[0], min(highlight[1], size), "ans")]
        return Marks(None, spans, pages)
    start, end = passage.char_start, passage.char_end
    spans = []
    if highlight is not None and highlight[0] < end - start:
        spans = [(start + highlight[0], min(start + highlight[1], end), "ans")]
    return Marks((start, end), spans, pages)


def render_text(text: str, marks: Marks) -> str:
    """``text`` as escaped HTML with the cited passage in ``<mark id="cited">``, the spans
    in ``<mark class=...>`` inside it, and a separator where each PDF page begins."""
    cuts = {0, len(text), *marks.page_starts}
    if marks.cited is not None:
        cuts.update(marks.cited)
    for start, end, _ in marks.spans:
        cuts.update((start, end))
    points = sorted(c for c in cuts if 0 <= c <= len(text))
    pages = {start: number for number, start in enumerate(marks.page_starts, start=2)}
    out: list[str] = []
    inside = False
    for start, end in itertools.pairwise(points):
        if marks.cited is not None and start == marks.cited[1] and inside:
            out.append("</mark>")
            inside = False
        if start in pages:
            out.append(f'<span class="page" role="note">Page {pages[start]}</span>')
        if marks.cited is not None and start == marks.cited[0] and not inside:
            out.append('<mark class="cited" id="cited" tabindex="-1">')
            inside = True
        piece = html.escape(text[start:end], quote=False)
        kind = next((k for a, b, k in marks.spans if a <= start and end <= b), None)
        out.append(f'<mark class="{kind}">{piece}</mark>' if kind else piece)
    if inside:
        out.append("</mark>")
    return "".join(out)


def _meta(document: DocumentRow, passage: PassageRow | None, collection: str) -> str:
    """The line under the title: source, paragraph and page of the citation, collection."""
    parts = [html.escape(document.source)]
    if passage is not None:
        parts.append(f"paragraph {passage.paragraph}")
        if passage.page:
            parts.append(f"page {passage.page}")
    if len(document.pages) > 1:
        parts.append(f"{len(document.pages)} pages")
    parts.append(f"collection {html.escape(collection)}")
    return " · ".join(parts)


def render_document(
    document: DocumentRow,
    passage: PassageRow | None,
    highlight: tuple[int, int] | None,
    collection: str,
    site_title: str,
    passage_missing: bool = False,
) -> str:
    """The whole page of ``document`` opened at ``passage`` (``passage_missing``: the link
    named a passage this document no longer has)."""
    marks = marks_for(document, passage, highlight)
    title = document.title or document.id
    original = web_address(document.source)
    links = ""
    if original is not None:
        address = html.escape(original)
        cited = [document.text[a:b] for a, b, _ in marks.spans] or [passage.text if passage else ""]
        target = html.escape(text_fragment(original, cited[0]))  # the page, at the words
        links = (
            f'<p class="links"><a href="{target}" rel="noopener noreferrer nofollow" '
            f'target="_blank">Original page</a> <span class="address">{address}</span></p>\n'
        )
    notice = ""
    if passage_missing:
        notice = (
            '<p class="notice" role="status">The cited passage is no longer in this document '
            "(it changed since the link was made); the whole document is shown.</p>\n"
        )
    skip = '<a class="skip" href="#cited">Skip to the cited passage</a>\n' if passage else ""
    return PAGE.format(
        title=html.escape(title),
        icon=ICON,
        skip=skip,
        site=html.escape(site_title),
        heading=html.escape(title),
        meta=_meta(document, passage, collection),
        links=links,
        notice=notice,
        text=render_text(document.text, marks),
    )


def render_missing(site_title: str) -> str:
    """The page for a link to a document that isn't there (or that the reader may not see:
    the two look the same)."""
    return PAGE.format(
        title="Document not found",
        icon=ICON,
        skip="",
        site=html.escape(site_title),
        heading="Document not found",
        meta="This link points to a document that is not in the collection: it may have "
        "been removed or renamed.",
        links="",
        notice="",
        text="",
    )
