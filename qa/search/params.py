"""The search settings of each collection: the configured ones, with what ``qa tune`` chose
for that collection (its ``tuning.json``) in their place."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from qa.config import Settings
from qa.search.answer import AnswerParams
from qa.search.fusion import FusionParams
from qa.store.tuning import read_tuning, tuning_stamp


@dataclass(frozen=True)
class SearchParams:
    """Fusion and answer settings for one collection."""

    fusion: FusionParams
    answer: AnswerParams
    tuned: dict[str, float]  # the values that came from the collection's tuning.json


class CollectionParams:
    """Per-collection search settings, read again when a collection's tuning file changes
    (one ``stat`` per question)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.default = SearchParams(
            FusionParams(
                method=settings.fusion,
                alpha=settings.fusion_alpha,
                sentence_weight=settings.sentence_weight,
                answer_type_weight=settings.answer_type_weight,
                history_weight=settings.history_weight,
                history_pages=settings.history_pages,
            ),
            AnswerParams(
                min_score=settings.min_answer_score,
                missing_term_weight=settings.missing_term_weight,
                unknown_names=settings.unknown_names,
            ),
            {},
        )
        self._cache: dict[str, tuple[tuple[int, int], SearchParams]] = {}
        self._lock = threading.Lock()

    def of(self, collection: str) -> SearchParams:
        """The settings to search ``collection`` with."""
        directory = self.settings.collection_dir(collection)
        stamp = tuning_stamp(directory)
        if stamp is None:
            return self.default
        cached = self._cache.get(collection)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        tuning = read_tuning(directory)
        given = tuning.values.given() if tuning is not None else {}
        fusion = dataclasses.replace(
            self.default.fusion,
            alpha=given.get("fusion_alpha", self.default.fusion.alpha),
            sentence_weight=given.get("sentence_weight", self.default.fusion.sentence_weight),
        )
        answer = dataclasses.replace(
            self.default.answer,
            min_score=given.get("min_answer_score", self.default.answer.min_score),
            missing_term_weight=given.get(
                "missing_term_weight", self.default.answer.missing_term_weight
            ),
        )
        params = SearchParams(fusion, answer, given)
        with self._lock:
            self._cache[collection] = (stamp, params)
        return params
