"""The report of one retriever's run, as typed models whose JSON is the report file.

A report::

    {"dataset", "split", "config": {"retriever", "collection", "model", "top_k", ...},
     "metrics": {"ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "map@100"},
     "latency_ms": {"p50", "p95", "mean"}, "qps",
     "queries": {"total", "ranked", "unanswerable", "failed"},
     "abstention": {...}, "answers": {...}, "followups": {...},   # question files only
     "per_query": [{"id", "question", "gold", "first_relevant_rank", "failed", "metrics",
                    "latency_ms", "retrieved": [{"rank", "id", "title", "score", "relevant"}, ...]}, ...]}

Floats are kept to 4 decimals (non-finite ones as null). The JSON file holds that report when
one retriever ran, and ``{"runs": [report, ...]}`` when several did (:func:`bundle`).
:func:`qa.evaluation.build.build_report` makes a report from a run's results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from qa.evaluation.datasets import HistoryTurn

FAILURE_CUTOFF = 10  # a query "failed" when nothing relevant is in its top 10
REPORT_TOP = 10  # retrieved items kept per query in the JSON report

Scalar = str | bool | int | float | None


def _rounded(value: object, digits: int = 4) -> object:
    """Floats (also inside dicts and lists) to ``digits`` decimals; NaN and infinities to None."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


class _Part(BaseModel):
    """A part of a report: floats rounded as they come in; the fields named in
    ``OMITTED_WHEN_NONE`` are left out of the JSON rather than written as null."""

    model_config = ConfigDict(
        extra="forbid", serialize_by_alias=True, validate_by_name=True, validate_by_alias=True
    )
    OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _four_decimals(cls, value: object) -> object:
        """Every float kept to 4 decimals, as the report files always had."""
        return _rounded(value)

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """The JSON object without the optional parts this report doesn't have."""
        data: dict[str, object] = handler(self)
        for name in self.OMITTED_WHEN_NONE:
            if name in data and data[name] is None:
                del data[name]
        return data


class Counts(_Part):
    """What the searched collection holds."""

    documents: int
    passages: int


class ModelInfo(_Part):
    """The embedding model of the run."""

    name: str
    fingerprint: str  # the first 16 hex digits
    max_seq_length: int


class Config(_Part):
    """How the run was made: dataset, collection, model, settings."""

    OMITTED_WHEN_NONE = frozenset({"fusion"})

    format: Literal["beir", "jsonl"]
    dataset_path: str
    corpus: list[str]
    collection: str
    collection_key: str | None
    index_dir: str
    collection_built_now: bool
    index_seconds: float
    counts: Counts
    model: ModelInfo
    passage_settings: dict[str, Scalar]
    top_k: int
    passage_depth: int
    aggregation: str
    with_answers: bool
    fusion: dict[str, Scalar] | None = None  # the hybrid retriever's only
    created_at: str
    retriever: str


class Latency(_Part):
    """Milliseconds per ``QAService.search`` call."""

    p50: float
    p95: float
    mean: float


class Queries(_Part):
    """How many questions were asked, ranked (had gold), unanswerable, and failed."""

    total: int
    ranked: int  # with gold
    unanswerable: int
    failed: int


class Abstention(_Part):
    """How well the system answers the answerable and abstains on the rest."""

    unanswerable: int
    answerable: int
    accuracy: float | None  # abstained on an unanswerable question or answered an answerable one
    correct_abstain_rate: float | None
    false_answer_rate: float | None
    false_abstain_rate: float | None


class Answers(_Part):
    """Labelled answerable questions whose answer sentence holds the expected words."""

    labelled: int
    correct: int
    accuracy: float | None


class FollowupSide(_Part):
    """Mean metrics and answer accuracy of one side of the follow-up pairs."""

    questions: int
    ndcg_at_10: float | None = Field(alias="ndcg@10")
    mrr_at_10: float | None = Field(alias="mrr@10")
    recall_at_1: float | None = Field(alias="recall@1")
    recall_at_5: float | None = Field(alias="recall@5")
    answer_accuracy: float | None


class Followups(_Part):
    """Follow-ups next to their self-contained twins (questions sharing a ``group``)."""

    groups: int
    followup: FollowupSide
    self_contained: FollowupSide


class Retrieved(_Part):
    """One of the first ``REPORT_TOP`` items a question got back."""

    OMITTED_WHEN_NONE = frozenset({"text"})

    rank: int
    id: str
    document_id: str
    passage_id: int
    title: str
    score: float
    relevant: bool
    text: str | None = None  # for passages, and for every item of a failed query


class AnswerCheck(_Part):
    """The answer sentence of a question file's question, and whether it was right."""

    text: str | None
    passage_id: int | None
    score: float | None
    abstained: bool
    expected: list[str]
    correct: bool | None  # None when the question has no expected words


class PerQuery(_Part):
    """One question: its gold, what came back, its metrics and time."""

    OMITTED_WHEN_NONE = frozenset({"gold_described", "history", "answer"})

    id: str
    question: str
    unit: Literal["passage", "document"]
    answerable: bool
    followup: bool
    group: str | None
    gold: list[str]
    first_relevant_rank: int | None
    results: int
    failed: bool
    metrics: dict[str, float | None] | None
    latency_ms: float
    retrieved: list[Retrieved]
    gold_described: dict[str, str | None] | None = None  # failed queries: what was wanted
    history: list[HistoryTurn] | None = None
    answer: AnswerCheck | None = None


class Report(_Part):
    """One retriever's run over one dataset."""

    OMITTED_WHEN_NONE = frozenset({"abstention", "answers", "followups"})

    dataset: str
    split: str | None
    config: Config
    metrics: dict[str, float | None]
    latency_ms: Latency
    qps: float | None
    queries: Queries
    abstention: Abstention | None = None
    answers: Answers | None = None
    followups: Followups | None = None
    per_query: list[PerQuery]


class Runs(BaseModel):
    """The file of several retrievers' reports."""

    runs: list[Report]


def bundle(reports: Sequence[Report]) -> Report | Runs:
    """What the JSON file holds: the report itself for one retriever, ``{"runs": [...]}`` for several."""
    return reports[0] if len(reports) == 1 else Runs(runs=list(reports))
