"""Property tests (hypothesis) for reading and splitting: whatever the text, passages'
offsets reproduce it, nothing but recognised furniture and the title line is lost, and no
input (emoji, right-to-left, combining marks, NUL bytes, very long lines, CRLF) raises.

The runs are derandomized so CI is reproducible; set QA_HYPOTHESIS_EXAMPLES (e.g. 5000)
for a deeper local search.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qa.encoding import Embedder
from qa.ingest.documents import Document, Skip
from qa.ingest.passages import (
    Passage,
    layout,
    split_document,
    title_for_embedding,
    whitespace_token_counter,
)
from qa.ingest.readers import parse_bytes
from qa.ingest.sentences import sentence_spans

EXAMPLES = int(os.environ.get("QA_HYPOTHESIS_EXAMPLES", "300"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# --------------------------------------------------------------------------- strategies

# Pieces that exercise the splitter's rules: abbreviations, initials, decimals, quotes,
# CJK full stops, navigation words, scripts written right to left, combining marks,
# emoji (including joined sequences), bidi controls, NUL and other control characters.
TRICKY = [
    "Dr.",
    "Mr.",
    "U.S.",
    "e.g.",
    "J.",
    "2.5",
    "3.",
    "...",
    "\u2026",
    "!",
    "?",
    "?!",
    ":",
    ";",
    '"',
    "\u201c",
    "\u201d",
    "'",
    "(",
    ")",
    "[",
    "]",
    "#",
    "##",
    "- ",
    "* ",
    "> ",
    "|",
    "Top",
    "Share",
    "Back to top",
    "Advertisement",
    "Special Reports",
    "\u3002",
    "\uff01",
    "\uff1f",
    "\u300d",
    "\u65e5\u672c\u8a9e\u306e\u6587\u3002",
    "\u05e9\u05dc\u05d5\u05dd",
    "\u0645\u0631\u062d\u0628\u0627",
    "\u200f",
    "\u200e",
    "\u202e",
    "\u2066",
    "e\u0301",
    "a\u0308\u0323",
    "\u0915\u094d\u0937",
    "\U0001f600",
    "\U0001f469\u200d\U0001f4bb",
    "\U0001f1e8\U0001f1f3",
    "\ufeff",
    "\x00",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x85",
    "\u2028",
    "\u2029",
    "\u00a0",
    "\u3000",
    "\t",
    "\r",
    "\U0001d518\U0001d52b",
]
WORD = st.one_of(
    st.sampled_from(TRICKY),
    st.from_regex(r"[A-Za-z]{1,12}[.,!?]?", fullmatch=True),
    st.text(min_size=1, max_size=8),
)
LINE = st.lists(WORD, max_size=30).map(" ".join)
LONG_LINE = st.builds(
    lambda unit, times: unit * times,
    st.sampled_from(
        [
            "word ",
            "\u65e5\u672c",
            "a",
            "x.y/",
            "\U0001f600",
            "\u05e9\u05dc\u05d5\u05dd ",
            "Sentence one. ",
        ]
    ),
    st.integers(50, 1500),
)
SEPARATOR = st.sampled_from(
    ["\n", "\n", "\n\n", "\r\n", "\r\n\r\n", "\n \n", "\n\t\n", "\n\n\n", "\r"]
)


@st.composite
def raw_texts(draw: st.DrawFn) -> str:
    """Text shaped like a document (lines, blank lines, repeats), or any Unicode at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=400))
    lines = draw(st.lists(st.one_of(LINE, LINE, LINE, LONG_LINE), max_size=14))
    if lines and draw(st.booleans()):  # repeated short lines look like page furniture
        lines += [draw(st.sampled_from(lines))] * draw(st.integers(1, 3))
        if draw(st.booleans()):
            lines = [lines[-1], *lines]
    out = ""
    for line in lines:
        out += line + draw(SEPARATOR)
    return out


SUFFIXES = st.sampled_from([".txt", ".md", ".html"])
SPLIT = {
    "max_tokens": st.integers(16, 300),
    "min_chars": st.integers(0, 120),
    "title_in_embedding": st.booleans(),
}


