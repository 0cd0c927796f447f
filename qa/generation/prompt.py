"""What the model is asked: the numbered passages, the conversation so far, the question."""

from __future__ import annotations

from collections.abc import Sequence

from qa.generation.client import Messages
from qa.search import RankedPassage, Turn

SYSTEM = (
    "You answer questions using only the numbered passages you are given. "
    "Write one to four short sentences. End every sentence with the numbers of the passages "
    "that state it, in square brackets, like [1] or [2][3]. Use only facts the passages "
    "state, with their exact figures and names; add nothing from elsewhere. If the passages "
    "do not answer the question, say that the documents do not answer it."
)
HISTORY_TURNS = 6  # earlier messages sent along, so a follow-up can be understood
TURN_CHARS = 1200  # each trimmed to this many characters


def build_messages(
    question: str, history: Sequence[Turn], passages: Sequence[RankedPassage]
) -> Messages:
    """The chat messages for one question: instructions, recent turns, passages + question."""
    numbered = "\n\n".join(
        f"[{n}] {p.citation.title}\n{p.text}" for n, p in enumerate(passages, start=1)
    )
    messages = [{"role": "system", "content": SYSTEM}]
    for turn in list(history)[-HISTORY_TURNS:]:
        messages.append({"role": turn.role, "content": turn.content[-TURN_CHARS:]})
    messages.append({"role": "user", "content": f"Passages:\n\n{numbered}\n\nQuestion: {question}"})
    return messages
