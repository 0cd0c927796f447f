"""Splitting documents into passages: exact offsets, furniture, long paragraphs."""

from __future__ import annotations

from qa.encoding import Embedder
from qa.ingest.discovery import discover
from qa.ingest.documents import Document, Skip
from qa.ingest.passages import layout, split_document
from qa.ingest.readers import read_file
from qa.ingest.sentences import sentence_spans
from tests.helpers import FIXTURES_DIR, SEED_FILE

FIXTURES = FIXTURES_DIR / "docs"


def _seed() -> Document:
    return read_file(SEED_FILE, SEED_FILE.name)


def test_seed_offsets_reproduce_every_passage(embedder: Embedder) -> None:
    doc = _seed()
    passages = split_document(doc, embedder.count_tokens, embedder.max_tokens)
    assert len(passages) == 19
    for number, passage in enumerate(passages, start=1):
        assert doc.text[passage.char_start : passage.char_end] == passage.text
        assert passage.paragraph == number
        assert passage.document_id == doc.id


def test_seed_furniture_and_title_are_not_passages(embedder: Embedder) -> None:
    doc = _seed()
    texts = [p.text for p in split_document(doc, embedder.count_tokens, embedder.max_tokens)]
    furniture = [doc.text[s:e] for s, e in layout(doc).furniture]
    assert furniture == ["Tian Shengjie", "Tian Shengjie", "Special Reports", "Top"]
    assert not any("Tian Shengjie" == t or t in ("Special Reports", "Top") for t in texts)
    assert not any(doc.title in t for t in texts)
    assert texts[0].startswith("International cooperation is important")
    assert any("connects nine cities" in t for t in texts)


def test_fixture_offsets(embedder: Embedder) -> None:
    for item in discover([FIXTURES]):
        if isinstance(item, Skip):
            continue
        passages = split_document(item, embedder.count_tokens, embedder.max_tokens)
        assert passages, item.id
        for passage in passages:
            assert item.text[passage.char_start : passage.char_end] == passage.text


def test_pdf_passages_keep_page_numbers(embedder: Embedder) -> None:
    doc = read_file(FIXTURES / "report.pdf", "report.pdf")
    pages = {p.page for p in split_document(doc, embedder.count_tokens, embedder.max_tokens)}
    assert pages == {1, 2}


def test_long_paragraph_split_at_sentences_without_loss(embedder: Embedder) -> None:
    sentences = [
        f"Sentence number {i} talks about the harbour, the ships and the weather in detail."
        for i in range(60)
    ]
    body = " ".join(sentences)
    doc = Document(
        "long", "Harbour log", "mem", "Harbour log\n\n" + body + "\n", "text", body_start=11
    )
    passages = split_document(doc, embedder.count_tokens, embedder.max_tokens)
    assert len(passages) > 1
    assert {p.paragraph for p in passages} == {1}
    for passage in passages:
        assert passage.text.startswith("Sentence number ") and passage.text.endswith(".")
        # every passage fits the model's window together with the title
        assert embedder.count_tokens(["Harbour log\n" + passage.text])[0] <= embedder.max_tokens
    rejoined = " ".join(p.text for p in passages)
    assert rejoined == body


def test_overlong_sentence_is_split_at_words(embedder: Embedder) -> None:
    body = " ".join(f"word{i}" for i in range(800))
    doc = Document("w", "", "mem", body, "text")
    passages = split_document(doc, embedder.count_tokens, embedder.max_tokens)
    assert len(passages) > 1
    assert " ".join(p.text for p in passages) == body
    assert max(embedder.count_tokens([p.text for p in passages])) <= embedder.max_tokens


def test_short_heading_merges_into_next_paragraph() -> None:
    text = "Guide\n\n## Install\n\nRun the installer and follow the prompts on the screen.\n"
    doc = Document("g", "Guide", "mem", text, "markdown", body_start=5)
    passages = split_document(doc)
    assert len(passages) == 1
    assert passages[0].text.startswith("## Install")
    assert passages[0].text.endswith("screen.")


def test_hard_wrapped_lines_join_into_one_paragraph() -> None:
    text = (
        "Title\n\nThis paragraph was wrapped by an editor at a fixed width so that\n"
        "its lines continue one another until the sentence finally ends here.\n\n"
        "A second paragraph follows after a blank line and is separate.\n"
    )
    doc = Document("w", "Title", "mem", text, "text", body_start=5)
    passages = split_document(doc)
    assert len(passages) == 2
    assert "\n" in passages[0].text


def test_sentence_spans_respect_abbreviations() -> None:
    text = "Dr. Smith met Mr. Wu in the U.S. on Monday. They talked. Prices rose 2.5 percent!"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == [
        "Dr. Smith met Mr. Wu in the U.S. on Monday.",
        "They talked.",
        "Prices rose 2.5 percent!",
    ]
