"""Turn ranked passages into a reply: citations, the answering sentence, highlights, or "not found"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qa.encoding import Embedder
from qa.search.evidence import (
    WEIGHTS,
    Candidate,
    asks_or_heads,
    features,
    missing_idf,
    scores,
)
from qa.search.names import unknown_name
from qa.search.retriever import Hit, Query
from qa.store import Collection, PassageRow
from qa.store.lexical import Lexical
from qa.store.segment import sentence_parts

# the notice of a question naming an API or option the documents never mention
NEVER_MENTIONED = "The documents never mention {}. The closest passages are listed below."

NOT_AN_ANSWER = 10.0  # log-odds taken from a sentence that asks or heads (evidence.asks_or_heads)


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
    # why there is no answer, when there is a reason to give: a filter that keeps no document
    # (nothing was searched), a name the documents never mention
    notice: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The reply as plain data, written out field by field: ``dataclasses.asdict`` took
        0.46 ms of the ~3.5 ms a repeated question costs the server (its generic recursion
        copies every value)."""
        return {
            "query": self.query,
            "answer": None if self.answer is None else dict(vars(self.answer)),
            "passages": [
                {
                    **vars(p),
                    "citation": dict(vars(p.citation)),
                    "highlights": [list(span) for span in p.highlights],
                }
                for p in self.passages
            ],
            "generation": self.generation,
            "timings_ms": dict(self.timings_ms),
            "notice": self.notice,
        }


@dataclass
class AnswerParams:
    """How the answer sentence is chosen and when to abstain (calibrated; see README)."""

    sentence_passages: int = 5  # how many top passages' sentences compete
    weights: tuple[float, ...] = WEIGHTS  # the sentence chooser's (qa.search.evidence)
    rank_weight: float = 0.05  # bonus for sentences of higher-ranked passages, in the score
    highlight_margin: float = 0.5  # other sentences this close in log-odds are highlighted
    highlighted: int = 3  # at most this many sentences highlighted per reply
    min_score: float = (
        0.38  # abstain below this (calibrated on the labelled article set; see README)
    )
    # the two best sentences, from different passages and within this many log-odds: the
    # better cosine of their vectors embedded on their own (+ rank bonus) wins
    tie_margin: float = 0.25
    # when the best late-chunked score (cosine + rank bonus) of any sentence falls in
    # [min_score - below, min_score + above), whether to abstain is decided...
    check_below: float = 0.13
    check_above: float = 0.07
    checked: int = 3  # ...by this many best sentences' vectors embedded on their own
    # the answer score loses this much per unit of idf of the rarest question term that none
    # of the considered passages holds (0: off, the default; ``qa tune`` fits it per collection)
    missing_term_weight: float = 0.0
    # abstain when the question names an API or option no passage mentions (qa.search.names)
    unknown_names: bool = True


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


def searched_texts(passages: list[RankedPassage]) -> list[str]:
    """The passages' words as BM25 finds them: each passage with its document's title."""
    return [f"{p.citation.title}\n{p.text}" for p in passages]


def candidate_features(
    query: Query,
    considered: list[RankedPassage],
    vectors: dict[int, tuple[list[tuple[int, int]], np.ndarray]],
    lexical: Lexical,
) -> tuple[list[Candidate], list[str], np.ndarray, np.ndarray]:
    """Every sentence of the ``considered`` passages, its text, its chooser features and its
    stored vector embedded on its own (all zeros where the collection has none)."""
    dimension = len(query.vector)
    candidates: list[Candidate] = []
    positions: list[int] = []
    counts: list[int] = []
    alone = [np.zeros((0, dimension), dtype=np.float32)]
    for index, passage in enumerate(considered):
        spans, stored = vectors.get(passage.passage_id, ([], np.zeros((0, dimension))))
        counts.append(len(spans))
        if not len(spans):
            continue
        late, own = sentence_parts(stored, dimension)
        alone.append(own)
        for position, ((start, end), value) in enumerate(zip(spans, late @ query.vector)):
            candidates.append(Candidate(index, start, end, float(value)))
            positions.append(position)
    texts = [considered[c.passage].text[c.start : c.end] for c in candidates]
    scores_ = [p.score for p in considered]
    rows = features(query.bm25_text, candidates, texts, scores_, counts, positions, lexical)
    return candidates, texts, rows, np.concatenate(alone)


