"""Feedback as labelled questions in the JSONL format ``qa eval`` reads.

* a helpful answer: its sentence is the gold (``gold_snippets``: whichever passage holds it
  is relevant, so the label survives re-splitting and re-indexing) and the expected answer;
* a helpful "the documents don't answer this": a question without gold (scored on
  abstention);
* "wrong passage": the passage shown is judged not relevant (``gold_passages: {id: 0}``);
* everything else ("it should have answered", "answer incomplete", "other", questions the
  server recorded as unanswered, answers whose passage is gone) is left for a person to
  label, in a separate file.

The same question (with the same conversation before it) is exported once: the latest
verdict wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qa.feedback.records import REASONS, FeedbackRecord
from qa.store import PassageRow

Line = dict[str, object]


@dataclass
class Export:
    """Lines for ``qa eval``, lines for a person to label, and repeats left out."""

    labelled: list[Line] = field(default_factory=list)
    to_label: list[Line] = field(default_factory=list)
    repeats: int = 0


def _key(record: FeedbackRecord) -> tuple[str, ...]:
    """What makes two records the same question: its words and the conversation before it."""
    turns = tuple(f"{t.role}:{' '.join(t.content.split()).casefold()}" for t in record.history)
    return (" ".join(record.question.split()).casefold(), *turns)


def _base(record: FeedbackRecord, **note: object) -> Line:
    """The question part of a line, with a note tracing it to its record."""
    line: Line = {"id": f"fb-{record.id}", "question": record.question}
    if record.history:
        line["history"] = [t.model_dump() for t in record.history]
    verdict = record.rating or record.kind
    if record.reason:
        verdict = f"{verdict}: {REASONS[record.reason]}"
    line["note"] = {
        "feedback_id": record.id,
        "created_at": record.created_at,
        "verdict": verdict,
        **({"comment": record.comment} if record.comment else {}),
        **note,
    }
    return line


def _labelled(record: FeedbackRecord, passages: Mapping[int, PassageRow]) -> Line | str:
    """The labelled line of ``record``, or why it is left for a person."""
    answer = record.answer
    if record.kind == "unanswered":
        return "not answered: add gold if the documents answer it, else keep it without gold"
    if record.rating == "helpful":
        if answer is None:
            return _base(record)  # no gold: "the documents don't answer this" was right
        row = passages.get(answer.passage_id)
        if row is None:
            return "the answer's passage is no longer in the collection: label it again"
        sentence = row.text[answer.start : answer.end].strip()
        if not sentence:
            return {**_base(record, passage_id=row.id), "gold_passages": {str(row.id): 1}}
        return {
            **_base(record, passage_id=row.id),
            "gold_snippets": [sentence],
            "answer": [sentence],
        }
    if record.reason == "wrong_passage":
        shown = answer.passage_id if answer else next(iter(record.passage_ids), None)
        if shown is None or shown not in passages:
            return "the passage shown is no longer in the collection: label it again"
        return {**_base(record, passage_id=shown), "gold_passages": {str(shown): 0}}
    reason = REASONS.get(record.reason or "", "not helpful, no reason given")
    return f"{reason}: add the passage (gold_passages or gold_snippets) that answers it"


def export_lines(records: Sequence[FeedbackRecord], passages: Mapping[int, PassageRow]) -> Export:
    """``records`` (oldest first) as labelled lines and lines to label; ``passages`` are the
    live collection's passages that the records name."""
    latest: dict[tuple[str, ...], FeedbackRecord] = {}
    for record in records:
        latest[_key(record)] = record  # a later verdict on the same question replaces it
    out = Export(repeats=len(records) - len(latest))
    for record in sorted(latest.values(), key=lambda r: r.id):
        line = _labelled(record, passages)
        if isinstance(line, str):
            out.to_label.append(_base(record, todo=line))
        else:
            out.labelled.append(line)
    return out


def named_passages(records: Sequence[FeedbackRecord]) -> list[int]:
    """Every passage id the records name (answers and passages shown)."""
    ids = {r.answer.passage_id for r in records if r.answer}
    ids.update(i for r in records for i in r.passage_ids[:1])
    return sorted(ids)
