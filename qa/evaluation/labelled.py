"""Labelled questions scored one by one on a loaded collection with given search settings:
what ``qa tune`` cross-validates and what ``qa index --gate`` compares.

Each question gets its nDCG@10 (answerable questions; the same qrels and ranking as
``qa eval``) and the score of the best answer sentence, found with abstention switched off,
so any abstention threshold can be tried afterwards without asking again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.evaluation.build import _qrels
from qa.evaluation.datasets import Dataset
from qa.evaluation.metrics import compute_metrics
from qa.evaluation.prepare import snippet_qrels
from qa.evaluation.run import PASSAGE_DEPTH, aggregate_documents, passage_key
from qa.search.answer import searched_texts
from qa.search.evidence import missing_idf

if TYPE_CHECKING:
    from qa.search import SearchParams
    from qa.service import QAService
    from qa.store import Collection

METRIC = "ndcg@10"
DEPTH = 10  # nDCG@10 needs ten results
NO_ABSTENTION = -10.0  # below any cosine-based answer score: every reply keeps its answer


@dataclass(frozen=True)
class Scored:
    """One question under one setting."""

    answerable: bool  # it has a relevant (grade > 0) passage or document
    ndcg: float | None  # None for a question without relevant gold
    answer_score: float | None  # the best sentence's score; None when there was no candidate
    judged: bool = True  # False: only non-relevant gold ("wrong passage"), no abstention verdict
    missing: float = 0.0  # idf of the rarest question term no considered passage holds

    def answered(self, threshold: float, missing_weight: float = 0.0) -> bool:
        """Whether the service answers (rather than abstains) at ``threshold``, its answer
        score lowered by ``missing_weight`` x :attr:`missing`."""
        if self.answer_score is None:
            return False
        return self.answer_score - missing_weight * self.missing >= threshold

    def abstention_right(self, threshold: float, missing_weight: float = 0.0) -> float:
        """1 when it answers an answerable question or abstains on one without gold."""
        return float(self.answered(threshold, missing_weight) == self.answerable)


def score_questions(
    service: QAService,
    collection: Collection,
    dataset: Dataset,
    params: SearchParams,
    with_answer: bool = True,
) -> list[Scored]:
    """Every question of ``dataset`` asked of ``collection`` with ``params``, in order."""
    qrels = _qrels(dataset, snippet_qrels(dataset, collection))
    # every answer kept, each scored by its sentence embedded on its own: the scale the bar
    # is checked on near it (AnswerParams.check_below / check_above); the missing-term
    # penalty is recorded apart, so any weight can be tried afterwards
    answer = dataclasses.replace(
        params.answer,
        min_score=NO_ABSTENTION,
        check_below=0.0,
        check_above=2.0 - NO_ABSTENTION,
        missing_term_weight=0.0,
    )
    considered = params.answer.sentence_passages
    open_params = dataclasses.replace(params, answer=answer)
    run: dict[str, list[str]] = {}
    answers: dict[str, float | None] = {}
    missing: dict[str, float] = {}
    for question in dataset.questions:
        document_level = question.unit == "document"
        reply = service.search(
            question.text,
            collection,
            DEPTH * PASSAGE_DEPTH if document_level else DEPTH,
            question.history,
            with_answer=with_answer,
            params=open_params,
        )
        if document_level:
            hits = [(p.citation.document_id, p.passage_id, p.score, "") for p in reply.passages]
            run[question.id] = [item.id for item in aggregate_documents(hits)][:DEPTH]
        else:
            run[question.id] = [passage_key(p.passage_id) for p in reply.passages]
        answers[question.id] = reply.answer.score if reply.answer is not None else None
        if with_answer:  # what abstention is tuned on; ranking-only runs skip it
            texts = searched_texts(reply.passages[:considered])
            missing[question.id] = missing_idf(question.text, texts, collection.lexical)
    _, per_query = compute_metrics(qrels, run) if qrels else ({}, {})
    out = []
    for q in dataset.questions:
        relevant = any(grade > 0 for grade in qrels.get(q.id, {}).values())
        ndcg = per_query.get(q.id, {}).get(METRIC, 0.0) if relevant else None
        judged = relevant or not q.answerable
        out.append(Scored(relevant, ndcg, answers[q.id], judged, missing.get(q.id, 0.0)))
    return out


def mean_ndcg(scored: Sequence[Scored]) -> float | None:
    """Mean nDCG@10 over the answerable questions (None without any)."""
    values = [s.ndcg for s in scored if s.ndcg is not None]
    return sum(values) / len(values) if values else None


def abstention_accuracy(
    scored: Sequence[Scored], threshold: float, missing_weight: float = 0.0
) -> float | None:
    """Share of questions where answering or abstaining at ``threshold`` was right."""
    judged = [s for s in scored if s.judged]
    right = sum(s.abstention_right(threshold, missing_weight) for s in judged)
    return right / len(judged) if judged else None
