"""Check (and split) the labelled question set over the Python 3.11 HTML documentation.

    python scripts/data/check_pydocs_questions.py /tmp/pydocs_questions.jsonl
    python scripts/data/check_pydocs_questions.py /tmp/pydocs_questions.jsonl --split
    python scripts/data/check_pydocs_questions.py scripts/data/pydocs_questions_test.jsonl

Every line is checked: the JSON fields, unique ids, that each gold snippet occurs (ignoring
case and whitespace, with curly quotes and NBSP normalised) within ONE paragraph of the visible
text of ``gold_page`` (the main content, ``div[role=main]`` or ``div.body``, with every block
element boundary made a paragraph break; footnotes and other ``<aside>`` boxes are left out, as
the service's indexer leaves them out), and that each ``answer`` string occurs in the same
paragraph as one of the snippets. For each snippet it also counts how many HTML pages of the
docs contain it and warns when more than 3 do (the snippet does not identify the passage).

The working file carries ``kind``, ``topic`` and ``gold_page`` as top-level fields. ``qa eval``
rejects fields it does not know, so ``--split`` writes the two halves with those three moved
into the ``note`` field (``kind=...; page=...; topic=...``); this script reads both forms.

``--split`` assigns whole follow-up groups together, stratified by kind, with a seeded
shuffle (seed 14), and writes ``pydocs_questions_tune.jsonl`` and ``pydocs_questions_test.jsonl``
next to this script (or into ``--out-dir``). Exit status 1 when any line is rejected.

Only the standard library and BeautifulSoup are needed. The page text comes from
``pydocs_pages.py`` (next to this script): extracting all ~530 pages takes about two minutes, so
the paragraphs are cached in the temp directory (keyed on each file's mtime/size).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pydocs_pages  # next to this script, which Python puts first on sys.path
from pydocs_pages import load_cache, normalise, pages_containing, paragraphs, save_cache

SEED = 14
KINDS = ("answerable", "unanswerable", "followup", "followup-twin")
EVAL_FIELDS = {"id", "question", "history", "gold_snippets", "answer", "group", "note"}
FIELDS = EVAL_FIELDS | {"kind", "topic", "gold_page"}  # --split folds the last three into note
MAX_PAGES = 3  # a snippet found on more pages than this is not specific


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'`])", re.IGNORECASE)


def _sentences_around(paragraph: str, needle: str) -> list[str]:
    """Rough sentences of ``paragraph`` overlapping each occurrence of ``needle``."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(paragraph):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(paragraph)))
    out = []
    for m in re.finditer(re.escape(needle), paragraph):
        s, e = m.start(), m.end()
        out.append(" ".join(paragraph[a:b] for a, b in spans if a < e and b > s))
    return out


def meta(record: dict) -> dict:
    """kind / topic / gold_page, top-level or from the ``note`` of a split file."""
    out = {k: record.get(k) for k in ("kind", "topic", "gold_page")}
    note = record.get("note")
    if isinstance(note, str):
        for part in note.split(";"):
            key, _, value = part.strip().partition("=")
            key = {"page": "gold_page"}.get(key, key)
            if key in out and out[key] is None and value:
                out[key] = value.strip()
    return out


def _strings(value) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return None
    return value


def _field_errors(rec: dict) -> list[str]:
    unknown = set(rec) - FIELDS
    return [f"unknown fields {sorted(unknown)}"] if unknown else []


def _id_errors(rec: dict, number: int, ids: dict[str, int]) -> list[str]:
    """A missing or repeated id (``ids``: id -> line of its first use, updated here)."""
    qid = rec.get("id")
    if not isinstance(qid, str) or not qid:
        return ["missing id"]
    if qid in ids:
        return [f"duplicate id (first on line {ids[qid]})"]
    ids[qid] = number
    return []


def _question_errors(rec: dict) -> list[str]:
    if not isinstance(rec.get("question"), str) or not rec["question"].strip():
        return ["missing question"]
    return []


def _history_errors(history, kind: str) -> list[str]:
    """A followup has a history of {role, content} turns, other kinds none."""
    if kind == "followup":
        ok = (
            isinstance(history, list)
            and history
            and all(
                isinstance(t, dict)
                and set(t) == {"role", "content"}
                and t["role"] in ("user", "assistant")
                and isinstance(t["content"], str)
                and t["content"].strip()
                for t in history
            )
        )
        return [] if ok else ["a followup needs a history of {role, content} turns"]
    return [f"a {kind} question must not have a history"] if history else []


