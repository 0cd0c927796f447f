"""Questions about the bundled article return the right passages first."""

from __future__ import annotations

import pytest

from qa.service import QAService, UnknownCollection


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_nine_cities_first(seed_service: QAService, mode: str) -> None:
    reply = seed_service.search(
        "How many cities does the G60 corridor connect?", top_k=5, mode=mode
    )
    assert "connects nine cities" in reply.passages[0].text


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_casarte_first(seed_service: QAService, mode: str) -> None:
    reply = seed_service.search("What brand is the Haier factory for?", top_k=5, mode=mode)
    assert "Casarte" in reply.passages[0].text


def test_citations_point_at_real_text(seed_service: QAService) -> None:
    reply = seed_service.ask("How do talents get help with rent?", top_k=5)
    collection = seed_service.collection()
    for passage in reply.passages:
        document = collection.document(passage.citation.document_id)
        assert document is not None
        assert (
            document.text[passage.citation.char_start : passage.citation.char_end] == passage.text
        )
        for start, end in passage.highlights:
            assert 0 <= start < end <= len(passage.text)
    assert reply.answer is not None
    cited = next(p for p in reply.passages if p.passage_id == reply.answer.passage_id)
    assert cited.text[reply.answer.start : reply.answer.end] == reply.answer.text


def test_top_k_larger_than_collection(seed_service: QAService) -> None:
    reply = seed_service.search("Songjiang", top_k=50)
    assert len(reply.passages) == 19
    assert len({p.passage_id for p in reply.passages}) == 19


def test_unknown_collection_lists_the_known_ones(seed_service: QAService) -> None:
    with pytest.raises(UnknownCollection, match="available collections: 'default'"):
        seed_service.search("anything", "nope", 3)


def test_hybrid_with_its_dense_half_in_a_thread_ranks_the_same(
    seed_service: QAService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large collections run the dense search beside BM25; the ranking doesn't change."""
    questions = ["How many cities does the G60 corridor connect?", "Who pays the rent?"]
    alone = [seed_service.search(q, top_k=8).passages for q in questions]
    monkeypatch.setattr("qa.search.retriever.PARALLEL_ROWS", 0)
    beside = [seed_service.search(q, top_k=8).passages for q in questions]
    assert [[(p.passage_id, p.score) for p in r] for r in beside] == [
        [(p.passage_id, p.score) for p in r] for r in alone
    ]


def test_reply_as_plain_data_is_a_copy(seed_service: QAService) -> None:
    """``Reply.to_dict`` gives what ``dataclasses.asdict`` gave (highlights as lists), and
    changing it (the API makes citation addresses absolute) leaves the reply as it was."""
    from dataclasses import asdict

    reply = seed_service.ask("How many cities does the G60 corridor connect?", top_k=5)
    expected = asdict(reply)
    for passage in expected["passages"]:
        passage["highlights"] = [list(span) for span in passage["highlights"]]
    data = reply.to_dict()
    assert data == expected and data["answer"] is not None
    data["passages"][0]["citation"]["url"] = "http://elsewhere/"
    data["passages"][0]["highlights"].append([0, 1])
    assert reply.to_dict() == expected
