"""Split a document into paragraph passages with exact character offsets.

Invariant: ``document.text[p.char_start:p.char_end] == p.text`` for every passage.
Page furniture (a byline repeated as a photo caption, a trailing "Top" link, section
labels after the last paragraph) is recognised and left out. A paragraph longer than
the embedding model's window is split at sentence boundaries so nothing is cut off.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.ingest.documents import Document
from qa.ingest.layout import ends_sentence, labels, layout
from qa.ingest.sentences import sentence_spans

# word pieces kept for a passage's context label (a heading or signature) in the model window
MAX_CONTEXT_TOKENS = 32

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Counts the model's word pieces (without special tokens) for each text."""


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
    context: str = ""  # the label (heading, signature) it sits under; embedded, never cited

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()


def whitespace_token_counter(texts: Sequence[str]) -> list[int]:
    """A rough counter for when no tokenizer is at hand: words and punctuation marks."""
    return [len(re.findall(r"\w+|[^\w\s]", text)) for text in texts]


def _merge_short(
    text: str, spans: list[tuple[int, int]], min_chars: int, label_starts: frozenset[int]
) -> list[tuple[int, int]]:
    """Join fragments shorter than ``min_chars``, and labels, to a neighbour, so no passage
    is too small to carry meaning: a label (heading, signature, FAQ question) or a lead-in
    ("For example:") joins the paragraph after it, since a heading alone never answers; a
    closing note that ends a statement ("New in version 3.9.") joins the paragraph before it."""
    merged: list[tuple[int, int]] = []
    carried: int | None = None  # start of fragments waiting for the next paragraph
    for s, e in spans:
        label = s in label_starts
        short = e - s < min_chars
        if short and not label and carried is None and merged and ends_sentence(text[s:e]):
            merged[-1] = (merged[-1][0], e)
        elif short or label:
            carried = s if carried is None else carried
        else:
            merged.append((s if carried is None else carried, e))
            carried = None
    if carried is not None:
        if merged:
            merged[-1] = (merged[-1][0], spans[-1][1])
        else:
            merged.append((carried, spans[-1][1]))
    return merged


def _context_of(start: int, found: list[tuple[int, str]], title: str) -> str:
    """The last label before a passage, unless the passage starts with a label of its own
    (or the label is the document's title, which is embedded anyway)."""
    at = bisect.bisect_left(found, (start, ""))
    if at < len(found) and found[at][0] == start:
        return ""  # it opens with its own heading or signature
    label = found[at - 1][1] if at > 0 else ""
    return "" if label == title else label


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


def embedding_text(title: str, text: str, context: str = "") -> str:
    """What is fed to the embedding model (and BM25) for a passage: its document's title and
    the label it sits under, when there are, then its text."""
    return "\n".join(part for part in (title, context, text) if part)


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
    repeated: frozenset[str] = frozenset(),
) -> list[Passage]:
    """The passages of ``document``, in order.

    ``max_tokens`` is the model's window without special tokens; the title and the
    context label embedded with each passage come out of the same budget, so no passage
    text is ever truncated by the model. ``repeated`` are the collection's repeated
    paragraphs (furniture, see :func:`qa.ingest.layout.repeated_paragraphs`).
    """
    text = document.text
    paragraphs = layout(document, repeated).paragraphs
    found = labels(document, paragraphs)
    spans = _merge_short(text, paragraphs, min_chars, frozenset(s for s, _ in found))
    _, title_cost = title_for_embedding(document, count_tokens, max_tokens, title_in_embedding)
    reserved = MAX_CONTEXT_TOKENS if found else 0  # documents without labels keep their budget
    budget = max(max_tokens - title_cost - reserved, 8)
    passages: list[Passage] = []
    for number, span in enumerate(spans, start=1):
        for s, e in _fit(text, span, count_tokens, budget):
            context = _context_of(s, found, document.title)
            if context and count_tokens([context])[0] > MAX_CONTEXT_TOKENS:
                context = ""
            passages.append(
                Passage(
                    document_id=document.id,
                    ordinal=len(passages),
                    paragraph=number,
                    char_start=s,
                    char_end=e,
                    text=text[s:e],
                    page=document.page_at(s),
                    context=context,
                )
            )
    return passages
