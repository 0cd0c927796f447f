"""Split a document into paragraph passages with exact character offsets.

Invariant: ``document.text[p.char_start:p.char_end] == p.text`` for every passage.
Page furniture (a byline repeated as a photo caption, a trailing "Top" link, section
labels after the last paragraph) is recognised and left out. A paragraph longer than
the embedding model's window is split at sentence boundaries so nothing is cut off.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.ingest.documents import Document
from qa.ingest.sentences import sentence_spans

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Counts the model's word pieces (without special tokens) for each text."""

_TERMINAL = tuple('.!?:;"\u201d\u2019)\u3002\uff01\uff1f')
NAVIGATION = {
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
}


@dataclass(frozen=True)
class Passage:
    """A span of a document that is embedded and returned as one unit."""

    document_id: str
    ordinal: int  # 0-based position among the document's passages
    paragraph: int  # 1-based paragraph number (parts of a split paragraph share it)
    char_start: int
    char_end: int
    text: str
    page: int | None = None

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Layout:
    """Where a document's paragraphs and its furniture are."""

    paragraphs: list[tuple[int, int]]
    furniture: list[tuple[int, int]]


def whitespace_token_counter(texts: Sequence[str]) -> list[int]:
    """A rough counter for when no tokenizer is at hand: words and punctuation marks."""
    return [len(re.findall(r"\w+|[^\w\s]", text)) for text in texts]


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_short(line: str) -> bool:
    """A caption, byline, heading or link label rather than prose."""
    stripped = line.strip()
    return len(stripped) <= 50 and len(stripped.split()) <= 6 and not stripped.endswith(_TERMINAL)


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


def _paragraphs(text: str, start: int) -> list[tuple[int, int]]:
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
            wrapped = not _is_short(prev_text) and not prev_text.endswith(_TERMINAL)
            if (
                not wrapped
                or _is_short(this_text)
                or this_text.startswith(("#", "- ", "* ", "> ", "|"))
            ):
                paragraphs.append((first[0], previous[1]))
                first = line
            previous = line
        paragraphs.append((first[0], previous[1]))
    return paragraphs


def layout(document: Document) -> Layout:
    """Find the paragraphs of a document's body and the page furniture among them."""
    text = document.text
    spans = _paragraphs(text, document.body_start)
    keys = [" ".join(text[s:e].split()).lower() for s, e in spans]
    counts = Counter(keys)
    furniture: set[int] = set()
    for index, key in enumerate(keys):
        short = _is_short(key)
        if key in NAVIGATION or (short and counts[key] > 1):
            furniture.add(index)
    # Labels and links after the last real paragraph ("Special Reports", "Top").
    index = len(spans) - 1
    while index > 0 and _is_short(keys[index]):
        furniture.add(index)
        index -= 1
    if len(furniture) == len(spans):  # never drop a whole document
        furniture = {i for i, key in enumerate(keys) if key in NAVIGATION and len(spans) > 1}
    return Layout(
        paragraphs=[span for i, span in enumerate(spans) if i not in furniture],
        furniture=[span for i, span in enumerate(spans) if i in furniture],
    )


def _merge_short(text: str, spans: list[tuple[int, int]], min_chars: int) -> list[tuple[int, int]]:
    """Join fragments shorter than ``min_chars`` (headings, list items) to the next paragraph."""
    merged: list[tuple[int, int]] = []
    pending: int | None = None
    for s, e in spans:
        if pending is not None:
            s = pending
            pending = None
        if e - s < min_chars:
            pending = s
            continue
        merged.append((s, e))
    if pending is not None:
        if merged:
            merged[-1] = (merged[-1][0], spans[-1][1])
        else:
            merged.append((pending, spans[-1][1]))
    return merged