def _group_errors(rec: dict, kind: str, groups: dict[str, list[str]]) -> list[str]:
    """Follow-ups (and their twins) have a group, collected in ``groups``; others none."""
    if kind in ("followup", "followup-twin"):
        if not rec.get("group"):
            return [f"a {kind} needs a group"]
        groups[rec["group"]].append(kind)
        return []
    return [f"a {kind} question must not have a group"] if rec.get("group") else []


def _count_errors(snippets: list[str], answers: list[str]) -> list[str]:
    out = []
    if not 1 <= len(snippets) <= 3:
        out.append("1-3 gold_snippets needed")
    if not 1 <= len(answers) <= 3:
        out.append("1-3 answer strings needed")
    return out


def _snippet_errors(snippet: str, page: str, paras: tuple[str, ...]) -> list[str]:
    """The snippet must lie within one paragraph of its page (and hold no ¶)."""
    out = []
    if "\u00b6" in snippet:
        out.append(f"snippet contains ¶: {snippet!r}")
    needle = normalise(snippet)
    if not any(needle in p for p in paras):
        whole = " ".join(paras)
        why = " (it crosses a paragraph boundary)" if needle in whole else ""
        out.append(f"snippet not in {page}{why}: {snippet!r}")
    return out


def _specificity_warnings(snippet: str, on_page: bool, qid, verbose: bool) -> list[str]:
    """A snippet of 3-20 words, found (if it is on its page) on at most MAX_PAGES pages."""
    out = []
    words = len(snippet.split())
    if not 3 <= words <= 20:
        out.append(f"snippet has {words} words: {snippet!r}")
    if not on_page:
        return out
    where_else = pages_containing(snippet)
    if len(where_else) > MAX_PAGES:
        out.append(f"snippet on {len(where_else)} pages (not specific): {snippet!r}")
    if verbose:
        print(f"  {qid}: {len(where_else)} page(s): {snippet!r}")
    return out


def _check_snippets(
    rec: dict, page: str, snippets: list[str], verbose: bool
) -> tuple[list[str], list[str], list[str]]:
    """Errors, warnings, and the paragraphs of ``page`` that hold a snippet."""
    errors: list[str] = []
    warnings: list[str] = []
    hit_paras: list[str] = []
    paras = paragraphs(page)
    for snippet in snippets:
        found = [p for p in paras if normalise(snippet) in p]
        warnings += _specificity_warnings(snippet, bool(found), rec.get("id"), verbose)
        errors += _snippet_errors(snippet, page, paras)
        hit_paras.extend(found)
    return errors, warnings, hit_paras


def _answer_errors(answers: list[str], hit_paras: list[str]) -> list[str]:
    """Each answer string must occur in a paragraph that holds a snippet."""
    return [
        f"answer {answer!r} not in a paragraph holding a snippet"
        for answer in answers
        if not any(normalise(answer) in p for p in hit_paras)
    ]


def _sentence_warnings(answers: list[str], snippets: list[str], hit_paras: list[str]) -> list[str]:
    """Warn unless some answer string occurs in a sentence holding a snippet."""
    for answer in answers:
        needle = normalise(answer)
        for p in hit_paras:
            for snippet in snippets:
                if any(needle in s for s in _sentences_around(p, normalise(snippet))):
                    return []
    return ["no answer string in the sentence of a snippet (check)"]


def _check_record(
    number: int, rec: dict, ids: dict[str, int], groups: dict[str, list[str]], verbose: bool
) -> tuple[list[str], list[str]]:
    """Errors and warnings of one line (without the ``line N (id):`` prefix)."""
    errors = _field_errors(rec) + _id_errors(rec, number, ids) + _question_errors(rec)
    m = meta(rec)
    kind = m["kind"]
    if kind not in KINDS:
        return [*errors, f"kind {kind!r} not one of {KINDS}"], []
    snippets, answers = _strings(rec.get("gold_snippets")), _strings(rec.get("answer"))
    if snippets is None or answers is None:
        errors.append("gold_snippets / answer must be a string or a list of non-empty strings")
        return errors, []
    errors += _history_errors(rec.get("history"), kind) + _group_errors(rec, kind, groups)
    if kind == "unanswerable":
        if snippets or answers or m["gold_page"]:
            errors.append("an unanswerable question has no gold_snippets, answer or gold_page")
        return errors, []
    errors += _count_errors(snippets, answers)
    page = m["gold_page"]
    if not page or not (pydocs_pages.DOCS / page).is_file():
        return [*errors, f"gold_page {page!r} is not a page of {pydocs_pages.DOCS}"], []
    snippet_errors, warnings, hit_paras = _check_snippets(rec, page, snippets, verbose)
    errors += snippet_errors
    if hit_paras:
        errors += _answer_errors(answers, hit_paras)
        warnings += _sentence_warnings(answers, snippets, hit_paras)
    return errors, warnings


