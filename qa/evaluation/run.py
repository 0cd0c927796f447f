"""Running a dataset's questions through the service: ranked documents or passages per question."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.evaluation.datasets import Dataset, Question

if TYPE_CHECKING:
    from qa.search import AnswerSpan
    from qa.service import QAService

PASSAGE_DEPTH = 3  # passages retrieved per document wanted, before aggregating to documents
TEXT_CHARS = 160  # characters of each retrieved passage kept in the report

Hit = tuple[str, int, float, str] | tuple[str, int, float, str, str]


@dataclass
class Item:
    """One ranked unit (a document or a passage) of one query."""

    id: str
    score: float
    title: str
    document_id: str
    passage_id: int
    text: str = ""  # the start of the (best) passage, for error analysis


def aggregate_documents(passages: Iterable[Hit]) -> list[Item]:
    """``(document_id, passage_id, score, title[, text])`` hits to documents: a document's score
    is its best passage's score; ties keep the order of the documents' first appearance."""
    best: dict[str, Item] = {}
    order: dict[str, int] = {}
    for document_id, passage_id, score, title, *text in passages:
        if document_id not in order:
            order[document_id] = len(order)
        current = best.get(document_id)
        if current is None or score > current.score:
            best[document_id] = Item(
                document_id, float(score), title, document_id, passage_id, "".join(text)
            )
    return sorted(best.values(), key=lambda item: (-item.score, order[item.id]))


def passage_key(passage_id: int) -> str:
    """A passage's id in qrels and runs (``#12``), apart from document ids."""
    return f"#{passage_id}"


@dataclass
class QueryResult:
    """What one question got back: its ranking, the time it took, and the answer sentence."""

    question: Question
    items: list[Item]
    latency_ms: float
    answer: AnswerSpan | None = None


def run_queries(
    service: QAService,
    collection: str,
    dataset: Dataset,
    mode: str,
    top_k: int,
    progress: bool = True,
) -> tuple[list[QueryResult], float]:
    """Ask every question; ``(results, wall seconds)``. Latency is per ``QAService.search`` call."""
    from tqdm import tqdm

    warm = dataset.questions[0]
    service.search(
        warm.text, collection, 5, with_answer=dataset.with_answers, mode=mode
    )  # load and warm up
    started = time.perf_counter()
    bar = tqdm(
        dataset.questions,
        desc=f"Querying ({mode})",
        unit="q",
        disable=not progress,
        dynamic_ncols=True,
    )
    results = [_ask(service, collection, dataset, question, mode, top_k) for question in bar]
    bar.close()
    return results, time.perf_counter() - started


def _ask(
    service: QAService,
    collection: str,
    dataset: Dataset,
    question: Question,
    mode: str,
    top_k: int,
) -> QueryResult:
    """One question's ranking: documents by their best passage, or passages as they come."""

    document_level = question.unit == "document"
    began = time.perf_counter()
    reply = service.search(
        question.text,
        top_k=top_k * PASSAGE_DEPTH if document_level else top_k,
        collection=collection,
        history=question.history,
        with_answer=dataset.with_answers,
        mode=mode,
    )
    latency = (time.perf_counter() - began) * 1000
    hits = [
        (p.citation.document_id, p.passage_id, p.score, p.citation.title, p.text[:TEXT_CHARS])
        for p in reply.passages
    ]
    if document_level:
        items = aggregate_documents(hits)
    else:
        items = [
            Item(passage_key(pid), float(score), title, doc, pid, text)
            for doc, pid, score, title, text in hits
        ]
    return QueryResult(question, items[:top_k], latency, reply.answer)
