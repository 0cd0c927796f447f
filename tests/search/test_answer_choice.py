"""Choosing the answer sentence: the fitted chooser's features, and the model run only when
the stored vectors can't decide whether to abstain."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.encoding import Embedder
from qa.search import build_query, build_reply
from qa.search.answer import AnswerParams
from qa.search.evidence import FEATURES, WEIGHTS, Candidate, features
from qa.service import QAService
from tests.conftest import make_settings

QUESTION = "What brand is the Haier factory for?"
ANSWER = "The factory is for Haier's high-end brand Casarte."


class Counting:
    """Wraps an embedder, counting the sentences it is asked to embed on their own."""

    def __init__(self, embedder: object) -> None:
        self.embedder = embedder
        self.sentences: list[str] = []

    def encode_sentences(self, texts: Sequence[str]) -> np.ndarray:
        self.sentences.extend(texts)
        return self.embedder.encode_sentences(texts)  # type: ignore[attr-defined]


def reply_with(service: QAService, question: str, params: AnswerParams, embedder: Counting):
    collection = service.collection()
    query = build_query(question, (), service.embedder)
    hits = service.retriever(collection).search(query, 5)
    return build_reply(query, hits, collection, embedder, params)  # type: ignore[arg-type]


def test_weights_match_features() -> None:
    assert len(WEIGHTS) == len(FEATURES) == len(set(FEATURES))


def test_features_reward_the_questions_rare_terms(seed_service: QAService) -> None:
    lexical = seed_service.collection().lexical
    texts = ["The factory is for Haier's high-end brand Casarte.", "It opened in 2020."]
    candidates = [Candidate(0, 0, 10, 0.5), Candidate(0, 11, 20, 0.5)]
    rows = features(QUESTION, candidates, texts, [1.0], [2], [0, 1], lexical)
    assert rows.shape == (2, len(FEATURES))
    coverage = FEATURES.index("coverage")
    assert rows[0, coverage] > 0 and rows[1, coverage] == 0
    assert rows[1, FEATURES.index("position")] == 0.5


def test_features_know_the_kind_of_fact_asked_for(seed_service: QAService) -> None:
    lexical = seed_service.collection().lexical
    texts = ["The factory opened its doors.", "It opened in 2020."]
    candidates = [Candidate(0, 0, 10, 0.5), Candidate(0, 11, 20, 0.5)]
    rows = features("When did the factory open?", candidates, texts, [1.0], [2], [0, 1], lexical)
    kind = FEATURES.index("answer_type")
    assert rows[0, kind] == 0 and rows[1, kind] == 1


def test_clear_answer_needs_no_model_run(seed_service: QAService) -> None:
    params = seed_service.params.of(seed_service.settings.collection).answer
    counting = Counting(seed_service.embedder)
    reply = reply_with(seed_service, QUESTION, params, counting)
    assert reply.answer is not None and reply.answer.text == ANSWER
    assert counting.sentences == []  # the stored vector was clear of the abstention bar


@pytest.mark.parametrize("band", [0.0, 2.0])
def test_only_sentences_near_the_bar_are_checked(seed_service: QAService, band: float) -> None:
    base = seed_service.params.of(seed_service.settings.collection).answer
    params = dataclasses.replace(base, check_below=band, check_above=band, tie_margin=-1.0)
    counting = Counting(seed_service.embedder)
    reply = reply_with(seed_service, QUESTION, params, counting)
    assert reply.answer is not None and reply.answer.text == ANSWER
    assert len(counting.sentences) == (base.checked if band else 0)


def test_checked_sentences_decide_abstention(seed_service: QAService) -> None:
    base = seed_service.params.of(seed_service.settings.collection).answer
    # a bar no standalone cosine reaches, with the check band around it: the check refuses
    params = dataclasses.replace(
        base, min_score=1.5, check_below=2.0, check_above=0.0, tie_margin=-1.0
    )
    counting = Counting(seed_service.embedder)
    assert reply_with(seed_service, QUESTION, params, counting).answer is None
    assert len(counting.sentences) == base.checked


def test_a_near_tie_between_passages_is_settled_by_the_sentences(
    tmp_path: Path, embedder: Embedder
) -> None:
    service = QAService(make_settings(tmp_path / "index"), embedder)
    service.add_text(
        "t", "notes", "Notes", "The lighthouse keeper feeds seventeen cats at dawn.", None
    )
    service.add_text(
        "t", "log", "Log", "The keeper writes down the feeding times of the cats.", None
    )
    collection = service.collection("t")
    query = build_query("How many cats does the lighthouse keeper feed?", (), embedder)
    hits = service.retriever(collection).search(query, 5)
    counting = Counting(embedder)
    params = dataclasses.replace(service.params.of("t").answer, tie_margin=100.0)  # always a tie
    reply = build_reply(query, hits, collection, counting, params)  # type: ignore[arg-type]
    assert reply.answer is not None and "seventeen cats" in reply.answer.text
    assert sorted(counting.sentences) == sorted(p.text for p in reply.passages[:2])
