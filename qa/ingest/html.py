"""Visible text of an HTML page in time linear in its size, whatever its markup.

lxml's HTML parser (libxml2) streams events to :class:`_Extractor`; no tree is built and
nothing recurses. Two libxml2 behaviours shape the design:

* Building a tree, libxml2 stops at 256 levels of nesting (2,048 with ``huge_tree``) and
  silently drops the rest of the page; real pages with unclosed ``<font>`` or ``<b>`` tags
  get there. Without a tree there is no such limit, but every unmatched end tag is looked
  for through all the open elements, so a deep page is quadratic (140 KB of ``<b>`` then
  ``</i>``: 5 s). So the extractor stops at :data:`MAX_DEPTH` open elements itself.
* An exception raised in a parser callback is only seen by lxml between ``feed`` calls, so
  the markup is fed in :data:`CHUNK` pieces: parsing stops within one chunk of the limit.

A page nested deeper than :data:`MAX_DEPTH` (or one lxml refuses) is read again by
:func:`_flat_events`, a linear tag scanner that keeps all the text and approximates the
paragraphs, so no text is lost silently. ``huge_tree`` is on: without it libxml2 drops a
page whose text node is over 10 MB (a long ``<pre>``) entirely; the file size limit and the
parser process's memory cap bound what it may use instead.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

MAX_DEPTH = 512  # open elements; browsers (Blink) flatten the tree at the same depth
CHUNK = 8192  # bytes fed to libxml2 at a time

BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "nav",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tr",
        "td",
        "th",
        "blockquote",
        "pre",
        "figure",
        "figcaption",
        "address",
        "hr",
        "form",
        "fieldset",
        "caption",
        "details",
        "summary",
        "legend",
    }
)
# landmarks that are page furniture, never content (the crawler drops them too)
FURNITURE_TAGS = frozenset({"nav", "footer", "aside"})
# never shown, or page furniture rather than content
DROP_TAGS = FURNITURE_TAGS | {"script", "style", "noscript", "template", "svg", "head", "title"}
# Generic markup debris: navigation and search landmarks, Sphinx's sidebar, relbars, footer
# and heading permalinks (the "¶" after every heading), and elements marked hidden.
DROP_ROLES = frozenset({"navigation", "search"})
DROP_CLASSES = frozenset({"headerlink", "sphinxsidebar", "related", "footer"})

_PARAGRAPH = "\u2029"  # paragraph separator: a block boundary
_LINE = "\u2028"  # line separator: a <br>


class _TooDeep(Exception):
    """More than :data:`MAX_DEPTH` elements open at once."""


def is_debris(attrib: Mapping[str, str]) -> bool:
    classes = attrib.get("class")
    if classes and not DROP_CLASSES.isdisjoint(classes.lower().split()):
        return True
    role = attrib.get("role")
    return bool(role and role.strip().lower() in DROP_ROLES) or "hidden" in attrib


class _Extractor:
    """Collects visible text from start/end/data events (an lxml parser target)."""

    def __init__(self, max_depth: int | None = MAX_DEPTH) -> None:
        self.max_depth = max_depth
        self.parts: list[str] = []
        self.depth = 0
        self.drop_at = 0  # depth of the dropped element being skipped; 0 when none
        self.title: list[str] | None = None  # text of the first <title>, once it starts
        self.in_title = False
        self.svg = 0  # open <svg> elements: their <title> is a tooltip, not the page's
        self.h1_start: int | None = None  # index into ``parts`` where the first <h1> began
        self.h1: str | None = None

    def start(self, tag: str, attrib: Mapping[str, str]) -> None:
        self.depth += 1
        if self.max_depth is not None and self.depth > self.max_depth:
            raise _TooDeep
        if tag == "svg":
            self.svg += 1
        elif tag == "title" and self.title is None and not self.svg:
            self.title, self.in_title = [], True
        if self.drop_at:
            return
        if tag in DROP_TAGS or (attrib and is_debris(attrib)):
            self.drop_at = self.depth
        elif tag == "br":
            self.parts.append(_LINE)
        elif tag in BLOCK_TAGS:
            if self.parts and self.parts[-1] is not _PARAGRAPH:
                self.parts.append(_PARAGRAPH)
            if tag == "h1" and self.h1 is None and self.h1_start is None:
                self.h1_start = len(self.parts)

    def end(self, tag: str) -> None:
        if tag == "svg" and self.svg:
            self.svg -= 1
        elif tag == "title":
            self.in_title = False
        if self.drop_at:
            if self.drop_at == self.depth:
                self.drop_at = 0
        elif tag in BLOCK_TAGS:
            if tag == "h1" and self.h1_start is not None and self.h1 is None:
                self.h1 = "".join(self.parts[self.h1_start :])
            if self.parts and self.parts[-1] is not _PARAGRAPH:
                self.parts.append(_PARAGRAPH)
        self.depth -= 1

    def data(self, text: str) -> None:
        if self.in_title and self.title is not None:
            self.title.append(text)
        if not self.drop_at:
            self.parts.append(text)

    def close(self) -> tuple[str, str]:
        blocks = []
        for block in "".join(self.parts).split(_PARAGRAPH):
            if _LINE in block:
                lines = [" ".join(part.split()) for part in block.split(_LINE)]
                joined = "\n".join(line for line in lines if line)
            else:
                joined = " ".join(block.split())
            if joined:
                blocks.append(joined)
        title = " ".join("".join(self.title or ()).split())
        if not title and self.h1 is not None:
            title = " ".join(self.h1.split())
        return "\n\n".join(blocks), title


def html_to_text(markup: str) -> tuple[str, str]:
    """Visible text of an HTML page, one block per paragraph, and its title.

    Blocks are separated by a blank line, a ``<br>`` is a line break, whitespace is
    collapsed; scripts, styles, navigation, footers and asides are dropped. The title is
    the ``<title>``, else the first ``<h1>``.
    """
    from lxml import etree

    data = markup.encode("utf-8", "replace")  # no lone surrogates in decoded files; "?" otherwise
    extractor = _Extractor()
    parser = etree.HTMLParser(
        target=extractor,
        encoding="utf-8",
        recover=True,
        huge_tree=True,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for offset in range(0, len(data), CHUNK):
            parser.feed(data[offset : offset + CHUNK])
        result: tuple[str, str] = parser.close()
    except (_TooDeep, etree.LxmlError):
        flat = _Extractor(max_depth=None)
        _flat_events(markup, flat)
        return flat.close()
    return result


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9:_-]*+")
# elements whose content is not markup: skipped to their end tag, or to the end of the page
_RAW_TEXT = frozenset({"script", "style", "xmp", "iframe", "noembed", "noframes", "plaintext"})


class _CloseTags:
    """Where the next ``</name`` is, found in linear total time.

    Searches for one name only ever move forward, and a name once missing stays missing,
    so a page of a million unclosed ``<nav>`` is not searched a million times to the end.
    """

    def __init__(self, markup: str) -> None:
        self.markup = markup
        self.found: dict[str, int] = {}  # name -> position of the last ``</name`` found (-1: none)
        self.patterns: dict[str, re.Pattern[str]] = {}

    def find(self, name: str, start: int) -> int:
        known = self.found.get(name)
        if known is not None and (known < 0 or known >= start):
            return known
        pattern = self.patterns.get(name)
        if pattern is None:
            pattern = self.patterns[name] = re.compile(
                f"</{re.escape(name)}(?![A-Za-z0-9:_-])", re.IGNORECASE
            )
        match = pattern.search(self.markup, start)
        self.found[name] = match.start() if match else -1
        return self.found[name]


def _flat_events(markup: str, target: _Extractor) -> None:
    """Feed ``target`` the tags and text of ``markup`` without building any nesting.

    A simple scanner: every step moves forward with ``str.find`` or an anchored match, so
    it is linear. Attributes are not read (``>`` inside a quoted attribute ends the tag
    early); dropped elements are skipped to their first end tag, or kept when there is none.
    """
    closes = _CloseTags(markup)
    position, length = 0, len(markup)
    while position < length:
        lt = markup.find("<", position)
        if lt < 0:
            target.data(html.unescape(markup[position:]))
            return
        if lt > position:
            target.data(html.unescape(markup[position:lt]))
        position = lt + 1
        if markup.startswith("!--", position):
            end = markup.find("-->", position + 3)
            if end < 0:
                return  # an unclosed comment runs to the end of the page
            position = end + 3
            continue
        closing = markup.startswith("/", position)
        name_match = _NAME.match(markup, position + closing)
        if name_match is None:
            if closing or markup.startswith(("!", "?"), position):  # </3, <!DOCTYPE, <?xml
                end = markup.find(">", position)
                if end < 0:
                    return
                position = end + 1
            else:
                target.data("<")  # a lone "<" is text
            continue
        end = markup.find(">", name_match.end())
        if end < 0:
            return  # an unterminated tag runs to the end of the page
        position = end + 1
        name = name_match.group().lower()
        if closing:
            target.end(name)
            continue
        if name == "title":
            close = closes.find(name, position)
            stop = close if close >= 0 else length
            target.start(name, {})
            target.data(html.unescape(markup[position:stop]))
            target.end(name)
            position = stop
        elif name in DROP_TAGS or name in _RAW_TEXT:
            close = closes.find(name, position)
            if close >= 0:
                position = close  # the end tag itself is read next
            elif name in _RAW_TEXT:
                return
            else:
                continue  # an unclosed <nav> or <head>: keep what follows rather than lose it
        else:
            target.start(name, {})
