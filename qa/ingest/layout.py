"""Where a document's paragraphs are, which of them are page furniture, and which are labels.

Furniture is left out of passages: a short line repeated in the document (a byline repeated
as a photo caption, a PDF's running header with its page number), navigation words, labels
after the last paragraph, and any paragraph a collection repeats across many documents (a
site's header and footer blocks: see :func:`repeated_paragraphs`). Labels (headings, API
signatures) give the passages under them their context.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from qa.ingest.documents import Document

_TERMINAL = tuple('.!?:;"\u201d\u2019)\u3002\uff01\uff1f')
_SENTENCE_END = tuple(".!;\u2026\u3002\uff01")  # not "?": a short question is a heading
NAVIGATION = frozenset(
    [
        "top",
        "back to top",
        "to top",
        "share",
        "print",
        "email",
        "advertisement",
        "related",
        "read more",
        "menu",
        "skip to content",
        "home",
        "next",
        "previous",
        "comments",
    ]
)
# A paragraph in more than this many documents, and in more than this share of them, is a
# site's furniture (headers, footers, banners), not content. Chosen so that a footer on
# every page of a 500-page documentation site goes, and a note that many related pages
# share ("New in version 3.9.", on 8% of the Python docs' pages) stays.
REPEATED_MIN_DOCUMENTS = 5
REPEATED_MIN_SHARE = 0.2
MAX_LABEL_CHARS = 120
# a sentence ending inside a line, after a word ("dawn. The"; not "3.1. Setup" or "Mr. Smith")
_INNER_SENTENCE_END = re.compile(r"[a-z]{2}[.!?;]\s+\S")
MAX_LABEL_WORDS = 14


@dataclass(frozen=True)
class Layout:
    """Where a document's paragraphs and its furniture are."""

    paragraphs: list[tuple[int, int]]
    furniture: list[tuple[int, int]]


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def is_short(line: str) -> bool:
    """A caption, byline, heading or link label rather than prose."""
    stripped = line.strip()
    return len(stripped) <= 50 and len(stripped.split()) <= 6 and not stripped.endswith(_TERMINAL)


def ends_sentence(text: str) -> bool:
    """Whether ``text`` ends like a statement (a closing note such as "New in version 3.9.",
    not a heading, a lead-in or a question)."""
    return text.rstrip().rstrip("\"'\u201d\u2019)]").endswith(_SENTENCE_END)


def is_label(text: str) -> bool:
    """A heading or a signature: one short line that neither ends a statement nor leads in
    (``For example:``), so it names what follows it. A question on a line of its own is a
    heading too: it is how FAQ pages title their answers ("How do I convert a string to a
    number?"). A line with a sentence inside it ("... at dawn. <img>") is prose, not a label."""
    stripped = text.strip()
    return (
        bool(stripped)
        and "\n" not in stripped
        and len(stripped) <= MAX_LABEL_CHARS
        and len(stripped.split()) <= MAX_LABEL_WORDS
        and not ends_sentence(stripped)
        and not stripped.endswith(":")
        and _INNER_SENTENCE_END.search(stripped) is None
    )


def paragraph_key(text: str, numbers: bool = True) -> str:
    """A paragraph's text for spotting repeats: case and whitespace ignored, and numbers
    too unless ``numbers`` ("13 Shared MIME-info Database" and "14 Shared ..." are the same
    running header)."""
    key = " ".join(text.split()).lower()
    return key if numbers else re.sub(r"\d+", "#", key)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _line_spans(text: str, start: int) -> list[list[tuple[int, int]]]:
    """Blocks of non-blank lines (separated by blank lines) as trimmed line spans."""
    blocks: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    position = start
    for line in text[start:].split("\n"):
        s, e = _trimmed(text, position, position + len(line))
        position += len(line) + 1
        if s == e:
            if current:
                blocks.append(current)
                current = []
        else:
            current.append((s, e))
    if current:
        blocks.append(current)
    return blocks


def paragraph_spans(text: str, start: int) -> list[tuple[int, int]]:
    """Paragraph spans: blank-line blocks, split further where a line stands on its own.

    Hard-wrapped prose (a long line that doesn't end a sentence) is joined with the next
    line; a short line (a heading, byline or caption) or a line that ends a sentence
    stands alone.
    """
    paragraphs = []
    for block in _line_spans(text, start):
        first = block[0]
        previous = block[0]
        for line in block[1:]:
            prev_text = text[previous[0] : previous[1]]
            this_text = text[line[0] : line[1]]
            wrapped = not is_short(prev_text) and not prev_text.endswith(_TERMINAL)
            if (
                not wrapped
                or is_short(this_text)
                or this_text.startswith(("#", "- ", "* ", "> ", "|"))
            ):
                paragraphs.append((first[0], previous[1]))
                first = line
            previous = line
        paragraphs.append((first[0], previous[1]))
    return paragraphs


def layout(document: Document, repeated: frozenset[str] = frozenset()) -> Layout:
    """Find the paragraphs of a document's body and the page furniture among them.

    ``repeated`` holds the :func:`key_hash` of paragraphs the collection repeats across
    many documents (see :func:`repeated_paragraphs`); they are furniture too.
    """
    text = document.text
    spans = paragraph_spans(text, document.body_start)
    keys = [paragraph_key(text[s:e]) for s, e in spans]
    headers = [paragraph_key(key, numbers=False) for key in keys]
    counts = Counter(headers)
    furniture: set[int] = set()
    for index, key in enumerate(keys):
        if (
            key in NAVIGATION
            or (is_short(key) and counts[headers[index]] > 1)
            or repeated
            and key_hash(key) in repeated
        ):
            furniture.add(index)
    # Labels and links after the last real paragraph ("Special Reports", "Top").
    index = len(spans) - 1
    while index > 0 and is_short(keys[index]):
        furniture.add(index)
        index -= 1
    if len(furniture) == len(spans):  # never drop a whole document
        furniture = {i for i, key in enumerate(keys) if key in NAVIGATION and len(spans) > 1}
    return Layout(
        paragraphs=[span for i, span in enumerate(spans) if i not in furniture],
        furniture=[span for i, span in enumerate(spans) if i in furniture],
    )


def repeated_paragraphs(documents: Iterable[Document]) -> frozenset[str]:
    """Hashes of the paragraphs that many documents of a collection share: a site's
    furniture, left out of every document's passages."""
    seen_in: Counter[str] = Counter()
    total = 0
    for document in documents:
        total += 1
        text = document.text
        keys = {paragraph_key(text[s:e]) for s, e in paragraph_spans(text, document.body_start)}
        seen_in.update(key_hash(key) for key in keys)
    floor = max(REPEATED_MIN_DOCUMENTS, REPEATED_MIN_SHARE * total)
    return frozenset(key for key, count in seen_in.items() if count > floor)


def labels(document: Document, spans: list[tuple[int, int]]) -> list[tuple[int, str]]:
    """``(start, text)`` of the label paragraphs among ``spans`` (Markdown ``#`` marks removed)."""
    out = []
    for s, e in spans:
        piece = document.text[s:e]
        if is_label(piece):
            out.append(
                (s, piece.strip().lstrip("#").strip() if piece.startswith("#") else piece.strip())
            )
    return out
