"""Request and response models of the OpenAI-compatible routes (OpenAI's own field names).

Clients send many options this service has no use for (``top_p``, ``presence_penalty``,
``user``, ``tools`` ...): they are accepted and ignored, so any OpenAI client works unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qa.http.schemas import CitedSourceModel

MAX_MESSAGES = 200  # a long chat is cut to its last turns, not refused


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text (text parts joined; other parts such as images left out)."""
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI's chat completion request: ``model`` names the collection; the last user
    message is the question and the earlier turns its history."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "default",
                    "messages": [
                        {
                            "role": "user",
                            "content": "How many cities does the G60 corridor connect?",
                        }
                    ],
                }
            ]
        },
    )

    model: str = Field(min_length=1, max_length=200, description="the collection to ask")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    n: int | None = Field(default=None, ge=1, le=1, description="only one choice is made")


class ModelCard(BaseModel):
    id: str = Field(description="a collection name")
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "qa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str = "stop"
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """OpenAI's chat completion, plus the citations as data and what this service did."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[CitedSourceModel] = Field(
        description="the sources the `[n]` markers of the message point at"
    )
    qa: dict[str, Any] = Field(
        description="how the answer was made: answer (written, extractive, abstained, fallback), "
        "notice, dropped sentences, removed citations, query, collection generation"
    )


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail


OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": OpenAIError, "description": text}
    for code, text in {
        400: "invalid request (OpenAI's status for a bad parameter)",
        404: "unknown model (collection)",
        413: "body over the size limit",
        415: "body is not JSON",
        429: "rate limited",
    }.items()
}
