"""Turn ranked passages into a reply: citations, the answering sentence, highlights, or "not found"."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from qa.encoding import Embedder
from qa.search.retriever import Hit, Query
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
    url: str = ""  # the document page opened at this passage (qa.search.links)


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
    notice: str | None = None  # why nothing was searched (a filter that keeps no document)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for passage in out["passages"]:
            passage["highlights"] = [list(span) for span in passage["highlights"]]
        return out


@dataclass
class AnswerParams:
    """How the answer sentence is chosen and when to abstain (calibrated; see README)."""

    sentence_passages: int = 5  # how many top passages' sentences compete
    shortlist: int = 3  # sentences re-embedded on their own to pick the answer...
    shortlist_margin: float = 0.05  # ...among those within this of the best stored score
    rank_weight: float = 0.05  # bonus for sentences of higher-ranked passages
    highlight_margin: float = 0.08  # other sentences within this of the best are highlighted
    min_score: float = (
        0.38  # abstain below this (calibrated on the labelled article set; see README)
    )


def ranked_passages(hits: list[Hit], rows: dict[int, PassageRow]) -> list[RankedPassage]:
    """Hits joined with their stored text and citation, in rank order."""
    out = []
    for hit in hits:
        row = rows.get(hit.passage_id)
        if row is None:  # a stale id can never become a made-up citation
            continue
        citation = Citation(
            document_id=row.document_id,
            title=row.title,
            source=row.source,
            paragraph=row.paragraph,
            char_start=row.char_start,
            char_end=row.char_end,
            page=row.page,
        )
        out.append(RankedPassage(len(out) + 1, row.id, round(hit.score, 6), row.text, citation))
    return out


def choose_answer(
    query: Query,
    passages: list[RankedPassage],
    vectors: dict[int, tuple[list[tuple[int, int]], np.ndarray]],
    embedder: Embedder,
    params: AnswerParams,
) -> AnswerSpan | None:
    """Mark the sentence of the top passages that best answers the query.

    The stored (late-chunked) sentence vectors shortlist ``params.shortlist`` sentences;
    those are embedded on their own, which judges a single sentence more precisely, and
    the best wins. Sets each passage's ``highlights`` (spans inside the passage text) as a
    side effect. Returns ``None`` (the documents don't answer) when the best sentence
    scores below ``params.min_score``.
    """
    candidates: list[tuple[int, tuple[int, int], float]] = []
    considered = passages[: params.sentence_passages]
    for index, passage in enumerate(considered):
        spans, sentence_vectors = vectors.get(
            passage.passage_id, ([], np.zeros((0, len(query.vector))))
        )
        similarity = sentence_vectors @ query.vector if len(spans) else []
        for span, value in zip(spans, similarity):
            candidates.append((index, span, float(value)))
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda c: -c[2])
    shortlist = [
        c for c in ranked[: params.shortlist] if c[2] >= ranked[0][2] - params.shortlist_margin
    ]
    texts = [passages[i].text[s:e] for i, (s, e), _ in shortlist]
    fresh = embedder.encode_sentences(texts) @ query.vector
    scored = [
        (index, span, float(value) + params.rank_weight * (1 - index / max(1, len(considered))))
        for (index, span, _), value in zip(shortlist, fresh)
    ]
    best_index, (start, end), best_score = max(scored, key=lambda c: c[2])
    for index, span, score in scored:
        if score >= best_score - params.highlight_margin:
            passages[index].highlights.append(span)
    for passage in passages:
        passage.highlights.sort()
    if best_score < params.min_score:
        return None
    passage = passages[best_index]
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
    rows = collection.passages(h.passage_id for h in hits)
    passages = ranked_passages(hits, rows)
    answer = None
    if with_answer and passages:
        top = [p.passage_id for p in passages[: params.sentence_passages]]
        answer = choose_answer(query, passages, collection.sentences(top), embedder, params)
    return Reply(
        query=query.text, answer=answer, passages=passages, generation=collection.generation
    )
