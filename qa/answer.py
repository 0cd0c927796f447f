"""Turn ranked passages into a reply: citations, the answering sentence, highlights, or "not found"."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from qa.embedder import Embedder
from qa.retriever import Hit, Query
from qa.sentences import sentence_spans
from qa.store import Collection, PassageRow


@dataclass(frozen=True)
class Citation:
    """Where a passage comes from: ``document.text[char_start:char_end] == passage.text``."""

    document_id: str
    title: str
    source: str
    paragraph: int
    char_start: int
    char_end: int
    page: int | None = None


@dataclass
class RankedPassage:
    rank: int
    passage_id: int
    score: float
    text: str
    citation: Citation
    highlights: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class AnswerSpan:
    """The sentence that best answers, as a span inside one of the returned passages."""

    text: str
    passage_id: int
    start: int
    end: int
    score: float


@dataclass
class Reply:
    query: str
    answer: AnswerSpan | None
    passages: list[RankedPassage]
    generation: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for passage in out["passages"]:
            passage["highlights"] = [list(span) for span in passage["highlights"]]
        return out


@dataclass
class AnswerParams:
    """How the answer sentence is chosen and when to abstain (calibrated; see README)."""

    sentence_passages: int = 5  # how many top passages' sentences compete
    rank_weight: float = 0.05  # bonus for sentences of higher-ranked passages
    highlight_margin: float = 0.08  # other sentences within this of the best are highlighted
    min_score: float = 0.0  # abstain when the best sentence scores below this


def ranked_passages(hits: list[Hit], rows: dict[int, PassageRow]) -> list[RankedPassage]:
    """Hits joined with their stored text and citation, in rank order."""
    out = []
    for hit in hits:
        row = rows.get(hit.passage_id)
        if row is None:  # a stale id can never become a made-up citation
            continue
        citation = Citation(
            document_id=row.document_id, title=row.title, source=row.source,
            paragraph=row.paragraph, char_start=row.char_start, char_end=row.char_end, page=row.page,
        )
        out.append(RankedPassage(len(out) + 1, row.id, round(hit.score, 6), row.text, citation))
    return out


def choose_answer(
    query: Query,
    passages: list[RankedPassage],
    embedder: Embedder,
    params: AnswerParams,
) -> AnswerSpan | None:
    """Score the sentences of the top passages against the query; mark the best one.

    Sets each passage's ``highlights`` (spans inside the passage text) as a side effect.
    """
    candidates: list[tuple[int, tuple[int, int]]] = []
    for index, passage in enumerate(passages[: params.sentence_passages]):
        for span in sentence_spans(passage.text):
            candidates.append((index, span))
    if not candidates:
        return None
    texts = [passages[i].text[s:e] for i, (s, e) in candidates]
    vectors = embedder.encode_queries(texts)
    similarity = vectors @ query.vector
    bonus = np.array([params.rank_weight * (1 - i / max(1, params.sentence_passages)) for i, _ in candidates])
    scores = similarity + bonus
    best = int(np.argmax(scores))
    best_score = float(scores[best])
    for (index, span), score in zip(candidates, scores):
        if score >= best_score - params.highlight_margin:
            passages[index].highlights.append(span)
    if best_score < params.min_score:
        return None
    index, (start, end) = candidates[best]
    passage = passages[index]
    return AnswerSpan(passage.text[start:end], passage.passage_id, start, end, round(best_score, 6))


def build_reply(
    query: Query,
    hits: list[Hit],
    collection: Collection,
    embedder: Embedder,
    params: AnswerParams,
    with_answer: bool = True,
) -> Reply:
    """The full reply for ``hits``: passages with citations and, optionally, the answer."""
    passages = ranked_passages(hits, collection.passages(h.passage_id for h in hits))
    answer = choose_answer(query, passages, embedder, params) if with_answer and passages else None
    return Reply(query=query.text, answer=answer, passages=passages, generation=collection.generation)
