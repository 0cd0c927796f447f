"""Answer quality features: sentence vectors, answer spans, follow-ups, abstention, reranker hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.encoding import CrossEncoderReranker, Embedder
from qa.search.followups import Turn, build_query, needs_context
from qa.service import QAService


def test_every_passage_has_sentence_vectors(seed_service: QAService) -> None:
    collection = seed_service.collection()
    rows = collection.passages_of(list(collection.document_hashes()))
    sentences = collection.sentences(r.id for r in rows)
    assert set(sentences) == {r.id for r in rows}
    for row in rows:
        spans, vectors = sentences[row.id]
        assert len(spans) == len(vectors) >= 1
        for start, end in spans:
            assert 0 <= start < end <= len(row.text)
            assert row.text[start:end].strip() == row.text[start:end]
        for half in (vectors[:, :384], vectors[:, 384:]):  # late-chunked, own
            assert np.allclose(np.linalg.norm(half, axis=1), 1, atol=1e-2)


def test_answer_is_the_sentence_that_answers(seed_service: QAService) -> None:
    reply = seed_service.ask("What brand is the Haier factory for?")
    assert reply.answer is not None
    assert reply.answer.text == "The factory is for Haier's high-end brand Casarte."
    passage = next(p for p in reply.passages if p.passage_id == reply.answer.passage_id)
    assert passage.text[reply.answer.start : reply.answer.end] == reply.answer.text
    assert (reply.answer.start, reply.answer.end) in passage.highlights


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many cities does it connect?", True),
        ("Which of them are in Zhejiang?", True),
        ("And the rent?", True),
        ("What about Anhui?", True),
        ("What brand is the Haier factory in Songjiang for?", False),
        (
            "How many industrial companies in Songjiang have yearly revenue over 20 million yuan?",
            False,
        ),
        ("So which of them are in Anhui?", True),
        ("Why?", True),
        # openers are whole words: a question that merely starts with the same letters stands alone
        ("Songjiang's fiscal revenue grew by how much between 2016 and 2020?", False),
        ("Android phones: does the Haier factory in Songjiang make any?", False),
        ("Butterfly valves made by Shanghai Haier Laundry Electric Appliance?", False),
    ],
)
def test_needs_context(question: str, expected: bool) -> None:
    assert needs_context(question) is expected


def test_follow_up_retrieves_like_its_self_contained_twin(seed_service: QAService) -> None:
    history = [
        Turn(role="user", content="How many cities does the G60 corridor connect?"),
        Turn(role="assistant", content="The seven-year-old G60 Corridor connects nine cities."),
    ]
    follow_up = seed_service.ask("Which of them are in Zhejiang?", history=history)
    alone = seed_service.ask("Which cities of the G60 corridor are in Zhejiang?")
    assert "Jiaxing, Hangzhou, Jinhua and Huzhou in Zhejiang" in follow_up.passages[0].text
    assert follow_up.passages[0].passage_id == alone.passages[0].passage_id
    assert (
        follow_up.query
        == "How many cities does the G60 corridor connect? Which of them are in Zhejiang?"
    )


def test_self_contained_question_is_not_dragged_back(seed_service: QAService) -> None:
    history = [Turn(role="user", content="How many cities does the G60 corridor connect?")]
    reply = seed_service.ask("What brand is the Haier factory in Songjiang for?", history=history)
    assert reply.query == "What brand is the Haier factory in Songjiang for?"
    assert "Casarte" in reply.passages[0].text


def test_follow_up_query_vector_blends_the_turns(embedder: Embedder) -> None:
    history = [Turn(role="user", content="Tell me about Haier's factory in Songjiang.")]
    query = build_query("How big is it?", history, embedder)
    alone = embedder.encode_queries(["How big is it?"])[0]
    previous = embedder.encode_queries(["Tell me about Haier's factory in Songjiang."])[0]
    assert float(query.vector @ previous) > float(alone @ previous)
    assert query.context and query.bm25_text == "How big is it?"


def test_off_topic_question_is_not_answered(seed_service: QAService) -> None:
    reply = seed_service.ask("Who won the football World Cup in 1998?")
    assert reply.answer is None
    assert reply.passages  # the nearest passages are still listed


def test_reranker_hook_orders_by_the_cross_encoder(
    seed_settings: Settings, embedder: Embedder, tiny_cross_encoder_dir: Path
) -> None:
    settings = seed_settings.model_copy(
        update={"reranker": str(tiny_cross_encoder_dir), "reranker_top_n": 10}
    )
    service = QAService(settings, embedder)
    reply = service.search("How many cities does the G60 corridor connect?", top_k=10)
    reranker = CrossEncoderReranker(str(tiny_cross_encoder_dir))
    expected = reranker.scores(
        "How many cities does the G60 corridor connect?", [p.text for p in reply.passages]
    )
    assert [p.score for p in reply.passages] == pytest.approx(
        sorted(expected.tolist(), reverse=True), abs=1e-5
    )


def test_bad_reranker_folder_is_a_clear_error(tmp_path: Path) -> None:
    from qa.errors import ModelError

    with pytest.raises(ModelError, match="could not load the reranker"):
        CrossEncoderReranker(str(tmp_path))
