"""The offline evaluation: metrics, aggregation, runs, reports, the labelled article set.

Dataset formats are in ``test_evaluation_datasets.py``, the gate and the command in
``test_evaluation_gate.py``; both use the fakes and data below.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from qa.evaluation import HEADLINE, Dataset, Question, compute_metrics, evaluate, load_dataset
from qa.evaluation.build import build_report
from qa.evaluation.datasets import load_questions
from qa.evaluation.markdown import markdown
from qa.evaluation.report import Config, Counts, ModelInfo
from qa.evaluation.run import QueryResult, aggregate_documents, run_queries
from qa.search import AnswerSpan, Citation, RankedPassage, Reply
from qa.store import PassageRow
from tests.helpers import ROOT

ARTICLE_QUESTIONS = ROOT / "scripts" / "data" / "songjiang_questions.jsonl"


def write_lines(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8"
    )
    return path


def make_config(retriever: str, **overrides: Any) -> Config:
    """A report's config with placeholder values, for reports built from fakes."""
    values: dict[str, Any] = {
        "format": "beir",
        "dataset_path": "/data/d",
        "corpus": [],
        "collection": "c",
        "collection_key": None,
        "index_dir": "/index",
        "collection_built_now": False,
        "index_seconds": 0.0,
        "counts": Counts(documents=0, passages=0),
        "model": ModelInfo(name="m", fingerprint="0" * 16, max_seq_length=256),
        "passage_settings": {},
        "top_k": 10,
        "passage_depth": 30,
        "aggregation": "document score = best passage score",
        "with_answers": False,
        "created_at": "2026-01-01T00:00:00Z",
        "retriever": retriever,
    }
    values.update(overrides)
    return Config(**values)


# metrics by hand


def test_metrics_match_hand_computed_values() -> None:
    qrels = {"A": {"d1": 1, "d3": 1}, "B": {"d2": 1}}
    run = {"A": ["d1", "d2", "d3", "d4"], "B": ["x1", "x2", "d2"]}
    totals, per_query = compute_metrics(qrels, run)

    # Query A: relevant at ranks 1 and 3 of 2 relevant.
    #   DCG@10 = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5;  IDCG = 1 + 1/log2(3) = 1.630930
    #   nDCG@10 = 0.919721;  RR = 1;  R@1 = 1/2;  R@5 = R@10 = R@100 = 1
    #   AP = (1/1 + 2/3) / 2 = 0.833333
    a = per_query["A"]
    assert a["ndcg@10"] == pytest.approx(1.5 / (1 + 1 / math.log2(3)), abs=1e-6)
    assert a["ndcg@10"] == pytest.approx(0.919721, abs=1e-6)
    assert (a["mrr@10"], a["recall@1"], a["recall@5"], a["recall@100"]) == (1.0, 0.5, 1.0, 1.0)
    assert a["map@100"] == pytest.approx(0.833333, abs=1e-6)
    # Query B: one relevant at rank 3.
    #   nDCG@10 = (1/log2(4)) / 1 = 0.5;  RR = 1/3;  R@1 = 0;  R@5 = 1;  AP = 1/3
    b = per_query["B"]
    assert b["ndcg@10"] == pytest.approx(0.5)
    assert b["mrr@10"] == pytest.approx(1 / 3)
    assert (b["recall@1"], b["recall@5"]) == (0.0, 1.0)
    assert b["map@100"] == pytest.approx(1 / 3)
    # Means over the two queries.
    assert totals["ndcg@10"] == pytest.approx((0.919721 + 0.5) / 2, abs=1e-6)  # 0.709860
    assert totals["mrr@10"] == pytest.approx((1 + 1 / 3) / 2)  # 0.666667
    assert totals["recall@1"] == pytest.approx(0.25)
    assert totals["recall@5"] == totals["recall@10"] == totals["recall@100"] == pytest.approx(1.0)
    assert totals["map@100"] == pytest.approx((5 / 6 + 1 / 3) / 2)  # 0.583333
    assert set(totals) == set(HEADLINE)


def test_metric_cutoffs_and_a_query_with_nothing_retrieved() -> None:
    qrels = {"C": {"z": 1}, "D": {"y": 1}}
    # C: the only relevant document at rank 12 -> outside every @10 cutoff, inside @100.
    #   nDCG@10 = RR@10 = R@10 = 0;  R@100 = 1;  AP@100 = 1/12
    # D: nothing retrieved -> all zero, and it still counts in the mean.
    run = {"C": [f"n{i}" for i in range(11)] + ["z"], "D": []}
    totals, per_query = compute_metrics(qrels, run)
    c = per_query["C"]
    assert (c["ndcg@10"], c["mrr@10"], c["recall@10"], c["recall@100"]) == (0.0, 0.0, 0.0, 1.0)
    assert c["map@100"] == pytest.approx(1 / 12)
    assert per_query["D"] == {key: 0.0 for key in HEADLINE}
    assert totals["recall@100"] == pytest.approx(0.5)
    assert totals["map@100"] == pytest.approx(1 / 24)


