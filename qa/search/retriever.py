"""Rank passages for a query: dense (FAISS), lexical (BM25), or a fusion of both.

Hybrid fusion takes the union of both candidate lists and scores every candidate with
both retrievers exactly (a passage's cosine comes from its stored vector, its BM25 score
from the full score vector), so no candidate is penalised for missing from one list.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Literal

import numpy as np

from qa.encoding import CrossEncoderReranker, Embedder
from qa.search.answer_type import Kind, expected, holds
from qa.search.fusion import FusionParams, convex, rrf, with_sentences
from qa.search.history import asks_about_history, history_rows
from qa.store import Collection
from qa.store.segment import late_vectors

Mode = Literal["hybrid", "dense", "bm25"]
# from this many rows a hybrid search runs its dense half in another thread (at 1M passages
# p50 18.3 -> 16.4 ms in one run); at 10,818 (SciFact) it cost more than it saved (5.3 vs
# 5.1 ms)
PARALLEL_ROWS = 200_000


@cache
def _searches() -> ThreadPoolExecutor:
    """Threads for the dense half of large hybrid searches, created on first use."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="qa-dense")


@dataclass(frozen=True)
class Query:
    """What is searched: the effective text, its vector, and weighted context (follow-ups)."""

    text: str  # what was searched, as shown to the user
    vector: np.ndarray
    context: tuple[tuple[str, float], ...] = ()  # extra BM25 query texts and their weights
    question: str = ""  # the BM25 query at full weight (default: ``text``)

    @property
    def bm25_text(self) -> str:
        """What BM25 searches at full weight: the question itself, without folded context."""
        return self.question or self.text


@dataclass
class Hit:
    """One ranked passage with the scores that placed it."""

    passage_id: int
    score: float
    dense: float = 0.0
    lexical: float = 0.0  # its BM25 score
    sentence: float = 0.0  # cosine of the passage's best-matching sentence (hybrid only)


