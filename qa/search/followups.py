"""Fold a conversation into the query for a follow-up question (no LLM needed).

A question that leans on the conversation ("How many cities does it connect?") is
searched together with the recent user turns: its vector is the normalised weighted sum
of the turns' vectors and its BM25 query adds their words at a lower weight. A
self-contained question ("What brand is the Haier factory for?") is searched alone, so
an old topic can't drag it back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from qa.encoding import Embedder
from qa.search.retriever import Query

MAX_TURN_CHARS = 8000


class Turn(BaseModel):
    """One earlier message of the conversation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)


@dataclass(frozen=True)
class FollowUpParams:
    """Weights of earlier turns relative to the question (tuned on the labelled article set)."""

    user_weight: float = 0.5  # the previous user question
    decay: float = 0.5  # each older user question counts this much less
    answer_weight: float = 0.0  # the assistant's last answer
    max_user_turns: int = 2
    max_content_words: int = 6  # a question with more content words and no reference stands alone


# Words that point back at something said before.
_REFERENCES = {
    "it",
    "its",
    "it's",
    "they",
    "them",
    "their",
    "theirs",
    "this",
    "that",
    "these",
    "those",
    "he",
    "him",
    "his",
    "she",
    "her",
    "hers",
    "there",
    "then",
    "such",
    "same",
    "former",
    "latter",
    "above",
    "else",
    "other",
    "others",
    "another",
    "more",
    "also",
    "too",
    "one",
    "ones",
}
# Openings that continue the conversation, matched as whole words ("so" is not "Songjiang").
_OPENERS = ("and", "but", "what about", "how about", "so", "why", "which one", "which of")
_STOPWORDS = {
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "do",
    "does",
    "did",
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "many",
    "much",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "from",
    "by",
    "with",
    "about",
    "and",
    "or",
    "but",
    "if",
    "so",
    "can",
    "could",
    "would",
    "should",
    "will",
    "has",
    "have",
    "had",
    "any",
    "some",
    "there",
    "please",
    "tell",
    "me",
    "you",
    "i",
    "we",
    "our",
    "your",
    "my",
    "as",
    "into",
    "than",
    "not",
    "no",
    "yes",
}


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'\u2019-]+", text.lower())


def needs_context(question: str, params: FollowUpParams = FollowUpParams()) -> bool:
    """True when the question refers back to the conversation or is too bare to stand alone."""
    words = _words(question)
    if not words:
        return False
    opening = " ".join(words) + " "
    if any(opening.startswith(opener + " ") for opener in _OPENERS):
        return True
    if any(w.replace("\u2019", "'") in _REFERENCES for w in words):
        return True
    content = [w for w in words if w not in _STOPWORDS]
    return len(content) <= 2 or (len(content) <= params.max_content_words and len(words) <= 4)


def build_query(
    question: str,
    history: Sequence[Turn],
    embedder: Embedder,
    params: FollowUpParams = FollowUpParams(),
) -> Query:
    """The query for ``question``; ``history`` holds the earlier turns, oldest first.

    ``Query.text`` echoes what was searched: the question alone, or the context turns
    followed by the question.
    """
    question = " ".join(question.split())
    users = [" ".join(t.content.split()) for t in history if t.role == "user" and t.content.strip()]
    answers = [
        " ".join(t.content.split()) for t in history if t.role == "assistant" and t.content.strip()
    ]
    context: list[tuple[str, float]] = []
    if users and needs_context(question, params):
        weight = params.user_weight
        for turn in reversed(users[-params.max_user_turns :]):
            context.append((turn, weight))
            weight *= params.decay
        if answers and params.answer_weight > 0:
            context.append((answers[-1], params.answer_weight))
    texts = [question] + [text for text, _ in context]
    vectors = embedder.encode_queries(texts)
    weights = np.array([1.0] + [w for _, w in context], dtype=np.float32)
    vector = (weights[:, None] * vectors).sum(axis=0)
    vector /= max(float(np.linalg.norm(vector)), 1e-12)
    shown = " ".join([text for text, _ in reversed(context)] + [question])
    return Query(
        text=shown, vector=vector.astype(np.float32), context=tuple(context), question=question
    )