def choose_answer(
    query: Query,
    passages: list[RankedPassage],
    vectors: dict[int, tuple[list[tuple[int, int]], np.ndarray]],
    embedder: Embedder,
    lexical: Lexical,
    params: AnswerParams,
) -> AnswerSpan | None:
    """Mark the sentence of the top passages that best answers the query.

    Every sentence of the top ``params.sentence_passages`` passages is scored by the
    fitted chooser (:mod:`qa.search.evidence`: stored sentence vectors, the question's
    rare terms, passage rank and score); see :func:`_settle` for the two cases where a
    sentence's vector embedded on its own decides. No model runs (sentences embedded on
    their own are stored at index time) except for a collection written before vectors
    version 3. Returns ``None`` (the documents
    don't answer) when the answer scores below ``params.min_score``. Sets each passage's
    ``highlights`` (spans inside the passage text) as a side effect.
    """
    considered = passages[: params.sentence_passages]
    candidates, texts, rows, alone = candidate_features(query, considered, vectors, lexical)
    if not candidates:
        return None
    odds = scores(rows, params.weights)
    heads = np.array(
        [asks_or_heads(considered[c.passage].text, c.start, c.end) for c in candidates]
    )
    if not heads.all():  # a question or a heading never answers while a statement is left
        odds = np.where(heads, odds - NOT_AN_ANSWER, odds)
    order = [int(i) for i in np.argsort(-odds, kind="stable")]
    for position in order[: params.highlighted]:
        if odds[position] >= odds[order[0]] - params.highlight_margin:
            candidate = candidates[position]
            considered[candidate.passage].highlights.append((candidate.start, candidate.end))
    for passage in passages:
        passage.highlights.sort()

    own = _OwnVectors(query, texts, alone, embedder)
    penalty = 0.0
    if params.missing_term_weight:
        missing = missing_idf(query.bm25_text, searched_texts(considered), lexical)
        penalty = params.missing_term_weight * missing
    best, score = _settle(candidates, odds, order[:2], own, params, len(considered), penalty)
    if score < params.min_score:
        return None
    passage = considered[best.passage]
    return AnswerSpan(
        passage.text[best.start : best.end],
        passage.passage_id,
        best.start,
        best.end,
        round(score, 6),
    )


class _OwnVectors:
    """Cosines with the question of candidate sentences embedded on their own: stored at
    index time; embedded now only for rows a collection written before vectors version 3
    lacks (all zeros)."""

    def __init__(
        self, query: Query, texts: list[str], stored: np.ndarray, embedder: Embedder
    ) -> None:
        self.query, self.texts, self.stored, self.embedder = query, texts, stored, embedder

    def cosines(self, indices: list[int]) -> np.ndarray:
        vectors = self.stored[indices].astype(np.float32)
        missing = [n for n, i in enumerate(indices) if not vectors[n].any()]
        if missing:
            fresh = self.embedder.encode_sentences([self.texts[indices[n]] for n in missing])
            vectors[missing] = fresh
        return vectors @ self.query.vector


def _settle(
    candidates: list[Candidate],
    odds: np.ndarray,
    order: list[int],
    own: _OwnVectors,
    params: AnswerParams,
    considered: int,
    penalty: float = 0.0,
) -> tuple[Candidate, float]:
    """The answer, and whether the passages answer at all as a score: the best cosine of a
    sentence with the question plus a rank bonus, less ``penalty`` (abstain below
    ``params.min_score``).

    A sentence's vector embedded on its own judges it more precisely than its late-chunked
    one, so it decides where the late-chunked signals can't: when the chooser's two best
    candidates (``order``) come from different passages and are within
    ``params.tie_margin`` log-odds (the better of the two wins), and when the best
    late-chunked score is near ``params.min_score`` (the best of the ``params.checked``
    best decides).
    """

    def bonus(index: int) -> float:
        return params.rank_weight * (1 - candidates[index].passage / max(1, considered))

    def alone(indices: list[int]) -> list[float]:
        return [float(f) + bonus(i) for i, f in zip(indices, own.cosines(indices))]

    chosen, score = order[0], -1.0
    if (
        len(order) > 1
        and candidates[order[1]].passage != candidates[order[0]].passage
        and odds[order[1]] >= odds[order[0]] - params.tie_margin
    ):
        score, chosen = max(zip(alone(order), order))
    stored = np.array([c.cosine + bonus(i) for i, c in enumerate(candidates)])
    evidence = float(stored.max())
    low, high = params.min_score - params.check_below, params.min_score + params.check_above
    if low <= evidence - penalty < high:
        nearest = [int(i) for i in np.argsort(-stored, kind="stable")[: params.checked]]
        evidence = max(alone(nearest))
    return candidates[chosen], max(score, evidence) - penalty


def build_reply(
    query: Query,
    hits: list[Hit],
    collection: Collection,
    embedder: Embedder,
    params: AnswerParams,
    with_answer: bool = True,
    allowed: np.ndarray | None = None,
) -> Reply:
    """The full reply for ``hits``: passages with citations and, optionally, the answer
    (none, with a notice saying so, when the question names an API or option that no passage
    of the ``allowed`` rows mentions: :mod:`qa.search.names`)."""
    rows = collection.passages(h.passage_id for h in hits)
    passages = ranked_passages(hits, rows)
    answer, notice = None, None
    if with_answer and passages:
        name = unknown_name(query.bm25_text, collection, allowed) if params.unknown_names else None
        if name is not None:
            notice = NEVER_MENTIONED.format(name)
        else:
            top = [p.passage_id for p in passages[: params.sentence_passages]]
            answer = choose_answer(
                query, passages, collection.sentences(top), embedder, collection.lexical, params
            )
    return Reply(
        query=query.text,
        answer=answer,
        passages=passages,
        generation=collection.generation,
        notice=notice,
    )
