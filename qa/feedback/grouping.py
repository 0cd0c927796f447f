"""What went wrong, grouped: unanswered questions and not-helpful answers, clustered by
what they ask.

Questions are embedded with the service's own question encoder and grouped greedily: the
question with the most neighbours (cosine at or above the threshold) becomes a group's
centre and takes those neighbours, and so on until every question has a group. Every
member is then close to its centre, the centre is the group's example, and the order is
the size of the group (then its latest record).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from qa.feedback.records import FeedbackRecord

Encode = Callable[[list[str]], np.ndarray]  # questions -> unit vectors (one row each)
BLOCK = 1024  # rows of the similarity matrix computed at once (memory: BLOCK x n floats)


@dataclass(frozen=True)
class GroupParams:
    """How questions are grouped (measured on tests/fixtures/paraphrases.jsonl)."""

    # Measured on the fixture with MiniLM: paraphrases of one question at cosine 0.71-0.95,
    # unrelated questions below 0.24, but different questions on one subject up to 0.80
    # ("How old is the G60 corridor?" / "How many cities does the G60 corridor connect?").
    # At 0.70 no paraphrase group splits and "Who founded Haier?" stays apart from the
    # Haier-brand questions; questions that close on one subject may share a group.
    threshold: float = 0.70
    max_records: int = 5000  # the most recent problems grouped (the matrix is n x n booleans)
    examples: int = 5  # distinct questions listed per group besides its example


class Group(BaseModel):
    """Similar questions: how many records, the example (the centre), other wordings."""

    count: int
    example: str
    questions: list[str] = Field(description="other distinct wordings, most similar first")
    reasons: dict[str, int] = Field(description="reasons given with 'not helpful'")
    comments: list[str]
    latest: str
    record_ids: list[int]


class Report(BaseModel):
    """The report of one collection since a time."""

    collection: str
    since: str | None
    records: int = Field(description="records in the period")
    helpful: int
    not_helpful: int
    unanswered: list[Group] = Field(description="questions the service did not answer")
    not_helpful_answers: list[Group] = Field(description="answers readers found not helpful")


def cluster(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups of row indices (greedy: the row with most neighbours takes them), each
    ordered by similarity to its centre (the first), largest groups first."""
    n = len(vectors)
    if n == 0:
        return []
    adjacency = np.concatenate(
        [(vectors[i : i + BLOCK] @ vectors.T) >= threshold for i in range(0, n, BLOCK)]
    )
    degree = adjacency.sum(axis=1).astype(np.int64)
    free = np.ones(n, dtype=bool)
    groups: list[list[int]] = []
    while free.any():
        candidates = np.flatnonzero(free)
        centre = int(candidates[np.argmax(degree[candidates])])
        members = np.flatnonzero(adjacency[centre] & free)
        closeness = vectors[members] @ vectors[centre]
        ordered = [centre] + [int(m) for m in members[np.argsort(-closeness)] if m != centre]
        groups.append(ordered)
        free[members] = False
        degree -= adjacency[:, members].sum(axis=1)
    groups.sort(key=len, reverse=True)  # stable: among equal sizes, the denser first
    return groups


def _group(records: Sequence[FeedbackRecord], members: list[int], params: GroupParams) -> Group:
    """One group's summary."""
    chosen = [records[i] for i in members]
    example = chosen[0].question
    others = list(dict.fromkeys(r.question for r in chosen[1:] if r.question != example))
    reasons = Counter(r.reason for r in chosen if r.reason is not None)
    comments = [r.comment for r in chosen if r.comment][: params.examples]
    return Group(
        count=len(chosen),
        example=example,
        questions=others[: params.examples],
        reasons=dict(reasons.most_common()),
        comments=comments,
        latest=max(r.created_at for r in chosen),
        record_ids=sorted(r.id for r in chosen),
    )


def grouped(records: Sequence[FeedbackRecord], encode: Encode, params: GroupParams) -> list[Group]:
    """``records`` grouped by their questions, largest groups first (then the most recent)."""
    records = list(records)[-params.max_records :]
    if not records:
        return []
    vectors = np.asarray(encode([r.question for r in records]), dtype=np.float32)
    groups = [_group(records, members, params) for members in cluster(vectors, params.threshold)]
    groups.sort(key=lambda g: (-g.count, _descending(g.latest)))
    return groups


def _descending(text: str) -> tuple[int, ...]:
    """A sort key putting later ISO times first."""
    return tuple(-ord(c) for c in text)


def build_report(
    collection: str,
    since: str | None,
    records: Sequence[FeedbackRecord],
    encode: Encode,
    params: GroupParams | None = None,
) -> Report:
    """Unanswered questions and not-helpful answers of ``records``, each grouped."""
    params = params or GroupParams()
    unanswered = [r for r in records if r.problem and not r.answered]
    not_helpful = [r for r in records if r.problem and r.answered]
    return Report(
        collection=collection,
        since=since,
        records=len(records),
        helpful=sum(1 for r in records if r.rating == "helpful"),
        not_helpful=sum(1 for r in records if r.rating == "not_helpful"),
        unanswered=grouped(unanswered, encode, params),
        not_helpful_answers=grouped(not_helpful, encode, params),
    )