def test_ranking_order_is_evaluated_as_given_even_with_tied_scores() -> None:
    # The library sees scores that fall with rank, so it can't reorder ties by id.
    totals, _ = compute_metrics({"q": {"b": 1}}, {"q": ["b", "a"]})
    assert totals["mrr@10"] == 1.0


# aggregation and runs


def test_document_score_is_its_best_passage_score() -> None:
    passages = [  # (document, passage, score, title), not in score order on purpose
        ("A", 1, 0.70, "Doc A"),
        ("B", 2, 0.80, "Doc B"),
        ("A", 3, 0.90, "Doc A"),
        ("C", 4, 0.85, "Doc C"),
        ("B", 5, 0.10, "Doc B"),
    ]
    docs = aggregate_documents(passages)
    assert [(d.id, d.score, d.passage_id) for d in docs] == [
        ("A", 0.90, 3),
        ("C", 0.85, 4),
        ("B", 0.80, 2),
    ]


def _passage(
    rank: int, document: str, passage_id: int, score: float, text: str = ""
) -> RankedPassage:
    citation = Citation(document, f"Title {document}", f"/x/{document}", 1, 0, len(text))
    return RankedPassage(rank, passage_id, score, text or f"passage {passage_id}", citation)


class FakeService:
    """Just enough of QAService for run_queries: a fixed passage ranking per question."""

    def __init__(
        self,
        rankings: dict[str, list[tuple[str, int, float]]],
        answers: dict[str, str | None] | None = None,
    ):
        self.rankings = rankings
        self.answers = answers or {}
        self.calls: list[dict[str, Any]] = []

    def search(
        self,
        question: str,
        collection: str | None = None,
        top_k: int | None = None,
        history: Any = (),
        *,
        with_answer: bool = False,
        mode: str | None = None,
    ) -> Reply:
        self.calls.append(
            {"question": question, "top_k": top_k, "history": list(history), "mode": mode}
        )
        ranked = [
            _passage(i + 1, d, p, s) for i, (d, p, s) in enumerate(self.rankings.get(question, []))
        ]
        ranked = ranked[: top_k or 5]
        text = self.answers.get(question)
        answer = (
            AnswerSpan(text, ranked[0].passage_id, 0, len(text), 0.5) if text and ranked else None
        )
        return Reply(question, answer, ranked)


def test_run_queries_ranks_documents_by_their_best_passage() -> None:
    # Document "long" has three passages; its best (0.6) is below "short"'s only passage (0.7),
    # so "short" ranks first even though "long" has more passages near the top.
    ranking = [
        ("short", 10, 0.7),
        ("long", 1, 0.6),
        ("long", 2, 0.55),
        ("long", 3, 0.5),
        ("other", 20, 0.4),
    ]
    service = FakeService({"q?": ranking})
    dataset = Dataset(
        "tiny", Path("tiny"), "beir", "test", [Question("1", "q?", gold_documents={"long": 1})]
    )
    results, seconds = run_queries(service, "c", dataset, "dense", top_k=2, progress=False)  # type: ignore[arg-type]
    # 3x top_k passages are asked for, then cut back to top_k documents
    assert service.calls[-1]["top_k"] == 6
    assert [(i.id, i.score) for i in results[0].items] == [("short", 0.7), ("long", 0.6)]
    report = build_report(dataset, results, seconds, {}, make_config("dense"))
    assert report.metrics["mrr@10"] == 0.5
    assert report.metrics["recall@1"] == 0.0
    assert report.per_query[0].first_relevant_rank == 2


# abstention and reports


QUESTIONS = [
    {
        "id": "a",
        "question": "Where is the mill?",
        "gold_snippets": ["the  OLD mill\nstands"],
        "answer": "river",
    },
    {
        "id": "b",
        "question": "How tall is it?",
        "gold_snippets": ["forty metres"],
        "group": "g",
        "history": [
            {"role": "user", "content": "Where is the mill?"},
            {"role": "assistant", "content": "By the river."},
        ],
    },
    {
        "id": "c",
        "question": "How tall is the mill?",
        "gold_snippets": ["forty metres"],
        "group": "g",
    },
    {"id": "d", "question": "Who owns the bakery?"},
    {"id": "e", "question": "Which passages?", "gold_passages": [7], "gold_snippets": []},
    {"id": "f", "question": "Which document?", "gold_documents": {"doc-2": 2}},
]


