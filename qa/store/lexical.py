"""BM25 over passages (bm25s), stored beside the FAISS index with the same passage ids."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import bm25s
    import Stemmer

IDS_FILE = "ids.npy"
K1, B = 1.2, 0.75  # the usual BM25 defaults (Robertson & Zaragoza); not tuned per collection


@lru_cache(maxsize=1)
def _bm25s() -> ModuleType:
    """The bm25s module, imported on first use (it is slow to import) and kept quiet."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on import
    return bm25s


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    """The English Snowball stemmer, created once."""
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, English-stopword-free, Snowball-stemmed tokens of each text."""
    return _bm25s().tokenize(
        list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False, return_ids=False
    )


class LexicalIndex:
    """A BM25 index whose row ``i`` is the passage with id ``ids[i]``."""

    def __init__(self, bm25: bm25s.BM25, ids: np.ndarray) -> None:
        self.bm25 = bm25
        self.ids = ids
        self._row_of: np.ndarray | None = None

    @classmethod
    def build(cls, texts: Sequence[str], ids: np.ndarray) -> LexicalIndex:
        """Index ``texts``; row ``i`` is the passage ``ids[i]``."""
        bm25 = _bm25s().BM25(k1=K1, b=B)
        tokens = tokenize(texts)
        if not any(tokens):
            tokens = [["\u2205"]] * len(texts)  # bm25s can't index an empty vocabulary
        bm25.index(tokens, show_progress=False)
        return cls(bm25, np.asarray(ids, dtype=np.int64))

    def save(self, folder: Path) -> None:
        """Write the index's arrays and JSON into ``folder`` (no pickle)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(folder), corpus=None, allow_pickle=False)
        np.save(folder / IDS_FILE, self.ids, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """An index saved by :meth:`save`."""
        bm25 = _bm25s().BM25.load(str(folder), mmap=False, allow_pickle=False)
        return cls(bm25, np.load(folder / IDS_FILE, allow_pickle=False))

    def scores(self, query: str, context: Sequence[tuple[str, float]] = ()) -> np.ndarray:
        """BM25 score of every passage row for ``query`` (zeros when no term matches).

        ``context`` adds further query texts with their weights (a follow-up's history).
        """
        total = self._scores(query)
        for text, weight in context:
            total = total + weight * self._scores(text)
        return total

    def _scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for one query text."""
        tokens = tokenize([query])[0]
        if not tokens or not len(self.ids):
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)

    def top(self, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and scores of the best ``k`` rows with a positive score."""
        k = min(k, len(scores))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows = np.argpartition(-scores, k - 1)[:k]
        rows = rows[np.argsort(-scores[rows], kind="stable")]
        rows = rows[scores[rows] > 0]
        return self.ids[rows], scores[rows]

    def search(
        self, query: str, k: int, context: Sequence[tuple[str, float]] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and scores of the best ``k`` matches with a positive score."""
        return self.top(self.scores(query, context), k)

    def rows(self, passage_ids: np.ndarray) -> np.ndarray:
        """Row of each passage id (ids are unique; a lookup table is built once)."""
        if self._row_of is None:
            table = np.full(int(self.ids.max()) + 1 if len(self.ids) else 0, -1, dtype=np.int64)
            table[self.ids] = np.arange(len(self.ids))
            self._row_of = table
        return self._row_of[np.asarray(passage_ids, dtype=np.int64)]
