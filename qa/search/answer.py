"""Turn ranked passages into a reply: citations, the answering sentence, highlights, or "not found"."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from qa.search.answer_model import MIN_ANSWERABILITY, QUESTION_MODEL, SENTENCE_MODEL
from qa.search.features import Candidate, QuestionTerms, question_features, sentence_features
from qa.search.retriever import Hit, Query
from qa.store import Collection, PassageRow
from qa.store.lexical import LexicalIndex


@dataclass(frozen=True)
class Citation:
    """Where a passage comes from: ``document.text[char_start:char_end] == passage.text``."""

    document_id: str
    title: str
    source: str
    paragraph: int
    char_start: int
    char_end: int
    page: int | None = None


@dataclass
class RankedPassage:
    rank: int
    passage_id: int
    score: float
    text: str
    citation: Citation
    highlights: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class AnswerSpan:
    """The sentence that best answers, as a span inside one of the returned passages."""

    text: str
    passage_id: int
    start: int
    end: int
    score: float


@dataclass
class Reply:
    query: str
    answer: AnswerSpan | None
    passages: list[RankedPassage]
    generation: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for passage in out["passages"]:
            passage["highlights"] = [list(span) for span in passage["highlights"]]
        return out


@dataclass
class AnswerParams:
    """How the answer sentence is chosen and when to abstain (see qa/search/answer_model.py)."""

    sentence_passages: int = 5  # how many top passages' sentences compete
    highlight_margin: float = (
        0.15  # sentences this close (answer probability) to the best are highlighted
    )
    min_score: float = (
        MIN_ANSWERABILITY  # abstain below this answerability (calibrated; see README)
    )


def ranked_passages(hits: list[Hit], rows: dict[int, PassageRow]) -> list[RankedPassage]:
    """Hits joined with their stored text and citation, in rank order."""
    out = []
    for hit in hits:
        row = rows.get(hit.passage_id)
        if row is None:  # a stale id can never become a made-up citation
            continue
        citation = Citation(
            document_id=row.document_id,
            title=row.title,
            source=row.source,
            paragraph=row.paragraph,
            char_start=row.char_start,
            char_end=row.char_end,
            page=row.page,
        )
        out.append(RankedPassage(len(out) + 1, row.id, round(hit.score, 6), row.text, citation))
    return out


def candidates(
    query: Query,
    passages: list[RankedPassage],
    vectors: dict[int, tuple[list[tuple[int, int]], np.ndarray]],
    lexical: LexicalIndex,
    params: AnswerParams,
) -> tuple[QuestionTerms, list[Candidate]]:
    """Every sentence of the top passages, with the signals that choose the answer."""
    question = QuestionTerms.of(query.bm25_text, lexical)
    considered = passages[: params.sentence_passages]
    sentences = []
    for index, passage in enumerate(considered):
        spans, sentence_vectors = vectors.get(passage.passage_id, ([], np.zeros((0, 1))))
        if not spans:
            continue
        similarity = sentence_vectors @ query.vector
        for position, (span, value) in enumerate(zip(spans, similarity.tolist())):
            sentences.append((index, span, passage.text[span[0] : span[1]], value, position))
    scored = [(p.text, p.score) for p in considered]
    return question, sentence_features(question, sentences, scored)


def choose_answer(
    query: Query,
    passages: list[RankedPassage],
    vectors: dict[int, tuple[list[tuple[int, int]], np.ndarray]],
    lexical: LexicalIndex,
    params: AnswerParams,
    top_dense: float,
) -> AnswerSpan | None:
    """Mark the sentence of the top passages that best answers the query.

    Each sentence is scored by :data:`SENTENCE_MODEL` from signals retrieval already has (no
    model runs); the best is the answer and the ones close to it are highlighted (each
    passage's ``highlights``, spans inside its text, set as a side effect). Returns ``None``
    (the documents don't answer) when :data:`QUESTION_MODEL` judges the question unanswered
    by them: its answerability is below ``params.min_score``.
    """
    question, found = candidates(query, passages, vectors, lexical, params)
    if not found:
        return None
    probabilities = SENTENCE_MODEL.probability(np.stack([c.features for c in found]))
    ranked = [
        (found[i], float(probabilities[i])) for i in np.argsort(-probabilities, kind="stable")
    ]
    best, best_probability = ranked[0]
    for candidate, probability in ranked:
        if probability >= best_probability - params.highlight_margin:
            passages[candidate.index].highlights.append(candidate.span)
    for passage in passages:
        passage.highlights.sort()
    signals = question_features(question, ranked, top_dense)
    answerability = float(QUESTION_MODEL.probability(signals[None, :])[0])
    if answerability < params.min_score:
        return None
    passage = passages[best.index]
    start, end = best.span
    return AnswerSpan(
        passage.text[start:end], passage.passage_id, start, end, round(answerability, 6)
    )


def build_reply(
    query: Query,
    hits: list[Hit],
    collection: Collection,
    params: AnswerParams,
    with_answer: bool = True,
) -> Reply:
    """The full reply for ``hits``: passages with citations and, optionally, the answer."""
    rows = collection.passages(h.passage_id for h in hits)
    passages = ranked_passages(hits, rows)
    answer = None
    if with_answer and passages:
        top = [p.passage_id for p in passages[: params.sentence_passages]]
        top_dense = float(collection.vectors([top[0]])[0] @ query.vector)
        sentences = collection.sentences(top)
        answer = choose_answer(query, passages, sentences, collection.lexical, params, top_dense)
    return Reply(
        query=query.text, answer=answer, passages=passages, generation=collection.generation
    )
