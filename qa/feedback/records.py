"""What a feedback record holds: exactly what the reader's client sent, plus the time.

Nothing else is stored: no address, no user agent, no cookie, no account. A record names
the question and the conversation before it, the passages and the answer span the reader
was shown (ids and offsets, as the ask reply gave them), the collection and generation the
reply came from, the rating and, for "not helpful", an optional reason and comment.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qa.search import Turn

MAX_QUESTION_CHARS = 2000
MAX_HISTORY_TURNS = 20
MAX_PASSAGES = 50
MAX_COMMENT_CHARS = 10_000  # the schema's bound; QA_FEEDBACK_MAX_COMMENT_CHARS is the real one
GENERATION = re.compile(r"gen-\d{1,12}")

Rating = Literal["helpful", "not_helpful"]
Reason = Literal["wrong_passage", "should_have_answered", "incomplete", "other"]
Kind = Literal["feedback", "unanswered"]  # rated by a reader, or recorded by the server
REASONS: dict[str, str] = {
    "wrong_passage": "wrong passage",
    "should_have_answered": "it should have answered",
    "incomplete": "answer incomplete",
    "other": "other",
}


class AnswerShown(BaseModel):
    """The answer sentence the reader saw, as a span of one of the returned passages."""

    model_config = ConfigDict(extra="forbid")

    passage_id: int = Field(ge=0, le=2**63 - 1)
    start: int = Field(ge=0, le=10**9)
    end: int = Field(ge=0, le=10**9)
    text: str | None = Field(default=None, max_length=MAX_QUESTION_CHARS)

    @model_validator(mode="after")
    def _ordered(self) -> AnswerShown:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class FeedbackIn(BaseModel):
    """A reader's verdict on one answer (``POST /v1/feedback``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "How many cities does the G60 corridor connect?",
                    "rating": "not_helpful",
                    "reason": "wrong_passage",
                    "comment": "the cited paragraph is about rents",
                    "passage_ids": [4, 7],
                    "answer": {"passage_id": 4, "start": 0, "end": 60},
                    "generation": "gen-000001",
                }
            ]
        },
    )

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    rating: Rating
    reason: Reason | None = Field(default=None, description='only with "not_helpful"')
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)
    history: list[Turn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    passage_ids: list[int] = Field(default_factory=list, max_length=MAX_PASSAGES)
    answer: AnswerShown | None = Field(default=None, description="null: the reply had no answer")
    collection: str | None = Field(default=None, description="default: the served collection")
    generation: str | None = Field(default=None, max_length=20, description="as the reply named it")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is empty")
        return value

    @field_validator("passage_ids")
    @classmethod
    def _ids(cls, value: list[int]) -> list[int]:
        if any(i < 0 or i > 2**63 - 1 for i in value):
            raise ValueError("passage ids are non-negative 64-bit integers")
        return value

    @field_validator("generation")
    @classmethod
    def _generation(cls, value: str | None) -> str | None:
        if value is not None and not GENERATION.fullmatch(value):
            raise ValueError("a generation is named like gen-000007")
        return value

    @model_validator(mode="after")
    def _reason_only_when_not_helpful(self) -> FeedbackIn:
        if self.rating == "helpful" and self.reason is not None:
            raise ValueError('a reason goes only with "not_helpful"')
        return self


class FeedbackRecord(BaseModel):
    """One stored record, as ``GET /v1/feedback`` and ``qa report`` show it."""

    id: int
    created_at: str = Field(description="UTC, when the server stored it")
    kind: Kind
    rating: Rating | None
    reason: Reason | None
    comment: str | None
    question: str
    history: list[Turn]
    passage_ids: list[int]
    answer: AnswerShown | None
    collection: str
    generation: str | None

    @property
    def answered(self) -> bool:
        """Whether the reply had an answer sentence (else the service abstained)."""
        return self.answer is not None

    @property
    def problem(self) -> bool:
        """An unanswered question, or an answer a reader found not helpful."""
        return self.kind == "unanswered" or self.rating == "not_helpful"
