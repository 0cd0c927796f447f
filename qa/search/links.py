"""Addresses of citations: the document page that opens a document at a passage.

A citation's ``url`` is ``/documents/{id}?passage=ID&hl=START-END&collection=NAME``: the
document id is one percent-encoded path segment (a ``/`` or ``..`` inside an id can never
become a path of its own), ``hl`` is a span inside the passage (the answer sentence, or the
passage's first highlight), and the collection is always named, so a link keeps working
when the server's default collection changes.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote, urlencode, urlsplit

from qa.search.answer import Reply

DOCUMENT_PAGE = "/documents/"


def document_url(
    document_id: str,
    collection: str | None = None,
    passage_id: int | None = None,
    highlight: tuple[int, int] | None = None,
    base: str = "",
) -> str:
    """The page of a document, opened at ``passage_id`` with ``highlight`` marked in it.

    ``base`` (``https://host``) makes the address absolute; without it the address starts
    at the server's root (``/documents/...``).
    """
    params: list[tuple[str, str]] = []
    if passage_id is not None:
        params.append(("passage", str(passage_id)))
        if highlight is not None and highlight[1] > highlight[0] >= 0:
            params.append(("hl", f"{highlight[0]}-{highlight[1]}"))
    if collection:
        params.append(("collection", collection))
    query = f"?{urlencode(params)}" if params else ""
    return f"{base.rstrip('/')}{DOCUMENT_PAGE}{quote(document_id, safe='')}{query}"


def web_address(source: str) -> str | None:
    """``source`` when it is the address of a web page (http or https with a host), else
    ``None``: a document's source is linked only then, so no other scheme (``javascript:``,
    ``file:``) ever becomes a link."""
    text = source.strip()
    if text != source or any(c.isspace() or not c.isprintable() for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    return text


def link_citations(reply: Reply, collection: str, base: str = "") -> None:
    """Give every citation of ``reply`` the address of its document page, opened at the
    passage with the answer sentence (or the passage's first highlight) marked."""
    answer = reply.answer
    for passage in reply.passages:
        if answer is not None and answer.passage_id == passage.passage_id:
            span: tuple[int, int] | None = (answer.start, answer.end)
        else:
            span = passage.highlights[0] if passage.highlights else None
        url = document_url(passage.citation.document_id, collection, passage.passage_id, span, base)
        passage.citation = dataclasses.replace(passage.citation, url=url)


def text_fragment(address: str, cited: str) -> str:
    """``address`` opened at the words ``cited`` with a text fragment (``#:~:text=``, as the
    widget builds it): a sentence of up to 10 words whole, a longer one by its first and
    last 4 words; ``-``, ``&`` and ``,`` escaped (they mean something in the directive)."""
    words = cited.split()
    if not words:
        return address

    def encoded(part: list[str]) -> str:
        return quote(" ".join(part), safe="").replace("-", "%2D")

    directive = (
        encoded(words) if len(words) <= 10 else f"{encoded(words[:4])},{encoded(words[-4:])}"
    )
    return f"{address.split('#', 1)[0]}#:~:text={directive}"
