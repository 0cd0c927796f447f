"""The signals the answer sentence is chosen by, and the ones abstention is decided by.

Every signal is computed from what retrieval already has: the question's vector, the stored
(late-chunked) sentence vectors, BM25's term statistics and the passages' ranks. No model
runs here: choosing the answer costs no more than a few dot products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qa.search.qtype import AnswerType, answer_type, holds_type
from qa.store.lexical import LexicalIndex, tokenize

SENTENCE_FEATURES = (
    "dense",  # cosine of the sentence's stored vector with the question's
    "dense_gap",  # that cosine minus the best candidate's (0 for the best)
    "coverage",  # share of the question's term weight (BM25 idf) the sentence holds
    "passage_coverage",  # the same for the sentence's whole passage
    "passage_score",  # the passage's retrieval score over the first passage's
    "passage_rank",  # 1 / rank of the passage
    "answer_type",  # 1 when the sentence holds the kind of answer asked for, 0.5 when unknown
    "position",  # 1 / (1 + the sentence's position in its passage)
    "length",  # log of its word count
    "novelty",  # share of its terms that the question does not already use
)


@dataclass(frozen=True)
class Candidate:
    """One sentence that could be the answer."""

    index: int  # position of its passage among the ranked passages
    span: tuple[int, int]  # inside the passage's text
    text: str
    features: np.ndarray  # in the order of SENTENCE_FEATURES


@dataclass(frozen=True)
class QuestionTerms:
    """The question's content terms (stemmed, stopwords out) and how rare each is."""

    weights: dict[str, float]  # term -> idf
    kind: AnswerType
    question: str

    @classmethod
    def of(cls, question: str, lexical: LexicalIndex) -> QuestionTerms:
        terms = sorted(set(tokenize([question])[0]))
        return cls(dict(zip(terms, lexical.idf(terms))), answer_type(question), question)

    def coverage(self, terms: set[str]) -> float:
        total = sum(self.weights.values())
        return sum(w for t, w in self.weights.items() if t in terms) / total if total > 0 else 0.0

    def novelty(self, terms: set[str]) -> float:
        return len(terms - set(self.weights)) / len(terms) if terms else 0.0


def sentence_features(
    question: QuestionTerms,
    sentences: list[tuple[int, tuple[int, int], str, float, int]],
    passages: list[tuple[str, float]],
) -> list[Candidate]:
    """Candidates with their features. ``sentences`` holds (passage index, span, text,
    dense cosine, position in the passage); ``passages`` (text, retrieval score) in rank order."""
    if not sentences:
        return []
    sentence_terms = [set(t) for t in tokenize([text for _, _, text, _, _ in sentences])]
    passage_terms = [set(t) for t in tokenize([text for text, _ in passages])]
    best_dense = max(dense for _, _, _, dense, _ in sentences)
    top_score = max(passages[0][1], 1e-9)
    out = []
    for (index, span, text, dense, position), terms in zip(sentences, sentence_terms):
        values = (
            dense,
            dense - best_dense,
            question.coverage(terms),
            question.coverage(passage_terms[index]),
            passages[index][1] / top_score,
            1.0 / (index + 1),
            holds_type(question.kind, text, question.question),
            1.0 / (1 + position),
            math.log(1 + len(text.split())),
            question.novelty(terms),
        )
        out.append(Candidate(index, span, text, np.asarray(values, dtype=np.float32)))
    return out


QUESTION_FEATURES = (
    "best",  # the chosen sentence's answer score (a probability)
    "margin",  # its lead over the next sentence's
    "dense",  # the chosen sentence's cosine with the question
    "top_dense",  # the first passage's dense score
    "coverage",  # the chosen sentence's share of the question's term weight
    "passage_coverage",  # the first passage's share
    "answer_type",  # whether the chosen sentence holds the kind of answer asked for
    "typed",  # whether the question's wording names a kind of answer
    "terms",  # log of the number of the question's content terms
)


def question_features(
    question: QuestionTerms, ranked: list[tuple[Candidate, float]], top_dense: float
) -> np.ndarray:
    """Signals that the documents answer at all, from the candidates ranked by answer score."""
    best, probability = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    features = dict(zip(SENTENCE_FEATURES, best.features.tolist()))
    first_coverage = max((c.features[3] for c, _ in ranked if c.index == 0), default=0.0)
    values = (
        probability,
        probability - runner_up,
        features["dense"],
        top_dense,
        features["coverage"],
        first_coverage,
        features["answer_type"],
        float(question.kind != "other"),
        math.log(1 + len(question.weights)),
    )
    return np.asarray(values, dtype=np.float32)
