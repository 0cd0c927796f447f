"""How dense and BM25 scores are joined, and how sentence scores re-rank the head.

Shared by the retriever and ``scripts/tune_fusion.py``, so the tuning script scores
exactly what the service runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from qa.config import HISTORY_PAGES

Fusion = Literal["convex", "rrf"]
Normalisation = Literal["max", "minmax", "zscore"]


@dataclass
class FusionParams:
    """Hybrid settings, chosen on SciFact's train split (scripts/tune_fusion.py; see README).

    Convex with each retriever's scores divided by its best candidate's score and equal
    weights scored 0.737 nDCG@10 on train (RRF at best 0.727, dense 0.685, BM25 0.688).
    """

    method: Fusion = "convex"
    alpha: float = 0.5  # weight of the dense score in the convex combination
    rrf_k: int = 10
    candidates: int = 100  # taken from each retriever before fusion
    sentence_weight: float = 0.6  # share of the sentence-level score in the final hybrid score
    sentence_depth: int = 20  # how many fused candidates are rescored by their sentences
    # bonus in the rescored head for a passage that holds the very kind of fact asked for
    # (qa.search.answer_type; counts, times, names, not places), chosen on the tuning halves
    answer_type_weight: float = 0.2
    # penalty in the rescored head for a passage of a release-notes page, unless the question
    # asks about history (qa.search.history); chosen on the documentation set's tuning halves
    history_weight: float = 0.2
    history_pages: str = HISTORY_PAGES  # their titles or ids, as a regular expression


def normalise(values: np.ndarray, how: Normalisation = "max") -> np.ndarray:
    """Scores put on a common scale: divided by the best (``max``, the service's choice),
    stretched to [0, 1] (``minmax``) or standardised (``zscore``); zeros when all are equal."""
    if how == "max":
        high = float(values.max()) if len(values) else 0.0
        return values / high if high > 1e-9 else np.zeros_like(values)
    if how == "minmax":
        low, high = float(values.min()), float(values.max())
        return (values - low) / (high - low) if high - low > 1e-9 else np.zeros_like(values)
    spread = float(values.std())
    return (values - values.mean()) / spread if spread > 1e-9 else np.zeros_like(values)


def convex(
    dense: np.ndarray, lexical: np.ndarray, alpha: float, how: Normalisation = "max"
) -> np.ndarray:
    """``alpha`` × normalised dense + (1 − ``alpha``) × normalised BM25, candidate by candidate."""
    return alpha * normalise(dense, how) + (1 - alpha) * normalise(lexical, how)


def rrf(rankings: Sequence[Sequence[int]], k: int) -> dict[int, float]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) to the ids it holds."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            fused[item] = fused.get(item, 0.0) + 1 / (k + rank + 1)
    return fused


def with_sentences(fused: np.ndarray, best_sentence: np.ndarray, weight: float) -> np.ndarray:
    """The head's final scores: (1 − w) × fused + w × best sentence cosine, both max-scaled."""
    return (1 - weight) * normalise(fused) + weight * normalise(best_sentence)