def check(records: list[tuple[int, dict]], verbose: bool = False) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    ids: dict[str, int] = {}
    groups: dict[str, list[str]] = defaultdict(list)
    for number, rec in records:
        where = f"line {number} ({rec.get('id')})"
        rec_errors, rec_warnings = _check_record(number, rec, ids, groups, verbose)
        errors += [f"{where}: {e}" for e in rec_errors]
        warnings += [f"{where}: {w}" for w in rec_warnings]
    for group, kinds in groups.items():
        if sorted(kinds) != ["followup", "followup-twin"]:
            errors.append(
                f"group {group!r}: needs exactly one followup and one followup-twin, has {kinds}"
            )
    return errors, warnings


def read(path: Path) -> list[tuple[int, dict]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                out.append((number, {"id": f"line{number}", "question": "", "_bad": str(exc)}))
    return out


def for_eval(rec: dict) -> dict:
    """The record as ``qa eval`` reads it: kind/topic/gold_page folded into ``note``."""
    m = meta(rec)
    out = {k: v for k, v in rec.items() if k not in ("kind", "topic", "gold_page", "note")}
    parts = [f"kind={m['kind']}"]
    if m["gold_page"]:
        parts.append(f"page={m['gold_page']}")
    if m["topic"]:
        parts.append(f"topic={m['topic']}")
    out["note"] = "; ".join(parts)
    return out


def split(records: list[dict], seed: int = SEED) -> tuple[list[dict], list[dict]]:
    """Tune and test halves: follow-up groups whole, stratified by kind, seeded shuffle."""
    units: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for rec in records:
        kind = meta(rec)["kind"]
        if kind in ("followup", "followup-twin"):
            units["followup-pair"].setdefault(rec["group"], []).append(rec)
        else:
            units[kind][rec["id"]] = [rec]
    rng = random.Random(seed)
    tune_ids, test_ids = set(), set()
    for stratum in sorted(units):
        keys = sorted(units[stratum])
        rng.shuffle(keys)
        half = len(keys) // 2  # an odd one out goes to test
        for i, key in enumerate(keys):
            target = tune_ids if i < half else test_ids
            target.update(r["id"] for r in units[stratum][key])
    tune = [r for r in records if r["id"] in tune_ids]
    test = [r for r in records if r["id"] in test_ids]
    return tune, test


def totals(records: list[dict]) -> Counter:
    return Counter(meta(r)["kind"] for r in records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--split", action="store_true", help="write the tune and test halves")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--docs", type=Path, default=None, help=f"default {pydocs_pages.DOCS}")
    parser.add_argument("-v", "--verbose", action="store_true", help="page count of every snippet")
    args = parser.parse_args()
    if args.docs is not None:
        pydocs_pages.DOCS = args.docs
    rows = read(args.file)
    load_cache()
    errors, warnings = check(rows, args.verbose)
    save_cache()
    for number, rec in rows:
        if "_bad" in rec:
            errors.append(f"line {number}: not JSON: {rec['_bad']}")
    for w in warnings:
        print("warning:", w)
    for e in errors:
        print("error:", e)
    records = [rec for _, rec in rows]
    count = totals(records)
    answerable = [r for r in records if meta(r)["kind"] == "answerable"]
    pages = {meta(r)["gold_page"] for r in answerable}
    modules = {p for p in pages if p and p.startswith("library/")}
    print(f"{len(records)} lines: " + ", ".join(f"{k} {count.get(k, 0)}" for k in KINDS))
    print(
        f"answerable: {len(pages)} pages, {len(modules)} library pages; "
        f"{len(errors)} errors, {len(warnings)} warnings"
    )
    if errors:
        return 1
    if args.split:
        tune, test = split(records)
        for name, part in (("tune", tune), ("test", test)):
            path = args.out_dir / f"pydocs_questions_{name}.jsonl"
            with path.open("w", encoding="utf-8") as fh:
                for rec in part:
                    fh.write(json.dumps(for_eval(rec), ensure_ascii=False) + "\n")
            c = totals(part)
            print(
                f"wrote {path}: {len(part)} lines: "
                + ", ".join(f"{k} {c.get(k, 0)}" for k in KINDS)
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
