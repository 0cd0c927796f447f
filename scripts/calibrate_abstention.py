"""Calibrate the "not in the documents" bar (QA_MIN_ANSWER_SCORE) on labelled questions.

    python scripts/calibrate_abstention.py scripts/data/songjiang_questions.jsonl

Prints every question's answer score, then for each candidate bar the share of answerable
questions wrongly refused (false abstain) and of unanswerable ones wrongly answered (false
answer). Among the bars whose false-abstain rate stays at or under --max-false-abstain (default 0:
refusing a question the documents do answer costs a user more than a near-miss passage
list), those with the fewest false answers form a range; the chosen bar is its middle,
so it sits in the gap between the two kinds of question rather than on an edge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness import jsonl_lines, make_parser, table_head, table_row

from qa.config import Settings
from qa.search import Turn
from qa.service import QAService

SHOWN_BARS = range(0, 71, 5)  # hundredths printed in the table; every hundredth is tried


@dataclass(frozen=True)
class Scored:
    """A question's answer score (-1 without an answer) and whether it has gold."""

    score: float
    answerable: bool
    question: str


@dataclass(frozen=True)
class Bar:
    """A candidate bar and its error rates over the questions."""

    bar: float
    false_abstain: float
    false_answer: float
    accuracy: float


def score_questions(files: list[Path]) -> list[Scored]:
    """Every question asked of the default collection, the bar off."""
    service = QAService(Settings(min_answer_score=-1.0))  # measure raw scores: never abstain here
    service.ensure_default(progress=False)
    scored = []
    for file in files:
        for line in jsonl_lines(file):
            item = json.loads(line)
            history = [Turn(role=t["role"], content=t["content"]) for t in item.get("history", [])]
            reply = service.ask(item["question"], history=history)
            gold = (
                item.get("gold_snippets") or item.get("gold_passages") or item.get("gold_documents")
            )
            score = reply.answer.score if reply.answer else -1.0
            scored.append(Scored(score, bool(gold), item["question"]))
    return scored


def rates(scored: list[Scored], bar: float) -> Bar:
    """How ``bar`` would have done on ``scored``."""
    answerable = sum(1 for s in scored if s.answerable)
    unanswerable = len(scored) - answerable
    refused = sum(1 for s in scored if s.answerable and s.score < bar)
    answered = sum(1 for s in scored if not s.answerable and s.score >= bar)
    right = sum(1 for s in scored if (s.score >= bar) == s.answerable)
    return Bar(
        bar, refused / max(1, answerable), answered / max(1, unanswerable), right / len(scored)
    )


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument(
        "files", nargs="+", type=Path, help="labelled JSONL files (no gold = unanswerable)"
    )
    parser.add_argument("--max-false-abstain", type=float, default=0.0)
    args = parser.parse_args()

    scored = score_questions(args.files)
    for s in sorted(scored, key=lambda s: (s.score, s.answerable, s.question)):
        print(f"{s.score:7.3f}  {'answerable  ' if s.answerable else 'UNANSWERABLE'}  {s.question}")
    answerable = sum(1 for s in scored if s.answerable)
    print(f"\n{answerable} answerable, {len(scored) - answerable} unanswerable\n")
    print("\n".join(table_head(["bar", "false abstain", "false answer", "accuracy"])))
    bars = [rates(scored, step / 100) for step in range(101)]
    for b in (bars[step] for step in SHOWN_BARS):
        print(
            table_row(
                [
                    f"{b.bar:.2f}",
                    f"{b.false_abstain:.3f}",
                    f"{b.false_answer:.3f}",
                    f"{b.accuracy:.3f}",
                ]
            )
        )
    allowed = [b for b in bars if b.false_abstain <= args.max_false_abstain]
    if allowed:
        fewest = min(b.false_answer for b in allowed)
        best = [b for b in allowed if b.false_answer == fewest]
        middle = round((best[0].bar + best[-1].bar) / 2, 2)
        chosen = best[len(best) // 2]
        print(
            f"\nchosen bar {middle:.2f} (bars {best[0].bar:.2f}-{best[-1].bar:.2f} tie): false abstain "
            f"{chosen.false_abstain:.3f}, false answer {chosen.false_answer:.3f}, "
            f"accuracy {chosen.accuracy:.3f}"
        )


if __name__ == "__main__":
    main()
