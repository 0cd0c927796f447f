"""From one retriever's results to its :class:`~qa.evaluation.report.Report`: gold, metrics,
per-query details, abstention, answer sentences and follow-ups."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qa.evaluation.datasets import Dataset, Question, contains
from qa.evaluation.metrics import compute_metrics, mean, percentile
from qa.evaluation.report import (
    FAILURE_CUTOFF,
    REPORT_TOP,
    Abstention,
    AnswerCheck,
    Answers,
    Config,
    Followups,
    FollowupSide,
    Latency,
    PerQuery,
    Queries,
    Report,
    Retrieved,
)
from qa.evaluation.run import QueryResult, passage_key

if TYPE_CHECKING:
    from qa.search import AnswerSpan


def build_report(
    dataset: Dataset,
    results: list[QueryResult],
    wall_seconds: float,
    passage_gold: dict[str, dict[int, int]],
    config: Config,
    describe: Callable[[str], str | None] | None = None,
) -> Report:
    """One retriever's report: metrics, latency, abstention, per-query details.

    ``describe(gold_id)`` names a gold document or passage (its title or text) for the
    failed queries, so the report can be read without opening the collection.
    """
    qrels = _qrels(dataset, passage_gold)
    run = {r.question.id: [item.id for item in r.items] for r in results}
    metrics, per_query_metrics = compute_metrics(qrels, run)
    latencies = [r.latency_ms for r in results]
    per_query = [
        _per_query(r, qrels.get(r.question.id, {}), per_query_metrics, dataset, describe)
        for r in results
    ]
    answers = dataset.with_answers
    return Report(
        dataset=dataset.name,
        split=dataset.split,
        config=config,
        metrics=metrics,
        latency_ms=Latency(
            p50=percentile(latencies, 50),
            p95=percentile(latencies, 95),
            mean=mean(latencies) or 0.0,
        ),
        qps=len(results) / wall_seconds if wall_seconds > 0 else None,
        queries=Queries(
            total=len(results),
            ranked=len(qrels),
            unanswerable=sum(1 for r in results if not r.question.answerable),
            failed=sum(1 for e in per_query if e.failed),
        ),
        abstention=abstention_summary(results) if answers else None,
        answers=answer_summary(results) if answers else None,
        followups=followup_summary(results, per_query_metrics) if answers else None,
        per_query=per_query,
    )


def _qrels(dataset: Dataset, passage_gold: dict[str, dict[int, int]]) -> dict[str, dict[str, int]]:
    """The gold of every answerable question, passages under their ``#id`` keys."""
    qrels: dict[str, dict[str, int]] = {}
    for question in dataset.questions:
        if not question.answerable:
            continue
        if question.unit == "passage":
            gold = passage_gold.get(question.id, {})
            qrels[question.id] = {passage_key(p): g for p, g in gold.items()}
        else:
            qrels[question.id] = dict(question.gold_documents)
    return qrels


def _per_query(
    result: QueryResult,
    gold: dict[str, int],
    per_query_metrics: dict[str, dict[str, float]],
    dataset: Dataset,
    describe: Callable[[str], str | None] | None,
) -> PerQuery:
    """One question's entry: first relevant rank, failure, what came back, the answer."""
    q = result.question
    first = next(
        (rank for rank, item in enumerate(result.items, 1) if gold.get(item.id, 0) > 0), None
    )
    failed = q.answerable and (first is None or first > FAILURE_CUTOFF)
    with_text = q.unit == "passage" or failed
    described = None
    if failed and describe is not None:
        described = {g: describe(g) for g in sorted(gold)[:5] if gold[g] > 0}
    retrieved = [
        Retrieved(
            rank=rank,
            id=item.id,
            document_id=item.document_id,
            passage_id=item.passage_id,
            title=item.title,
            score=item.score,
            relevant=gold.get(item.id, 0) > 0,
            text=item.text if with_text else None,
        )
        for rank, item in enumerate(result.items[:REPORT_TOP], 1)
    ]
    return PerQuery(
        id=q.id,
        question=q.text,
        unit=q.unit,
        answerable=q.answerable,
        followup=q.followup,
        group=q.group,
        gold=sorted(gold) if q.answerable else [],
        first_relevant_rank=first,
        results=len(result.items),
        failed=failed,
        metrics=per_query_metrics.get(q.id) if q.answerable else None,
        latency_ms=result.latency_ms,
        retrieved=retrieved,
        gold_described=described,
        history=q.history or None,
        answer=_answer_check(q, result.answer) if dataset.with_answers else None,
    )


