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

import argparse
import json
from pathlib import Path

from qa.search.followups import Turn
from qa.config import Settings
from qa.service import QAService


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="labelled JSONL files (no gold = unanswerable)")
    parser.add_argument("--max-false-abstain", type=float, default=0.0)
    args = parser.parse_args()

    settings = Settings(min_answer_score=-1.0)  # measure raw scores: never abstain here
    service = QAService(settings)
    service.ensure_default(progress=False)
    scored: list[tuple[float, bool, str]] = []
    for file in args.files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            history = [Turn(t["role"], t["content"]) for t in item.get("history", [])]
            reply = service.ask(item["question"], history)
            answerable = bool(item.get("gold_snippets") or item.get("gold_passages") or item.get("gold_documents"))
            score = reply.answer.score if reply.answer else -1.0
            scored.append((score, answerable, item["question"]))
    for score, answerable, question in sorted(scored):
        print(f"{score:7.3f}  {'answerable  ' if answerable else 'UNANSWERABLE'}  {question}")
    answerable_n = sum(1 for _, a, _ in scored if a)
    unanswerable_n = len(scored) - answerable_n
    print(f"\n{answerable_n} answerable, {unanswerable_n} unanswerable\n")
    print("| bar | false abstain | false answer | accuracy |")
    print("|---|---|---|---|")
    rows = []
    for step in range(101):
        bar = step / 100
        false_abstain = sum(1 for s, a, _ in scored if a and s < bar) / max(1, answerable_n)
        false_answer = sum(1 for s, a, _ in scored if not a and s >= bar) / max(1, unanswerable_n)
        accuracy = sum(1 for s, a, _ in scored if (s >= bar) == a) / len(scored)
        if step % 5 == 0 and step <= 70:
            print(f"| {bar:.2f} | {false_abstain:.3f} | {false_answer:.3f} | {accuracy:.3f} |")
        if false_abstain <= args.max_false_abstain:
            rows.append((bar, false_abstain, false_answer, accuracy))
    if rows:
        fewest = min(r[2] for r in rows)
        best = [r for r in rows if r[2] == fewest]
        middle = round((best[0][0] + best[-1][0]) / 2, 2)
        _, false_abstain, false_answer, accuracy = best[len(best) // 2]
        print(
            f"\nchosen bar {middle:.2f} (bars {best[0][0]:.2f}-{best[-1][0]:.2f} tie): false abstain "
            f"{false_abstain:.3f}, false answer {false_answer:.3f}, accuracy {accuracy:.3f}"
        )


if __name__ == "__main__":
    main()