class FakeCollection:
    name = "fake"

    def __init__(self, texts: dict[int, str]) -> None:
        self.texts = texts

    def document_hashes(self) -> dict[str, str]:
        return {"doc": "h"}

    def passages_of(self, ids: list[str]) -> list[PassageRow]:
        return [
            PassageRow(i, "doc", i, 1, 0, len(t), None, t, "h", "e") for i, t in self.texts.items()
        ]


def test_unanswerable_questions_are_scored_on_abstention_not_ranking(tmp_path: Path) -> None:
    questions = load_questions(write_lines(tmp_path / "q.jsonl", QUESTIONS[:4]))
    dataset = Dataset("q", tmp_path / "q.jsonl", "jsonl", None, questions)
    rankings = {
        "Where is the mill?": [("doc", 3, 0.9)],
        "How tall is it?": [("doc", 9, 0.9), ("doc", 4, 0.8)],
        "How tall is the mill?": [("doc", 4, 0.9)],
        "Who owns the bakery?": [("doc", 3, 0.2)],
    }
    answers = {
        "Where is the mill?": "Down by the River.",
        "How tall is it?": "It is tall.",
        "How tall is the mill?": None,
        "Who owns the bakery?": "Someone.",
    }
    service = FakeService(rankings, answers)
    results, seconds = run_queries(service, "c", dataset, "dense", 10, progress=False)  # type: ignore[arg-type]
    assert [(t.role, t.content) for t in service.calls[2]["history"]] == [
        ("user", "Where is the mill?"),
        ("assistant", "By the river."),
    ]
    gold = {"a": {3: 1}, "b": {4: 1}, "c": {4: 1}}
    report = build_report(dataset, results, seconds, gold, make_config("dense"))
    assert report.queries.model_dump() == {
        "total": 4,
        "ranked": 3,
        "unanswerable": 1,
        "failed": 0,
    }
    assert report.metrics["mrr@10"] == pytest.approx((1 + 0.5 + 1) / 3, abs=1e-4)
    # answered all but one answerable question; answered the unanswerable one (wrong)
    assert report.abstention is not None and report.abstention.model_dump() == {
        "unanswerable": 1,
        "answerable": 3,
        "accuracy": 0.5,
        "correct_abstain_rate": 0.0,
        "false_answer_rate": 1.0,
        "false_abstain_rate": 0.3333,
    }
    assert report.answers is not None  # "river", any case
    assert report.answers.model_dump() == {"labelled": 1, "correct": 1, "accuracy": 1.0}
    assert report.followups is not None and report.followups.groups == 1
    assert report.followups.followup.mrr_at_10 == 0.5
    assert report.followups.self_contained.mrr_at_10 == 1.0
    by_id = {q.id: q for q in report.per_query}
    assert by_id["d"].metrics is None
    assert by_id["d"].answer is not None and by_id["d"].answer.correct is False
    assert by_id["b"].retrieved[1].model_dump() == {
        "rank": 2,
        "id": "#4",
        "document_id": "doc",
        "passage_id": 4,
        "title": "Title doc",
        "score": 0.8,
        "relevant": True,
        "text": "passage 4",
    }
    text = markdown([report])
    assert "| dense | 1.000 |" not in text and "| retriever | nDCG@10 | MRR@10 |" in text
    assert "## Answers and abstention" in text and "## Failed queries: dense (0 of 3" in text
    assert "| dense | followup (1) | 0.631 | 0.500 | 0.000 | – |" in text


def test_failed_queries_are_listed_with_what_came_back(tmp_path: Path) -> None:
    dataset = Dataset(
        "t", tmp_path, "beir", "test", [Question("7", "why?", gold_documents={"good": 1})]
    )
    results = [
        QueryResult(
            dataset.questions[0], aggregate_documents([("bad", 1, 0.9, "A Wrong Title")]), 12.0
        )
    ]
    config = make_config("bm25", counts=Counts(documents=2, passages=2))
    report = build_report(
        dataset, results, 0.5, {}, config, describe={"good": "The Right Title"}.get
    )
    assert report.per_query[0].failed is True
    assert report.per_query[0].gold_described == {"good": "The Right Title"}
    assert report.latency_ms.model_dump() == {"p50": 12.0, "p95": 12.0, "mean": 12.0}
    assert report.qps == 2.0
    text = markdown([report])
    assert "## Failed queries: bm25 (1 of 1 with nothing relevant in the top 10)" in text
    assert "**7** why? — gold `good` The Right Title; no relevant result retrieved" in text
    assert "1. `bad` A Wrong Title (0.900)" in text
    assert "- collection `c` (2 documents, 2 passages), model m" in text