@dataclass
class Retriever:
    """Searches one loaded collection.

    ``hybrid`` = BM25 and dense fused, then the top candidates rescored by their best
    sentence; ``dense`` and ``bm25`` are the single retrievers, as published baselines use.
    """

    collection: Collection
    embedder: Embedder
    mode: Mode = "hybrid"
    fusion: FusionParams = field(default_factory=FusionParams)
    reranker: CrossEncoderReranker | None = None
    reranker_top_n: int = 20
    # rows the caller may see and the filters keep (``None``: all): applied inside both
    # searches, so the best ``k`` are the best allowed ones, never a cut of a longer list
    allowed: np.ndarray | None = None

    def query(self, text: str) -> Query:
        return Query(text=text, vector=self.embedder.encode_queries([text])[0])

    def search(self, query: Query | str, k: int) -> list[Hit]:
        """The best ``k`` passages, best first."""
        if isinstance(query, str):
            query = self.query(query)
        wanted = max(k, self.reranker_top_n if self.reranker else 0)
        if self.mode == "dense":
            hits = self._dense(query, wanted)
        elif self.mode == "bm25":
            hits = self._bm25(query, wanted)
        else:
            depth = self.fusion.sentence_depth if self.fusion.sentence_weight > 0 else 0
            hits = self._hybrid(query, max(wanted, depth))
            if self.fusion.sentence_weight > 0:
                hits = self._by_sentences(query, hits, depth)
        if self.reranker is not None:
            hits = self._cross_encode(query, hits)
        return hits[:k]

    def _by_sentences(self, query: Query, hits: list[Hit], depth: int) -> list[Hit]:
        """Rescore the top ``depth`` hits: (1 - w) * fused + w * best sentence (both max-scaled),
        plus the answer-type bonus (:meth:`_answer_types`)."""
        top, rest = hits[:depth], hits[depth:]
        if not top:
            return hits
        vectors = self.collection.sentences(h.passage_id for h in top)
        weight = self.fusion.sentence_weight
        dimension = len(query.vector)
        best = np.array(
            [
                float((late_vectors(vectors[h.passage_id][1], dimension) @ query.vector).max())
                if h.passage_id in vectors
                else 0.0
                for h in top
            ]
        )
        fused = np.array([h.score for h in top])
        final = with_sentences(fused, best, weight) + self._answer_types(query, top)
        final -= self._history(query, top)
        for hit, value, sentence in zip(top, final, best):
            hit.score, hit.sentence = float(value), float(sentence)
        top.sort(key=lambda h: -h.score)
        floor = min((h.score for h in top), default=0.0)
        for hit in rest:  # keep the untouched tail below the rescored head
            hit.score = min(hit.score * (1 - weight), floor)
        return top + rest

    def _answer_types(self, query: Query, top: list[Hit]) -> np.ndarray | float:
        """``answer_type_weight`` for each passage holding the very kind of fact the question
        asks for (a count of what "how many" names, a date, a credited name; not a place,
        which documentation mentions everywhere), else 0."""
        kind = expected(query.bm25_text)
        if kind is None or kind is Kind.PLACE or self.fusion.answer_type_weight <= 0:
            return 0.0
        rows = self.collection.passages(h.passage_id for h in top)
        found = [
            h.passage_id in rows and holds(kind, rows[h.passage_id].text, query.bm25_text) == 1
            for h in top
        ]
        return self.fusion.answer_type_weight * np.array(found, dtype=np.float64)

    def _history(self, query: Query, top: list[Hit]) -> np.ndarray | float:
        """``history_weight`` for each passage of a release-notes page, unless the question
        asks about history (:mod:`qa.search.history`), else 0."""
        weight, pattern = self.fusion.history_weight, self.fusion.history_pages
        if weight <= 0 or not pattern or asks_about_history(query.bm25_text):
            return 0.0
        mask = history_rows(self.collection, pattern)
        rows = self.collection.rows_of(h.passage_id for h in top)
        return weight * np.where(rows >= 0, mask[np.maximum(rows, 0)], False)

    def _cross_encode(self, query: Query, hits: list[Hit]) -> list[Hit]:
        """Order the top ``reranker_top_n`` hits by the user's cross-encoder."""
        head, tail = hits[: self.reranker_top_n], hits[self.reranker_top_n :]
        rows = self.collection.passages(h.passage_id for h in head)
        head = [h for h in head if h.passage_id in rows]
        scores = self.reranker.scores(query.bm25_text, [rows[h.passage_id].text for h in head])  # type: ignore[union-attr]
        for hit, score in zip(head, scores):
            hit.score = float(score)
        head.sort(key=lambda h: -h.score)
        return head + tail

    def _dense(self, query: Query, k: int) -> list[Hit]:
        ids, scores = self.collection.dense_search(query.vector[None, :], k, self.allowed)
        return [Hit(int(i), float(s), dense=float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _bm25(self, query: Query, k: int, scores: np.ndarray | None = None) -> list[Hit]:
        lexical = self.collection.lexical
        if scores is None:
            scores = lexical.scores(query.bm25_text, query.context, self.allowed)
        ids, top = lexical.top(scores, k)
        return [Hit(int(i), float(s), lexical=float(s)) for i, s in zip(ids, top)]

    def _hybrid(self, query: Query, k: int) -> list[Hit]:
        n = max(self.fusion.candidates, k)
        lexical_scores = partial(
            self.collection.lexical.scores, query.bm25_text, query.context, self.allowed
        )
        if len(self.collection.live) < PARALLEL_ROWS:
            dense, all_lexical = self._dense(query, n), lexical_scores()
        else:  # FAISS releases the GIL: the dense search runs beside BM25
            pending = _searches().submit(self._dense, query, n)
            all_lexical = lexical_scores()
            dense = pending.result()
        lexical = self._bm25(query, n, all_lexical)
        if not lexical:
            return dense[:k]
        if self.fusion.method == "rrf":
            return _by_rank(dense, lexical, self.fusion.rrf_k)[:k]
        candidates = list(
            dict.fromkeys([h.passage_id for h in dense] + [h.passage_id for h in lexical])
        )
        dense_scores = {h.passage_id: h.dense for h in dense}
        missing = [i for i in candidates if i not in dense_scores]
        if missing:
            dense_scores.update(
                zip(missing, (self.collection.vectors(missing) @ query.vector).tolist())
            )
        d = np.array([dense_scores[i] for i in candidates], dtype=np.float32)
        b = all_lexical[self.collection.lexical.rows(np.array(candidates))].astype(np.float32)
        fused = convex(d, b, self.fusion.alpha)
        order = np.argsort(-fused, kind="stable")[:k]
        return [
            Hit(candidates[i], float(fused[i]), dense=float(d[i]), lexical=float(b[i]))
            for i in order
        ]


def _by_rank(dense: list[Hit], lexical: list[Hit], k: int) -> list[Hit]:
    """Reciprocal rank fusion of the two lists, keeping each hit's own scores."""
    scores = rrf([[h.passage_id for h in dense], [h.passage_id for h in lexical]], k)
    hits = {h.passage_id: Hit(h.passage_id, 0.0, dense=h.dense) for h in dense}
    for h in lexical:
        hits.setdefault(h.passage_id, Hit(h.passage_id, 0.0)).lexical = h.lexical
    for passage_id, hit in hits.items():
        hit.score = scores[passage_id]
    return sorted(hits.values(), key=lambda h: -h.score)
