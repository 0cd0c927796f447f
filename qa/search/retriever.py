"""Rank passages for a query: dense (FAISS), lexical (BM25), or a fusion of both.

Hybrid fusion takes the union of both candidate lists and scores every candidate with
both retrievers exactly (a passage's cosine comes from its stored vector, its BM25 score
from the full score vector), so no candidate is penalised for missing from one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from qa.encoding.embedder import Embedder
from qa.encoding.rerank import CrossEncoderReranker
from qa.store.collection import Collection

Mode = Literal["hybrid", "dense", "bm25"]
Fusion = Literal["convex", "rrf"]


@dataclass(frozen=True)
class Query:
    """What is searched: the effective text, its vector, and weighted context (follow-ups)."""

    text: str  # what was searched, as shown to the user
    vector: np.ndarray
    context: tuple[tuple[str, float], ...] = ()  # extra BM25 query texts and their weights
    question: str = ""  # the BM25 query at full weight (default: ``text``)

    @property
    def lexical(self) -> str:
        return self.question or self.text


@dataclass
class Hit:
    """One ranked passage with the scores that placed it."""

    passage_id: int
    score: float
    dense: float = 0.0
    lexical: float = 0.0
    sentence: float = 0.0  # cosine of the passage's best-matching sentence (hybrid only)


Normalisation = Literal["max", "minmax"]


@dataclass
class FusionParams:
    """Hybrid settings, chosen on SciFact's train split (scripts/tune_fusion.py; see README).

    Convex with each retriever's scores divided by its best candidate's score and equal
    weights scored 0.737 nDCG@10 on train (RRF at best 0.727, dense 0.685, BM25 0.688).
    """

    method: Fusion = "convex"
    alpha: float = 0.5  # weight of the dense score in the convex combination
    normalisation: Normalisation = "max"
    rrf_k: int = 10
    candidates: int = 100  # taken from each retriever before fusion
    sentence_weight: float = 0.6  # share of the sentence-level score in the final hybrid score
    sentence_depth: int = 20  # how many fused candidates are rescored by their sentences


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

    # ------------------------------------------------------------------ second stage
    def _by_sentences(self, query: Query, hits: list[Hit], depth: int) -> list[Hit]:
        """Rescore the top ``depth`` hits: (1 - w) * fused + w * best sentence (both max-scaled)."""
        top, rest = hits[:depth], hits[depth:]
        if not top:
            return hits
        vectors = self.collection.sentences(h.passage_id for h in top)
        weight = self.fusion.sentence_weight
        best = np.array([float((vectors[h.passage_id][1] @ query.vector).max()) if h.passage_id in vectors else 0.0 for h in top])
        fused = np.array([h.score for h in top])
        final = (1 - weight) * _by_max(fused) + weight * _by_max(best)
        for hit, value, sentence in zip(top, final, best):
            hit.score, hit.sentence = float(value), float(sentence)
        top.sort(key=lambda h: -h.score)
        floor = min((h.score for h in top), default=0.0)
        for hit in rest:  # keep the untouched tail below the rescored head
            hit.score = min(hit.score * (1 - weight), floor)
        return top + rest

    def _cross_encode(self, query: Query, hits: list[Hit]) -> list[Hit]:
        """Order the top ``reranker_top_n`` hits by the user's cross-encoder."""
        head, tail = hits[: self.reranker_top_n], hits[self.reranker_top_n :]
        rows = self.collection.passages(h.passage_id for h in head)
        head = [h for h in head if h.passage_id in rows]
        scores = self.reranker.scores(query.lexical, [rows[h.passage_id].text for h in head])  # type: ignore[union-attr]
        for hit, score in zip(head, scores):
            hit.score = float(score)
        head.sort(key=lambda h: -h.score)
        return head + tail

    # ------------------------------------------------------------------ single retrievers
    def _dense(self, query: Query, k: int) -> list[Hit]:
        ids, scores = self.collection.dense_search(query.vector[None, :], k)
        return [Hit(int(i), float(s), dense=float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _bm25(self, query: Query, k: int, scores: np.ndarray | None = None) -> list[Hit]:
        lexical = self.collection.lexical
        if scores is None:
            scores = lexical.scores(query.lexical, query.context)
        ids, top = lexical.top(scores, k)
        return [Hit(int(i), float(s), lexical=float(s)) for i, s in zip(ids, top)]

    # ------------------------------------------------------------------ fusion
    def _hybrid(self, query: Query, k: int) -> list[Hit]:
        n = max(self.fusion.candidates, k)
        dense = self._dense(query, n)
        all_lexical = self.collection.lexical.scores(query.lexical, query.context)
        lexical = self._bm25(query, n, all_lexical)
        if not lexical:
            return dense[:k]
        if self.fusion.method == "rrf":
            return _rrf(dense, lexical, self.fusion.rrf_k)[:k]
        candidates = list(dict.fromkeys([h.passage_id for h in dense] + [h.passage_id for h in lexical]))
        dense_scores = {h.passage_id: h.dense for h in dense}
        missing = [i for i in candidates if i not in dense_scores]
        if missing:
            dense_scores.update(zip(missing, (self.collection.vectors(missing) @ query.vector).tolist()))
        d = np.array([dense_scores[i] for i in candidates], dtype=np.float32)
        b = all_lexical[self.collection.lexical.rows(np.array(candidates))].astype(np.float32)
        scale = _minmax if self.fusion.normalisation == "minmax" else _by_max
        fused = self.fusion.alpha * scale(d) + (1 - self.fusion.alpha) * scale(b)
        order = np.argsort(-fused, kind="stable")[:k]
        return [Hit(candidates[i], float(fused[i]), dense=float(d[i]), lexical=float(b[i])) for i in order]


def _by_max(values: np.ndarray) -> np.ndarray:
    high = float(values.max())
    return values / high if high > 1e-9 else np.zeros_like(values)


def _minmax(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def _rrf(dense: list[Hit], lexical: list[Hit], k: int) -> list[Hit]:
    fused: dict[int, Hit] = {}
    for rank, hit in enumerate(dense):
        fused[hit.passage_id] = Hit(hit.passage_id, 1 / (k + rank + 1), dense=hit.dense)
    for rank, hit in enumerate(lexical):
        entry = fused.setdefault(hit.passage_id, Hit(hit.passage_id, 0.0))
        entry.score += 1 / (k + rank + 1)
        entry.lexical = hit.lexical
    return sorted(fused.values(), key=lambda h: -h.score)