def test_report_json_leaves_out_absent_parts_and_keeps_four_decimals(tmp_path: Path) -> None:
    dataset = Dataset("t", tmp_path, "beir", "test", [Question("1", "q?", gold_documents={"a": 1})])
    items = aggregate_documents([("a", 1, 0.123456789, "A", "text"), ("b", 2, 0.1, "B", "t")])
    report = build_report(
        dataset, [QueryResult(dataset.questions[0], items, 1 / 3)], 0.0, {}, make_config("dense")
    )
    data = json.loads(json.dumps(report.model_dump(mode="json")))
    assert list(data) == [
        "dataset",
        "split",
        "config",
        "metrics",
        "latency_ms",
        "qps",
        "queries",
        "per_query",
    ]
    assert "fusion" not in data["config"] and list(data["config"])[-1] == "retriever"
    assert data["qps"] is None and data["latency_ms"]["p50"] == 0.3333
    entry = data["per_query"][0]
    assert {"gold_described", "history", "answer"}.isdisjoint(entry)
    assert entry["retrieved"][0] == {
        "rank": 1,
        "id": "a",
        "document_id": "a",
        "passage_id": 1,
        "title": "A",
        "score": 0.1235,
        "relevant": True,
    }


# the labelled article set


def test_labelled_article_set_is_well_formed() -> None:
    questions = load_questions(ARTICLE_QUESTIONS)
    answerable = [q for q in questions if q.answerable]
    followups = [q for q in questions if q.followup]
    assert len(questions) >= 30 and len(questions) - len(answerable) >= 5
    assert all(q.answer for q in answerable)
    assert len(followups) >= 5
    groups = {q.group for q in followups}
    for group in groups:  # every follow-up has a self-contained twin
        assert any(q.group == group and not q.followup for q in questions), group


# Thresholds for the labelled set (45 questions, 37 with gold, over the article's 19 passages).
# Measured when this was written (dense / hybrid / bm25): nDCG@10 0.920 / 0.945 / 0.829,
# MRR@10 0.903 / 0.930 / 0.816, R@10 0.973 / 1.000 / 0.910, answer-sentence accuracy
# 29/37, 29/37, 28/37. One question slipping from rank 1 to rank 2 costs 0.5/37 = 0.014 of
# MRR and one question dropping out of the top 10 costs 1/37 = 0.027 of R@10, so each floor
# below tolerates about three questions getting worse (room for float noise across CPUs and
# torch versions, and for deliberate trade-offs) but fails on a real regression. A broken
# pipeline scores far lower: a random order of 19 passages gives nDCG@10 around 0.3.
ARTICLE_FLOORS = {
    "dense": {"ndcg@10": 0.87, "mrr@10": 0.85, "recall@10": 0.90},
    "hybrid": {"ndcg@10": 0.89, "mrr@10": 0.87, "recall@10": 0.92},
    "bm25": {"ndcg@10": 0.77, "mrr@10": 0.75, "recall@10": 0.83},
}
ANSWER_FLOOR = 0.65  # 24 of 37: about five fewer than measured (29, 29, 28)


def test_labelled_article_set_regression(seed_service: Any) -> None:
    dataset = load_dataset(ARTICLE_QUESTIONS, collection=seed_service.settings.collection)
    reports = evaluate(seed_service, dataset, list(ARTICLE_FLOORS), top_k=10, progress=False)
    for report in reports:
        name = report.config.retriever
        assert report.queries.ranked == 37 and report.queries.unanswerable == 20
        for metric, floor in ARTICLE_FLOORS[name].items():
            assert report.metrics[metric] >= floor, (name, metric, report.metrics)
        assert report.answers is not None
        assert report.answers.accuracy >= ANSWER_FLOOR, (name, report.answers)
        # abstention (QA_MIN_ANSWER_SCORE, calibrated on this set): every one of the 12 off-topic
        # questions is refused and no answerable one is; the 8 in-domain near-misses are
        # answered (measured: false answers 8/20), so allow at most one more of either error
        abstention = report.abstention
        assert abstention is not None and abstention.unanswerable == 20
        assert abstention.false_abstain_rate <= 1 / 37 + 1e-9, (name, abstention)
        assert abstention.correct_abstain_rate >= 11 / 20 - 1e-9, (name, abstention)
