"""Choosing the answer sentence: the fitted chooser's features, and the sentences' own
vectors (stored at index time; embedded per question only for an older collection) where
the late-chunked ones can't decide."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.encoding import Embedder
from qa.search import build_query, build_reply
from qa.search.answer import AnswerParams, Reply
from qa.search.evidence import FEATURES, WEIGHTS, Candidate, asks_or_heads, features, missing_idf
from qa.search.followups import Turn
from qa.service import QAService
from qa.store import Collection
from qa.store.segment import Sentences
from tests.conftest import make_settings

ARTICLE_QUESTIONS = Path(__file__).parents[2] / "scripts" / "data" / "songjiang_questions.jsonl"

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


class LateOnly:
    """A collection as written before vectors version 3: each sentence row holds its
    late-chunked vector only."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)

    def sentences(self, ids: Iterable[int]) -> dict[int, Sentences]:
        stored = self.collection.sentences(ids)
        return {i: (spans, rows[:, :384]) for i, (spans, rows) in stored.items()}


def reply_with(
    service: QAService,
    question: str,
    params: AnswerParams,
    embedder: Counting,
    history: Sequence[Turn] = (),
    old: bool = False,
) -> Reply:
    collection = service.collection()
    query = build_query(question, history, service.embedder)
    hits = service.retriever(collection).search(query, 5)
    shown = LateOnly(collection) if old else collection
    return build_reply(query, hits, shown, embedder, params)  # type: ignore[arg-type]


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
    assert counting.sentences == []


@pytest.mark.parametrize("old", [False, True])
@pytest.mark.parametrize("band", [0.0, 2.0])
def test_only_sentences_near_the_bar_are_checked(
    seed_service: QAService, band: float, old: bool
) -> None:
    """Near the bar the sentences' own vectors decide: stored ones, or (a collection written
    before they were stored) embedded now."""
    base = seed_service.params.of(seed_service.settings.collection).answer
    params = dataclasses.replace(base, check_below=band, check_above=band, tie_margin=-1.0)
    counting = Counting(seed_service.embedder)
    reply = reply_with(seed_service, QUESTION, params, counting, old=old)
    assert reply.answer is not None and reply.answer.text == ANSWER
    assert len(counting.sentences) == (base.checked if band and old else 0)


@pytest.mark.parametrize("old", [False, True])
def test_checked_sentences_decide_abstention(seed_service: QAService, old: bool) -> None:
    base = seed_service.params.of(seed_service.settings.collection).answer
    # a bar no standalone cosine reaches, with the check band around it: the check refuses
    params = dataclasses.replace(
        base, min_score=1.5, check_below=2.0, check_above=0.0, tie_margin=-1.0
    )
    counting = Counting(seed_service.embedder)
    assert reply_with(seed_service, QUESTION, params, counting, old=old).answer is None
    assert len(counting.sentences) == (base.checked if old else 0)


def test_stored_own_vectors_answer_like_embedding_them_per_question(
    seed_service: QAService,
) -> None:
    """Every labelled article question (follow-ups with their history), answered from the
    sentence vectors stored at index time and by embedding the sentences per question as
    before: the same sentence or the same abstention, the same score to float16's precision,
    and no model run beyond the question."""
    params = seed_service.params.of(seed_service.settings.collection).answer
    stored_runs, old_runs = Counting(seed_service.embedder), Counting(seed_service.embedder)
    labelled = [json.loads(line) for line in ARTICLE_QUESTIONS.read_text().splitlines() if line]
    for item in labelled:
        history = [Turn(**turn) for turn in item.get("history", [])]
        new = reply_with(seed_service, item["question"], params, stored_runs, history)
        old = reply_with(seed_service, item["question"], params, old_runs, history, old=True)
        assert (new.answer is None) == (old.answer is None), item["id"]
        if new.answer is not None and old.answer is not None:
            assert new.answer.text == old.answer.text, item["id"]
            assert new.answer.score == pytest.approx(old.answer.score, abs=2e-3), item["id"]
    assert stored_runs.sentences == []
    assert old_runs.sentences  # the old path did embed sentences for some questions


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
    params = dataclasses.replace(service.params.of("t").answer, tie_margin=100.0)  # always a tie
    for old in (False, True):
        counting = Counting(embedder)
        shown = LateOnly(collection) if old else collection
        reply = build_reply(query, hits, shown, counting, params)  # type: ignore[arg-type]
        assert reply.answer is not None and "seventeen cats" in reply.answer.text
        embedded = sorted(p.text for p in reply.passages[:2]) if old else []
        assert sorted(counting.sentences) == embedded


def test_a_question_term_no_passage_holds_lowers_the_answer_score(seed_service: QAService) -> None:
    """With ``missing_term_weight`` (``qa tune`` fits it per collection), a question asking
    for a word none of the considered passages holds ("population") scores lower and, past
    the bar, is not answered; a question whose words are all there keeps its score."""
    lexical = seed_service.collection().lexical
    base = seed_service.params.of(seed_service.settings.collection).answer
    assert base.missing_term_weight == 0.0  # off by default
    weighed = dataclasses.replace(base, missing_term_weight=0.1)
    counting = Counting(seed_service.embedder)
    unanswerable = "What is the population of Songjiang District?"
    plain = reply_with(seed_service, unanswerable, base, counting)
    assert plain.answer is not None  # the default answers it with the closest sentence
    texts = [p.text for p in plain.passages[: base.sentence_passages]]
    missing = missing_idf(unanswerable, texts, lexical)
    assert missing == pytest.approx(lexical.idf("popul"))  # the stem no passage holds
    assert reply_with(seed_service, unanswerable, weighed, counting).answer is None
    answered = [reply_with(seed_service, QUESTION, p, counting).answer for p in (base, weighed)]
    assert answered[0] is not None and answered[1] is not None
    assert answered[0].text == answered[1].text == ANSWER
    assert answered[0].score == answered[1].score


def test_a_heading_or_a_question_is_never_the_answer(tmp_path: Path, embedder: Embedder) -> None:
    """An FAQ entry's heading restates the question and is the closest sentence to it, but
    the answer is the sentence after it; a lone heading line ("BDFL") or a sentence that asks
    is passed over too, while a signature ending in ")" stays a candidate."""
    service = QAService(make_settings(tmp_path / "index"), embedder)
    faq = (
        "How do I parcel out work among a bunch of worker threads?\n\n"
        "The easiest way is to use the concurrent.futures module, especially the "
        "ThreadPoolExecutor class."
    )
    service.add_text("t", "faq", "Library and Extension FAQ", faq, None)
    reply = service.ask("How do I parcel out work among worker threads?", "t")
    assert reply.answer is not None
    assert reply.answer.text.startswith("The easiest way is to use the concurrent.futures")
    assert asks_or_heads(faq, 0, faq.index("?") + 1)
    glossary = "BDFL\n\nBenevolent Dictator For Life, Guido van Rossum, Python's creator."
    assert asks_or_heads(glossary, 0, 4)
    assert not asks_or_heads(glossary, 6, len(glossary))
    assert asks_or_heads("6.16. Evaluation order\n\nPython evaluates from left to right.", 0, 22)
    signature = "random.choices(population, k=1)\n\nReturn a k sized list."
    assert not asks_or_heads(signature, 0, signature.index(")") + 1)
    assert not asks_or_heads("Is it fast? No.", 12, 15)
    assert not asks_or_heads("Only a heading", 0, 14)  # nothing follows it
