"""Request and response models of the HTTP API (they are the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from qa.search import Turn

MAX_QUESTION_CHARS = 2000
MAX_HISTORY_TURNS = 20


class AskRequest(BaseModel):
    """A question, optionally a follow-up in a conversation."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "How many cities does the G60 corridor connect?"},
                {
                    "question": "Which of them are in Zhejiang?",
                    "history": [
                        {
                            "role": "user",
                            "content": "How many cities does the G60 corridor connect?",
                        },
                        {"role": "assistant", "content": "The G60 Corridor connects nine cities."},
                    ],
                    "top_k": 3,
                },
            ]
        },
    )

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the question")
    history: list[Turn] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_TURNS,
        description="earlier turns, oldest first",
    )
    top_k: int = Field(default=5, ge=1, le=50, description="passages to return")
    collection: str | None = Field(
        default=None, description="collection name (default: the served one)"
    )
    filters: dict[str, Any] | None = Field(
        default=None,
        description="metadata filters: document_id, source_prefix, format, title_contains, "
        "tags (a value or a list: any of them), page and date ([from, to]); all fields must hold",
    )
    stream: bool = Field(
        default=False,
        description="Server-Sent Events: `reply` (the extractive answer, at once), `delta` "
        "(the model's text as it arrives, when QA_LLM_URL is set), then `final` (the check)",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is empty")
        return value


class CitationModel(BaseModel):
    """Where the passage is: ``document.text[char_start:char_end]`` is the passage text."""

    document_id: str
    title: str
    source: str
    paragraph: int = Field(description="1-based paragraph number in the document")
    char_start: int
    char_end: int
    page: int | None = Field(default=None, description="1-based page (PDF only)")
    url: str = Field(
        description="the document's page, opened at this passage with the answer marked "
        "(GET /documents/{id}?passage=&hl=&collection=)"
    )


class PassageModel(BaseModel):
    rank: int
    passage_id: int
    score: float
    text: str
    citation: CitationModel
    highlights: list[tuple[int, int]] = Field(
        default_factory=list,
        description="[start, end] spans inside `text` of the sentences that answer",
    )


class AnswerModel(BaseModel):
    """The sentence that best answers, as a span of one of the returned passages."""

    text: str
    passage_id: int
    start: int = Field(description="offset of the sentence inside the passage text")
    end: int
    score: float = Field(
        description="how well the documents answer: the sentence's cosine with the question "
        "plus a small bonus for a higher passage, less the missing-word penalty where `qa tune` "
        "fitted one (then it can be below 0); no answer is given below the collection's bar"
    )


class CitedSourceModel(BaseModel):
    """A numbered source: ``document.text[char_start:char_end] == quote``."""

    index: int = Field(description="the n of the `[n]` markers that cite it")
    passage_id: int
    document_id: str
    title: str
    source: str
    paragraph: int
    char_start: int
    char_end: int
    quote: str
    page: int | None = None


class CheckedSentenceModel(BaseModel):
    text: str = Field(description="the sentence with its valid citation markers")
    raw: str = Field(description="the sentence as the model wrote (and streamed) it")
    citations: list[int]
    kept: bool
    support: float
    reason: str | None = Field(
        default=None,
        description="why it was dropped: no_citation, unsupported, number_not_in_sources",
    )


class GeneratedModel(BaseModel):
    """The model-written answer after the check (QA_LLM_URL set)."""

    status: str = Field(
        description="written; abstained (the documents don't answer: the model was not asked); "
        "fallback (the model failed, timed out or wrote nothing supported: use `answer`)"
    )
    model: str
    text: str | None = Field(description="the kept sentences with `[n]` markers (written only)")
    notice: str | None = Field(
        description="dropped sentences, removed citations, or why it fell back"
    )
    sentences: list[CheckedSentenceModel]
    dropped: int
    removed_citations: int
    citations: list[CitedSourceModel]


class AskResponse(BaseModel):
    query: str = Field(description="the text that was actually searched")
    answer: AnswerModel | None = Field(
        description="null when the documents don't answer the question"
    )
    notice: str | None = Field(default=None, description="a message to show instead of an answer")
    passages: list[PassageModel]
    collection: str
    generation: str
    timings_ms: dict[str, float]
    generated: GeneratedModel | None = Field(
        default=None, description="the model-written answer; null when no model is configured"
    )


class SearchResponse(BaseModel):
    query: str
    notice: str | None = Field(default=None, description="why nothing was searched")
    passages: list[PassageModel]
    collection: str
    generation: str
    timings_ms: dict[str, float]


class ModelInfo(BaseModel):
    name: str
    dimension: int
    max_seq_length: int
    fingerprint: str


class CollectionInfo(BaseModel):
    name: str
    documents: int
    passages: int
    generation: str
    created_at: str
    model: ModelInfo
    sources: list[str]


class CollectionList(BaseModel):
    collections: list[CollectionInfo]
    default: str


class StoredPassage(BaseModel):
    passage_id: int = Field(validation_alias=AliasChoices("passage_id", "id"))  # a row's ``id``
    document_id: str
    ordinal: int
    paragraph: int
    char_start: int
    char_end: int
    page: int | None
    text: str


class PassageContext(BaseModel):
    """A passage with its neighbours in the document, for "show more context"."""

    passage: StoredPassage
    before: list[StoredPassage]
    after: list[StoredPassage]
    title: str
    source: str
    collection: str


class DocumentResponse(BaseModel):
    """A whole document: citations' offsets index into ``text``."""

    document_id: str
    title: str
    source: str
    format: str
    text: str
    passages: list[StoredPassage]
    collection: str
    groups: list[str] = Field(default_factory=lambda: ["public"], description="who may read it")
    tags: list[str] = Field(default_factory=list)
    date: str = ""


class DocumentIn(BaseModel):
    """A document sent as text to the write API."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=200,
        description="stable id; sending it again replaces the document",
    )
    title: str = Field(default="", max_length=300)
    text: str = Field(min_length=1)
    source: str | None = Field(
        default=None, max_length=1000, description="where it came from (URL or path)"
    )
    groups: list[str] | None = Field(
        default=None, max_length=64, description="who may read it (default: public)"
    )
    tags: list[str] | None = Field(default=None, max_length=64)


class SkippedFile(BaseModel):
    source: str
    reason: str


class WriteResponse(BaseModel):
    """What a write did; ``generation`` is the collection's live generation afterwards."""

    collection: str
    generation: str | None
    documents: int
    passages: int
    added: int
    updated: int
    removed: int
    unchanged: int
    embedded: int
    skipped: list[SkippedFile] = Field(default_factory=list)
    note: str | None = None


class ClientConfig(BaseModel):
    """What the chat page and widget need to know about the service."""

    title: str
    collection: str
    starter_questions: list[str]
    max_question_chars: int = MAX_QUESTION_CHARS
    max_history_turns: int = MAX_HISTORY_TURNS
    feedback: bool = Field(default=True, description="whether readers may rate answers")
    feedback_max_comment_chars: int = 1000
    generation: bool = Field(
        default=False, description="answers are written by a model and can be streamed"
    )


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    detail: dict[str, object] = Field(default_factory=dict)


# The error responses documented for routes that can fail (FastAPI's type for ``responses``).
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "malformed request",
        404: "unknown collection, passage or document",
        413: "body over the size limit",
        415: "body is not JSON",
        422: "invalid field",
        429: "rate limited",
    }.items()
}
