"""Answers as OpenAI chat completions: the assistant message with ``[n]`` markers and a
sources list, the citations as data, and the chunks of a streamed reply."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from qa.generation import CitedSource, Generated, extractive_sources
from qa.generation.claims import with_markers
from qa.search import Reply

Kind = Literal["written", "extractive", "abstained", "fallback"]
NOT_ANSWERED = "The documents don't answer this question. The closest passages are:"
NOTHING = "Nothing in the documents matches this question."
QUOTE_CHARS = 200  # quotes in the message text are clipped; the citations field has them whole


@dataclass
class Composed:
    """One answer ready to send: the message text and what it cites."""

    kind: Kind
    content: str
    citations: list[CitedSource]
    notice: str | None = None
    dropped: int = 0
    removed_citations: int = 0
    retractions: list[dict[str, str]] = field(default_factory=list)

    def summary(self, reply: Reply) -> dict[str, Any]:
        """The ``qa`` field: how the answer was made."""
        return {
            "answer": self.kind,
            "notice": self.notice,
            "dropped": self.dropped,
            "removed_citations": self.removed_citations,
            "query": reply.query,
            "generation": reply.generation,
        }


def _clip(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def source_line(source: CitedSource) -> str:
    where = f"{source.title}, paragraph {source.paragraph}"
    if source.page:
        where += f", page {source.page}"
    return f"- [{source.index}] {where} ({source.source}): \u201c{_clip(source.quote)}\u201d"


def sources_block(sources: list[CitedSource]) -> str:
    return "Sources:\n" + "\n".join(source_line(s) for s in sources)


def extractive(reply: Reply, notice: str | None = None) -> Composed:
    """The quoted answer sentence ([1]) with its source, or the closest passages."""
    sources = extractive_sources(reply)
    if reply.answer is None:
        lead = reply.notice or (NOT_ANSWERED if sources else NOTHING)
        content = "\n".join([lead, *(source_line(s) for s in sources)])
        return Composed("abstained", content, sources, notice=lead)
    parts = [with_markers(reply.answer.text.strip(), [1])]
    if notice:
        parts.append(f"({notice})")
    parts.append(sources_block(sources))
    return Composed("fallback" if notice else "extractive", "\n\n".join(parts), sources, notice)


def compose(reply: Reply, generated: Generated | None) -> Composed:
    """The whole answer: the model's checked text when it wrote one, else the quoted one."""
    if generated is None or generated.status == "abstained" or reply.answer is None:
        return extractive(reply)
    if generated.status == "fallback" or generated.text is None:
        return extractive(reply, generated.notice)
    parts = [generated.text]
    if generated.notice:
        parts.append(f"({generated.notice})")
    parts.append(sources_block(generated.citations))
    return Composed(
        "written",
        "\n\n".join(parts),
        generated.citations,
        notice=generated.notice,
        dropped=generated.dropped,
        removed_citations=generated.removed_citations,
    )


def streamed_tail(reply: Reply, generated: Generated, streamed: str) -> Composed:
    """What follows the model's streamed text: struck-out retractions, the notice and the
    sources (``content``), with the retractions also as data."""
    if generated.status == "written" and generated.text is not None:
        whole = compose(reply, generated)
        dropped = [s for s in generated.sentences if not s.kept]
        lines = [f"~~{s.raw.strip()}~~ (retracted: {_reason(s.reason)})" for s in dropped]
        if generated.notice:
            lines.append(f"({generated.notice})")
        whole.content = "\n\n" + "\n\n".join([*lines, sources_block(whole.citations)])
        whole.retractions = [{"text": s.raw, "reason": s.reason or ""} for s in dropped]
        return whole
    fallback = extractive(reply, generated.notice)
    if streamed.strip():
        # everything shown so far is taken back: the quoted answer replaces it
        fallback.retractions = [{"text": streamed, "reason": "fallback"}]
        fallback.content = "\n\n~~(retracted)~~\n\n" + fallback.content
    return fallback


def _reason(reason: str | None) -> str:
    return {
        "no_citation": "it cites no passage",
        "number_not_in_sources": "its figure is not in the cited passages",
    }.get(reason or "", "the cited passages don't support it")


@dataclass(frozen=True)
class Envelope:
    """What every object of one completion shares: its id, time and model (collection)."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def completion(self, composed: Composed, reply: Reply, usage: dict[str, int]) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": composed.content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage,
            "citations": [c.to_dict() for c in composed.citations],
            "qa": composed.summary(reply),
        }

    def chunk(self, delta: dict[str, str], finish: str | None = None, **extra: Any) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            **extra,
        }

    def usage_chunk(self, usage: dict[str, int]) -> dict:
        return {**self.chunk({}), "choices": [], "usage": usage}
