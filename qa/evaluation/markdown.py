"""Reports for people: the Markdown file and the terminal summary."""

from __future__ import annotations

from collections.abc import Sequence

from qa.evaluation.metrics import HEADLINE
from qa.evaluation.report import FAILURE_CUTOFF, PerQuery, Report

_LABELS = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "MRR@10",
    "recall@1": "R@1",
    "recall@5": "R@5",
    "recall@10": "R@10",
    "recall@100": "R@100",
    "map@100": "MAP@100",
}


def _cell(value: object, digits: int = 3) -> str:
    """A table cell: a dash for None, fixed decimals for floats, pipes escaped."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _short(text: str, width: int = 90) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown(reports: Sequence[Report], max_failures: int = 100) -> str:
    """Side-by-side table, abstention and answers, and failed queries per retriever."""
    lines = _heading(reports[0]) + _metrics_table(reports)
    lines += _answers_tables(reports)
    for report in reports:
        lines += _failures(report, max_failures)
    return "\n".join(lines) + "\n"


def _heading(first: Report) -> list[str]:
    """Title, collection and questions."""
    config = first.config
    split = f" ({first.split} split)" if first.split else ""
    return [
        f"# Evaluation: {first.dataset}{split}",
        "",
        (
            f"- collection `{config.collection}` ({config.counts.documents} documents, "
            f"{config.counts.passages} passages), model {config.model.name}"
        ),
        (
            f"- {first.queries.total} questions ({first.queries.ranked} with gold), "
            f"top-k {config.top_k}; " + _units(first)
        ),
        "",
    ]


def _metrics_table(reports: Sequence[Report]) -> list[str]:
    """One row of headline metrics and speed per retriever."""
    lines = [
        "| retriever | " + " | ".join(_LABELS[k] for k in HEADLINE) + " | p50 ms | p95 ms | q/s |",
        "|---|" + "---:|" * (len(HEADLINE) + 3),
    ]
    for report in reports:
        row = [report.config.retriever] + [_cell(report.metrics[k]) for k in HEADLINE]
        row += [
            _cell(report.latency_ms.p50, 1),
            _cell(report.latency_ms.p95, 1),
            _cell(report.qps, 1),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _answers_tables(reports: Sequence[Report]) -> list[str]:
    """Answer-sentence accuracy, abstention, and follow-ups (question files only)."""
    if reports[0].abstention is None:
        return []
    lines = [
        "",
        "## Answers and abstention",
        "",
        (
            "| retriever | answer-sentence accuracy | abstention accuracy | correct abstain "
            "| false answer | false abstain |"
        ),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        a, s = report.answers, report.abstention
        if a is None or s is None:
            continue
        lines.append(
            f"| {report.config.retriever} | {_cell(a.accuracy)} ({a.correct}/{a.labelled}) | "
            f"{_cell(s.accuracy)} | {_cell(s.correct_abstain_rate)} | "
            f"{_cell(s.false_answer_rate)} | {_cell(s.false_abstain_rate)} |"
        )
    lines += [
        "",
        "Unanswerable questions are left out of the ranking metrics; abstaining on them is correct.",
        "",
        "## Follow-ups vs their self-contained twins",
        "",
        "| retriever | questions | nDCG@10 | MRR@10 | R@1 | answer accuracy |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for report in reports:
        if report.followups is None:
            continue
        for name, f in (
            ("followup", report.followups.followup),
            ("self-contained", report.followups.self_contained),
        ):
            lines.append(
                f"| {report.config.retriever} | {name} ({f.questions}) | "
                f"{_cell(f.ndcg_at_10)} | {_cell(f.mrr_at_10)} | {_cell(f.recall_at_1)} | "
                f"{_cell(f.answer_accuracy)} |"
            )
    return lines


def _failures(report: Report, max_failures: int) -> list[str]:
    """The failed queries of one retriever: what was wanted and what came back."""
    failed = [q for q in report.per_query if q.failed]
    lines = [
        "",
        (
            f"## Failed queries: {report.config.retriever} ({len(failed)} of "
            f"{report.queries.ranked} with nothing relevant in the top {FAILURE_CUTOFF})"
        ),
        "",
    ]
    if not failed:
        lines.append("None.")
    for entry in failed[:max_failures]:
        lines += _failure(entry)
    if len(failed) > max_failures:
        lines.append(
            f"- … {len(failed) - max_failures} more in the JSON report "
            "(`per_query`, `failed: true`)."
        )
    return lines


def _failure(entry: PerQuery) -> list[str]:
    """A failed query: its gold, where the first relevant item was, and the top three."""
    found = (
        f"first relevant at rank {entry.first_relevant_rank}"
        if entry.first_relevant_rank
        else "no relevant result retrieved"
    )
    described = entry.gold_described or {g: None for g in entry.gold[:5]}
    gold = ", ".join(
        f"`{g}` {_cell(_short(d, 60))}" if d else f"`{g}`" for g, d in described.items()
    )
    lines = [
        f"- **{_cell(entry.id)}** {_cell(_short(entry.question))} — gold {gold}; {found}. Got:"
    ]
    for item in entry.retrieved[:3]:
        label = item.title if entry.unit == "document" else item.text or ""
        lines.append(f"  {item.rank}. `{item.id}` {_cell(_short(label, 90))} ({_cell(item.score)})")
    return lines


def _units(report: Report) -> str:
    """How the questions with gold are judged (per document, per passage)."""
    units = {q.unit for q in report.per_query if q.answerable}
    parts = []
    if "document" in units:
        parts.append("judged per document (document score = best passage score)")
    if "passage" in units:
        parts.append("judged per passage (snippet or passage-id gold)")
    return "; ".join(parts) or "no gold"


def summary_lines(reports: Sequence[Report]) -> list[str]:
    """A short plain-text summary for the terminal."""
    out = []
    for report in reports:
        metrics = "  ".join(f"{_LABELS[k]} {report.metrics[k]:.4f}" for k in HEADLINE)
        out.append(
            f"{report.config.retriever:<7} {metrics}  p50 {report.latency_ms.p50:.1f} ms  "
            f"p95 {report.latency_ms.p95:.1f} ms  {report.qps or 0:.1f} q/s  "
            f"failed {report.queries.failed}/{report.queries.ranked}"
        )
        s, a = report.abstention, report.answers
        if s is not None and a is not None:
            out.append(
                f"        answers {a.correct}/{a.labelled} correct; abstention accuracy "
                f"{_cell(s.accuracy)}, false answers {_cell(s.false_answer_rate)} "
                f"on {s.unanswerable} unanswerable"
            )
    return out