# --------------------------------------------------------------------------- checks


def uncovered_text(text: str, spans: list[tuple[int, int]], start: int, end: int) -> str:
    """The visible characters of ``text[start:end]`` outside every span."""
    lost, position = [], start
    for s, e in sorted(spans):
        if s > position:
            lost.append(text[position:s].strip())
        position = max(position, e)
    lost.append(text[position:end].strip())
    return "".join(lost)


def check_passages(document: Document, passages: list[Passage], budget: int | None = None) -> None:
    """Every invariant of :func:`split_document`'s output."""
    text = document.text
    previous_end = document.body_start
    for ordinal, passage in enumerate(passages):
        # offsets reproduce the text exactly
        assert text[passage.char_start : passage.char_end] == passage.text
        assert passage.text and not passage.text[0].isspace() and not passage.text[-1].isspace()
        # in order, without overlap, inside the body
        assert passage.ordinal == ordinal and passage.document_id == document.id
        assert previous_end <= passage.char_start < passage.char_end <= len(text)
        previous_end = passage.char_end
        if budget is not None:
            assert whitespace_token_counter([passage.text])[0] <= budget, passage.text
    paragraphs = [p.paragraph for p in passages]
    assert paragraphs == sorted(paragraphs) and (not paragraphs or paragraphs[0] == 1)
    # nothing lost: every visible character of the body is in a passage or in furniture
    spans = [(p.char_start, p.char_end) for p in passages] + layout(document).furniture
    lost = uncovered_text(text, spans, document.body_start, len(text))
    assert not lost, f"lost text: {lost[:200]!r}"


def check_spans(text: str, spans: list[tuple[int, int]], start: int, end: int) -> None:
    """``sentence_spans`` invariants: ordered, disjoint, trimmed, inside, nothing lost."""
    position = start
    for s, e in spans:
        assert position <= s < e <= end
        assert not text[s].isspace() and not text[e - 1].isspace()
        position = e
    assert not uncovered_text(text, spans, start, end)


def budget_for(document: Document, max_tokens: int, title_in_embedding: bool) -> int:
    _, cost = title_for_embedding(
        document, whitespace_token_counter, max_tokens, title_in_embedding
    )
    return max(max_tokens - cost, 8)


# --------------------------------------------------------------------------- properties


@PROPERTY
@given(
    text=raw_texts(),
    suffix=SUFFIXES,
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
    **SPLIT,
)
@example(
    text="Title\r\n\r\nBody line one.\r\nBody line two.\r\n",
    suffix=".txt",
    encoding="utf-8",
    max_tokens=254,
    min_chars=40,
    title_in_embedding=True,
)
@example(
    text="\x00\x00 binary",
    suffix=".txt",
    encoding="utf-8",
    max_tokens=254,
    min_chars=40,
    title_in_embedding=True,
)
@example(
    text="T\n\n" + "\u65e5" * 20000,
    suffix=".txt",
    encoding="utf-8",
    max_tokens=64,
    min_chars=0,
    title_in_embedding=True,
)
@example(
    text="<p>unclosed <b>bold <p>\u202eevil\u202c<div>tail &amp; &#0; &#xD800;",
    suffix=".html",
    encoding="utf-8",
    max_tokens=254,
    min_chars=40,
    title_in_embedding=True,
)
@example(
    text="---\ntitle: x\n---\n# x\n\n\U0001f600 " * 3,
    suffix=".md",
    encoding="utf-16",
    max_tokens=16,
    min_chars=0,
    title_in_embedding=False,
)
def test_any_file_text_reads_and_splits_without_loss(
    text: str, suffix: str, encoding: str, max_tokens: int, min_chars: int, title_in_embedding: bool
) -> None:
    data = text.encode(encoding, "surrogatepass")
    try:
        document = parse_bytes(Path("doc" + suffix), "doc" + suffix, data)
    except Skip as skip:  # a clear refusal (binary, empty) is fine; any other exception is not
        assert skip.reason
        return
    assert 0 <= document.body_start <= len(document.text)
    assert "\r" not in document.text and not document.text.startswith("\ufeff")
    passages = split_document(
        document, whitespace_token_counter, max_tokens, min_chars, title_in_embedding
    )
    check_passages(document, passages, budget_for(document, max_tokens, title_in_embedding))
    if document.text[document.body_start :].strip() and not passages:
        # a body with text gives passages unless all of it is furniture
        assert layout(document).furniture


