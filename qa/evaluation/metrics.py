"""Ranking metrics from ``ir_measures`` (pytrec_eval underneath), and latency statistics.

nDCG@10, RR@10, R@1/5/10/100 and AP@100 are reported under the keys of :data:`HEADLINE`,
averaged over the questions with gold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ir_measures import Measure

HEADLINE = ("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "map@100")
_MEASURE_NAMES = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "RR@10",
    "recall@1": "R@1",
    "recall@5": "R@5",
    "recall@10": "R@10",
    "recall@100": "R@100",
    "map@100": "AP@100",
}


def _measures() -> dict[str, Measure]:
    """The ``ir_measures`` measure of each headline key."""
    import ir_measures

    return {key: ir_measures.parse_measure(name) for key, name in _MEASURE_NAMES.items()}


def compute_metrics(
    qrels: dict[str, dict[str, int]], run: dict[str, list[str]]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Aggregate and per-query headline metrics with ``ir_measures``.

    ``run`` maps a query id to its ranked ids, best first. The library is given scores
    that decrease with rank, so the ranking evaluated is exactly the system's (pytrec_eval
    would otherwise re-sort tied scores by id). Queries in ``qrels`` with an empty ranking
    score zero; queries not in ``qrels`` are ignored.
    """
    import ir_measures

    wanted = _measures()
    by_measure = {m: key for key, m in wanted.items()}
    qrel_rows = [
        ir_measures.Qrel(qid, did, int(grade))
        for qid, docs in qrels.items()
        for did, grade in docs.items()
    ]
    run_rows = [
        ir_measures.ScoredDoc(qid, did, float(len(ranked) - rank))
        for qid, ranked in run.items()
        if qid in qrels
        for rank, did in enumerate(ranked)
    ]
    evaluator = ir_measures.evaluator(list(wanted.values()), qrel_rows)
    per_query: dict[str, dict[str, float]] = {qid: {key: 0.0 for key in HEADLINE} for qid in qrels}
    for metric in evaluator.iter_calc(run_rows):
        per_query.setdefault(metric.query_id, {})[by_measure[metric.measure]] = float(metric.value)
    # ir_measures averages over every query in the qrels (one without a ranking counts as zero)
    aggregate = evaluator.calc_aggregate(run_rows)
    totals = {key: float(aggregate.get(wanted[key], 0.0)) for key in HEADLINE}
    return totals, per_query


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else 0.0


def mean(values: Sequence[float]) -> float | None:
    """The arithmetic mean, or None for no values."""
    return sum(values) / len(values) if values else None