def _answer_check(question: Question, answer: AnswerSpan | None) -> AnswerCheck:
    """The answer sentence (or the abstention) next to the expected words."""
    return AnswerCheck(
        text=answer.text if answer else None,
        passage_id=answer.passage_id if answer else None,
        score=answer.score if answer else None,
        abstained=answer is None,
        expected=question.answer,
        correct=_answer_correct(question, answer),
    )


def _answer_correct(question: Question, answer: AnswerSpan | None) -> bool | None:
    """Whether the answer sentence holds one of the expected snippets (None when not labelled)."""
    if not question.answerable:
        return answer is None
    if not question.answer:
        return None
    return answer is not None and any(
        contains(answer.text, expected) for expected in question.answer
    )


def abstention_summary(results: list[QueryResult]) -> Abstention:
    """How well the system answers the answerable and abstains on the rest."""
    unanswerable = [r for r in results if not r.question.answerable]
    answerable = [r for r in results if r.question.answerable]
    abstained_u = sum(1 for r in unanswerable if r.answer is None)
    abstained_a = sum(1 for r in answerable if r.answer is None)
    total = len(results)
    return Abstention(
        unanswerable=len(unanswerable),
        answerable=len(answerable),
        # correct = abstained on an unanswerable question or answered an answerable one
        accuracy=(abstained_u + len(answerable) - abstained_a) / total if total else None,
        correct_abstain_rate=abstained_u / len(unanswerable) if unanswerable else None,
        false_answer_rate=(len(unanswerable) - abstained_u) / len(unanswerable)
        if unanswerable
        else None,
        false_abstain_rate=abstained_a / len(answerable) if answerable else None,
    )


def answer_summary(results: list[QueryResult]) -> Answers:
    """Share of labelled answerable questions whose answer sentence holds the expected words."""
    labelled = [r for r in results if r.question.answerable and r.question.answer]
    correct = sum(1 for r in labelled if _answer_correct(r.question, r.answer))
    return Answers(
        labelled=len(labelled),
        correct=correct,
        accuracy=correct / len(labelled) if labelled else None,
    )


def followup_summary(
    results: list[QueryResult], per_query_metrics: dict[str, dict[str, float]]
) -> Followups:
    """Follow-ups next to their self-contained twins (questions sharing a ``group``), from the
    unrounded per-query metrics."""
    groups: dict[str, tuple[list[QueryResult], list[QueryResult]]] = {}
    for result in results:
        q = result.question
        if q.group is None or not q.answerable:
            continue
        followups, self_contained = groups.setdefault(q.group, ([], []))
        (followups if q.followup else self_contained).append(result)
    pairs = [sides for sides in groups.values() if sides[0] and sides[1]]

    def side(entries: list[QueryResult]) -> FollowupSide:
        """Means over one side of the pairs."""

        def metric(key: str) -> float | None:
            return mean([per_query_metrics[r.question.id][key] for r in entries])

        checks = [_answer_correct(r.question, r.answer) for r in entries]
        return FollowupSide(
            questions=len(entries),
            ndcg_at_10=metric("ndcg@10"),
            mrr_at_10=metric("mrr@10"),
            recall_at_1=metric("recall@1"),
            recall_at_5=metric("recall@5"),
            answer_accuracy=mean([1.0 if c else 0.0 for c in checks if c is not None]),
        )

    return Followups(
        groups=len(pairs),
        followup=side([r for sides in pairs for r in sides[0]]),
        self_contained=side([r for sides in pairs for r in sides[1]]),
    )
