"""Rank passages for a query: dense (FAISS), lexical (BM25), or a fusion of both.

Hybrid fusion takes the union of both candidate lists and scores every candidate with
both retrievers exactly (a passage's cosine comes from its stored vector, its BM25 score
from the full score vector), so no candidate is penalised for missing from one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from qa.embedder import Embedder
from qa.store import Collection

Mode = Literal["hybrid", "dense", "bm25"]
Fusion = Literal["convex", "rrf"]


@dataclass(frozen=True)
class Query:
    """What is searched: the effective text, its vector, and weighted context (follow-ups)."""

    text: str
    vector: np.ndarray
    context: tuple[tuple[str, float], ...] = ()  # extra BM25 query texts and weights


@dataclass
class Hit:
    """One ranked passage with the scores that placed it."""

    passage_id: int
    score: float
    dense: float = 0.0
    lexical: float = 0.0


@dataclass
class FusionParams:
    """Hybrid settings; defaults were chosen on SciFact's train split (see README)."""

    method: Fusion = "convex"
    alpha: float = 0.5  # weight of the dense score in the convex combination
    rrf_k: int = 60
    candidates: int = 100  # taken from each retriever before fusion


@dataclass
class Retriever:
    """Searches one loaded collection."""

    collection: Collection
    embedder: Embedder
    mode: Mode = "hybrid"
    fusion: FusionParams = field(default_factory=FusionParams)

    def query(self, text: str) -> Query:
        return Query(text=text, vector=self.embedder.encode_queries([text])[0])

    def search(self, query: Query | str, k: int) -> list[Hit]:
        """The best ``k`` passages, best first."""
        if isinstance(query, str):
            query = self.query(query)
        if self.mode == "dense":
            return self._dense(query, k)
        if self.mode == "bm25":
            return self._bm25(query, k)
        return self._hybrid(query, k)

    # ------------------------------------------------------------------ single retrievers
    def _dense(self, query: Query, k: int) -> list[Hit]:
        ids, scores = self.collection.dense_search(query.vector[None, :], k)
        return [Hit(int(i), float(s), dense=float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _bm25(self, query: Query, k: int, scores: np.ndarray | None = None) -> list[Hit]:
        lexical = self.collection.lexical
        if scores is None:
            scores = lexical.scores(query.text, query.context)
        ids, top = lexical.top(scores, k)
        return [Hit(int(i), float(s), lexical=float(s)) for i, s in zip(ids, top)]

    # ------------------------------------------------------------------ fusion
    def _hybrid(self, query: Query, k: int) -> list[Hit]:
        n = max(self.fusion.candidates, k)
        dense = self._dense(query, n)
        all_lexical = self.collection.lexical.scores(query.text, query.context)
        lexical = self._bm25(query, n, all_lexical)
        if not lexical:
            return dense[:k]
        if self.fusion.method == "rrf":
            return _rrf(dense, lexical, self.fusion.rrf_k)[:k]
        candidates = list(dict.fromkeys([h.passage_id for h in dense] + [h.passage_id for h in lexical]))
        dense_scores = {h.passage_id: h.dense for h in dense}
        missing = [i for i in candidates if i not in dense_scores]
        if missing:
            vectors = self.collection.vectors(missing)
            dense_scores.update(zip(missing, (vectors @ query.vector).tolist()))
        row_of = self.collection.lexical.row_of()
        lexical_scores = {i: float(all_lexical[row_of[i]]) for i in candidates}
        d = np.array([dense_scores[i] for i in candidates], dtype=np.float32)
        b = np.array([lexical_scores[i] for i in candidates], dtype=np.float32)
        fused = self.fusion.alpha * _minmax(d) + (1 - self.fusion.alpha) * _minmax(b)
        order = np.argsort(-fused, kind="stable")[:k]
        return [Hit(candidates[i], float(fused[i]), dense=float(d[i]), lexical=float(b[i])) for i in order]


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
