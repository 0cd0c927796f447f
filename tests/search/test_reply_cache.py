"""Repeated questions are answered from the reply cache, never across generations, readers
or filters."""

from __future__ import annotations

import dataclasses

from qa.encoding import Embedder
from qa.search.scope import Filters, Scope
from qa.service import QAService
from tests.conftest import make_settings

FERRY = "The ferry to the island leaves at noon every day from pier four."
TRAIN = "The night train to the capital leaves at ten from platform two."


def _service(tmp_path, embedder: Embedder, **overrides: object) -> QAService:  # type: ignore[no-untyped-def]
    service = QAService(make_settings(tmp_path / "index", **overrides), embedder)
    service.add_text("c", "ferry", "Ferry", FERRY, None, {"groups": ["sea"]})
    service.add_text("c", "train", "Train", TRAIN, None)
    return service


def test_a_repeated_question_is_answered_from_the_cache(tmp_path, embedder: Embedder) -> None:  # type: ignore[no-untyped-def]
    service = _service(tmp_path, embedder)
    first = service.ask("When does the ferry leave?", "c")
    again = service.ask("When does the ferry leave?", "c")
    assert "cached" not in first.timings_ms
    assert again.timings_ms["cached"] == 1.0
    assert set(again.timings_ms) >= {"embed", "search", "answer", "total"}
    assert again.answer == first.answer
    assert [p.passage_id for p in again.passages] == [p.passage_id for p in first.passages]
    again.passages[0].highlights.append((0, 1))  # a caller's change reaches no one else
    again.passages[0].citation = dataclasses.replace(again.passages[0].citation, url="/x")
    again.passages.pop()
    third = service.ask("When does the ferry leave?", "c")
    assert third.passages[0].highlights == first.passages[0].highlights
    assert third.passages[0].citation == first.passages[0].citation
    assert len(third.passages) == len(first.passages)


def test_no_reply_crosses_readers_filters_or_generations(tmp_path, embedder: Embedder) -> None:  # type: ignore[no-untyped-def]
    service = _service(tmp_path, embedder)
    question = "When does the ferry leave?"
    sailor = service.ask(question, "c", scope=Scope(frozenset({"sea"})))
    assert sailor.passages[0].citation.document_id == "ferry"
    stranger = service.ask(question, "c", scope=Scope(frozenset({"rail"})))
    assert "cached" not in stranger.timings_ms
    assert all(p.citation.document_id != "ferry" for p in stranger.passages)
    filtered = service.ask(question, "c", scope=Scope(None, Filters(document_id=("train",))))
    assert "cached" not in filtered.timings_ms
    assert [p.citation.document_id for p in filtered.passages] == ["train"]
    service.add_text("c", "ferry", "Ferry", FERRY.replace("noon", "one o'clock"), None)
    updated = service.ask(question, "c", scope=Scope(frozenset({"sea"})))
    assert "cached" not in updated.timings_ms
    assert "one o'clock" in updated.passages[0].text


def test_the_cache_can_be_turned_off(tmp_path, embedder: Embedder) -> None:  # type: ignore[no-untyped-def]
    service = _service(tmp_path, embedder, reply_cache=0)
    service.ask("When does the ferry leave?", "c")
    assert "cached" not in service.ask("When does the ferry leave?", "c").timings_ms
    assert len(service.replies) == 0