@PROPERTY
@given(text=st.one_of(raw_texts(), st.text()), data=st.data(), **SPLIT)
def test_any_document_splits_without_loss(
    text: str, data: st.DataObject, max_tokens: int, min_chars: int, title_in_embedding: bool
) -> None:
    """Documents built directly (JSONL, the write API): raw CR, any body_start, any title."""
    body_start = data.draw(st.integers(0, len(text)))
    title = data.draw(st.one_of(st.just(""), LINE, st.text(max_size=300)))
    document = Document("d", title, "mem", text, "jsonl", body_start=body_start)
    passages = split_document(
        document, whitespace_token_counter, max_tokens, min_chars, title_in_embedding
    )
    check_passages(document, passages, budget_for(document, max_tokens, title_in_embedding))


@PROPERTY
@given(text=st.one_of(raw_texts(), st.text()), data=st.data())
@example(text="Dr. Smith met Mr. Wu in the U.S. on Monday. They talked.", data=None)
@example(text="\u65e5\u672c\u3002\u3002\u300d\u6587\uff01 ok.\n\n\nNext", data=None)
def test_sentence_spans_invariants(text: str, data: st.DataObject | None) -> None:
    start, end = 0, len(text)
    if data is not None and text:
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, len(text)))
    spans = sentence_spans(text, start, end)
    check_spans(text, spans, start, end)
    if text[start:end].strip():
        assert spans
    # spans never contain a line break: a line break always ends a sentence
    assert all("\n" not in text[s:e] for s, e in spans)


# --------------------------------------------------------------------------- the real tokenizer

NASTY = [
    "Harbour log\n\n" + "The ship sailed at dawn. " * 400,
    "Title\n\n" + "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0" * 3000,
    "Title\n\n" + "x" * 30000,
    "Title\n\n" + "a" * 3000 + "!" * 3000,
    "Title\n\n" + "https://example.com/" + "a/b?c=d&" * 2000,
    "T\n\n\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd. " * 500,
    "T\n\n\U0001f469\u200d\U0001f4bb \U0001f1e8\U0001f1f3 e\u0301\u0301\u0301 " * 600,
    "T\n\nZ\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f "
    * 400,
    "Title\r\n\r\n" + "Line\x00with NUL. " * 300,
    "Top\n\nShare\n\nTop\n\n" + "Real prose ends here with a full stop. " * 50 + "\n\nTop\n",
]


@pytest.mark.parametrize("text", NASTY, ids=[f"nasty{i}" for i in range(len(NASTY))])
def test_real_tokenizer_keeps_every_passage_inside_the_window(
    embedder: Embedder, text: str
) -> None:
    document = (
        parse_bytes(Path("doc.txt"), "doc.txt", text.encode("utf-8"))
        if "\x00" not in text
        else Document("doc", "Title", "mem", text, "text", body_start=5)
    )
    passages = split_document(document, embedder.count_tokens, embedder.max_tokens)
    check_passages(document, passages)
    title, _ = title_for_embedding(document, embedder.count_tokens, embedder.max_tokens, True)
    sizes = embedder.count_tokens([f"{title}\n{p.text}" if title else p.text for p in passages])
    assert max(sizes) <= embedder.max_tokens


@settings(
    max_examples=max(40, EXAMPLES // 8),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=raw_texts(), max_tokens=st.integers(16, 254))
def test_real_tokenizer_properties(embedder: Embedder, text: str, max_tokens: int) -> None:
    document = Document("d", "A title", "mem", text, "text")
    passages = split_document(document, embedder.count_tokens, max_tokens)
    check_passages(document, passages)
    title, _ = title_for_embedding(document, embedder.count_tokens, max_tokens, True)
    sizes = embedder.count_tokens([f"{title}\n{p.text}" if title else p.text for p in passages])
    assert all(size <= max_tokens for size in sizes)