def _pack(pieces: list[tuple[int, int]], sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """Group consecutive pieces into runs of at most ``budget`` tokens, evenly sized."""
    total = sum(sizes)
    parts = max(1, math.ceil(total / budget))
    target = min(budget, math.ceil(total / parts * 1.1))
    groups: list[tuple[int, int]] = []
    start, used = pieces[0][0], 0
    end = pieces[0][0]
    for (s, e), size in zip(pieces, sizes):
        if used and used + size > target:
            groups.append((start, end))
            start, used = s, 0
        used += size
        end = e
    groups.append((start, end))
    return groups


def _fit(
    text: str, span: tuple[int, int], count: TokenCounter, budget: int
) -> list[tuple[int, int]]:
    """Split a span at sentence boundaries (then words, then characters) to fit ``budget``."""
    s, e = span
    pieces = sentence_spans(text, s, e) or [span]
    sizes = count([text[a:b] for a, b in pieces])
    # word pieces add up across whitespace-separated sentences; one token of slack per
    # boundary covers tokenizers that merge across it
    if sum(sizes) + len(pieces) - 1 <= budget:
        return [span]
    if len(pieces) <= 1:
        pieces = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[s:e])]
        pieces = [(s + a, s + b) for a, b in pieces]
    if len(pieces) <= 1:  # one unbroken run (e.g. CJK without punctuation): cut by characters
        length = e - s
        tokens = max(1, count([text[s:e]])[0])
        step = max(1, int(length * budget / tokens * 0.9))
        if step >= length:  # a single character over the budget: nothing smaller to cut
            return [span]
        # the step assumes evenly dense text; a denser stretch ("aaaa!!!!") is cut again
        cuts = [(i, min(i + step, e)) for i in range(s, e, step)]
        return [piece for cut in cuts for piece in _fit(text, cut, count, budget)]
    if len(sizes) != len(pieces):  # word pieces replaced a single sentence
        sizes = count([text[a:b] for a, b in pieces])
    fitted: list[tuple[int, int]] = []
    fitted_sizes: list[int] = []
    for piece, size in zip(pieces, sizes):
        if size > budget:
            for sub in _fit(text, piece, count, budget):
                fitted.append(sub)
                fitted_sizes.append(count([text[sub[0] : sub[1]]])[0])
        else:
            fitted.append(piece)
            fitted_sizes.append(size)
    return _pack(fitted, fitted_sizes, budget)


def embedding_text(title: str, text: str) -> str:
    """What is fed to the embedding model for a passage (``title`` may be empty)."""
    return f"{title}\n{text}" if title else text


def title_for_embedding(
    document: Document, count_tokens: TokenCounter, max_tokens: int, enabled: bool
) -> tuple[str, int]:
    """The title to embed with each passage ('' when disabled or too long) and its cost."""
    if not enabled or not document.title:
        return "", 0
    cost = count_tokens([document.title + "\n"])[0]
    return (document.title, cost) if cost <= max_tokens // 4 else ("", 0)


def split_document(
    document: Document,
    count_tokens: TokenCounter = whitespace_token_counter,
    max_tokens: int = 254,
    min_chars: int = 40,
    title_in_embedding: bool = True,
) -> list[Passage]:
    """The passages of ``document``, in order.

    ``max_tokens`` is the model's window without special tokens; when the title is
    embedded with each passage its word pieces come out of the same budget, so no
    passage text is ever truncated by the model.
    """
    text = document.text
    spans = _merge_short(text, layout(document).paragraphs, min_chars)
    _, title_cost = title_for_embedding(document, count_tokens, max_tokens, title_in_embedding)
    budget = max(max_tokens - title_cost, 8)
    passages: list[Passage] = []
    for number, span in enumerate(spans, start=1):
        for s, e in _fit(text, span, count_tokens, budget):
            passages.append(
                Passage(
                    document_id=document.id,
                    ordinal=len(passages),
                    paragraph=number,
                    char_start=s,
                    char_end=e,
                    text=text[s:e],
                    page=document.page_at(s),
                )
            )
    return passages
