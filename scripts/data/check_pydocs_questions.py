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

Only the standard library and BeautifulSoup are needed. Extracting all ~530 pages takes about
two minutes, so the paragraphs are cached in the temp directory (keyed on each file's mtime/size).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
import unicodedata
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Doctype, ProcessingInstruction

DOCS = Path("/usr/share/doc/python3.11/html")
SEED = 14
KINDS = ("answerable", "unanswerable", "followup", "followup-twin")
SKIP_DIRS = {"_sources", "_static", "_images", "_downloads"}
BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "nav",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tr",
    "td",
    "th",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "address",
    "hr",
    "form",
    "fieldset",
    "caption",
    "details",
    "summary",
    "legend",
    "br",
}
# Not indexed by the service either (qa/html_text.py): page furniture, and <aside> (Sphinx puts
# footnotes, sidebars and topic boxes there), so gold found only there could not be retrieved.
DROP = {"script", "style", "noscript", "template", "head", "title", "aside", "nav", "footer", "svg"}
DROP_CLASSES = {
    "headerlink",
    "sphinxsidebar",
    "related",
    "footer",
}  # "headerlink" is the ¶ permalink
BREAK = "\u2029"
_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
        "\u00b6": " ",
    }
)
CACHE_VERSION = 2
MAX_PAGES = 3  # a snippet found on more pages than this is not specific


def normalise(text: str) -> str:
    """Case-, whitespace- and quote-insensitive form (as ``qa.evaluation.normalise``, plus NBSP/¶)."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold().split())


def _walk(node: Tag, out: list[str]) -> None:
    for child in node.children:
        if isinstance(child, (Comment, Doctype, ProcessingInstruction)):
            continue
        if isinstance(child, NavigableString):
            out.append(str(child))
            continue
        if not isinstance(child, Tag) or child.name in DROP:
            continue
        classes = set(child.get("class") or [])
        if classes & DROP_CLASSES or child.has_attr("hidden"):
            continue
        if (child.get("role") or "").lower() in ("navigation", "search"):
            continue
        block = child.name in BLOCK
        if block:
            out.append(BREAK)
        _walk(child, out)
        if block:
            out.append(BREAK)


def _extract(path: Path) -> list[str]:
    soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")
    root = soup.find("div", attrs={"role": "main"}) or soup.find("div", class_="body") or soup.body
    parts: list[str] = []
    if root is not None:
        _walk(root, parts)
    text = "".join(parts)
    return [p for p in (normalise(block) for block in text.split(BREAK)) if p]


_CACHE: dict[str, list] = {}  # page -> [mtime_ns, size, paragraphs]
_CACHE_DIRTY = False


def _cache_file() -> Path:
    """Extraction takes ~2 minutes for all pages, so paragraphs are cached (by mtime and size)."""
    key = hashlib.sha1(f"{DOCS.resolve()}|{CACHE_VERSION}".encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"pydocs_paragraphs_{key}.json"


def load_cache() -> None:
    try:
        _CACHE.update(json.loads(_cache_file().read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass


def save_cache() -> None:
    if _CACHE_DIRTY:
        _cache_file().write_text(json.dumps(_CACHE, ensure_ascii=False), encoding="utf-8")


def paragraphs(page: str) -> tuple[str, ...]:
    """Normalised paragraphs of the visible main text of ``page`` (relative to DOCS)."""
    global _CACHE_DIRTY
    path = DOCS / page
    stat = path.stat()
    cached = _CACHE.get(page)
    if cached and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return tuple(cached[2])
    paras = _extract(path)
    _CACHE[page] = [stat.st_mtime_ns, stat.st_size, paras]
    _CACHE_DIRTY = True
    return tuple(paras)


@cache
def page_texts() -> dict[str, str]:
    """Every HTML page of the docs (outside the asset folders): one string, paragraphs joined
    by a separator no snippet can match across."""
    out = {}
    for path in sorted(DOCS.rglob("*.html")):
        rel = path.relative_to(DOCS)
        if rel.parts[0] in SKIP_DIRS:
            continue
        out[rel.as_posix()] = " \u2029 ".join(paragraphs(rel.as_posix()))
    return out


def pages_containing(snippet: str) -> list[str]:
    needle = normalise(snippet)
    return [page for page, text in page_texts().items() if needle in text]


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


def check(records: list[tuple[int, dict]], verbose: bool = False) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    ids: dict[str, int] = {}
    groups: dict[str, list[str]] = defaultdict(list)
    known = {
        "id",
        "question",
        "history",
        "gold_snippets",
        "answer",
        "group",
        "note",
        "kind",
        "topic",
        "gold_page",
    }
    for number, rec in records:
        where = f"line {number} ({rec.get('id')})"

        def bad(msg: str, where: str = where) -> None:
            errors.append(f"{where}: {msg}")

        unknown = set(rec) - known
        if unknown:
            bad(f"unknown fields {sorted(unknown)}")
        qid = rec.get("id")
        if not isinstance(qid, str) or not qid:
            bad("missing id")
        elif qid in ids:
            bad(f"duplicate id (first on line {ids[qid]})")
        else:
            ids[qid] = number
        if not isinstance(rec.get("question"), str) or not rec["question"].strip():
            bad("missing question")
        m = meta(rec)
        kind = m["kind"]
        if kind not in KINDS:
            bad(f"kind {kind!r} not one of {KINDS}")
            continue
        snippets, answers = _strings(rec.get("gold_snippets")), _strings(rec.get("answer"))
        if snippets is None or answers is None:
            bad("gold_snippets / answer must be a string or a list of non-empty strings")
            continue
        history = rec.get("history")
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
            if not ok:
                bad("a followup needs a history of {role, content} turns")
        elif history:
            bad(f"a {kind} question must not have a history")
        if kind in ("followup", "followup-twin"):
            if not rec.get("group"):
                bad(f"a {kind} needs a group")
            else:
                groups[rec["group"]].append(kind)
        elif rec.get("group"):
            bad(f"a {kind} question must not have a group")
        if kind == "unanswerable":
            if snippets or answers or m["gold_page"]:
                bad("an unanswerable question has no gold_snippets, answer or gold_page")
            continue
        if not 1 <= len(snippets) <= 3:
            bad("1-3 gold_snippets needed")
        if not 1 <= len(answers) <= 3:
            bad("1-3 answer strings needed")
        page = m["gold_page"]
        if not page or not (DOCS / page).is_file():
            bad(f"gold_page {page!r} is not a page of {DOCS}")
            continue
        paras = paragraphs(page)
        hit_paras: list[str] = []
        for snippet in snippets:
            words = len(snippet.split())
            if not 3 <= words <= 20:
                warnings.append(f"{where}: snippet has {words} words: {snippet!r}")
            if "\u00b6" in snippet:
                bad(f"snippet contains ¶: {snippet!r}")
            needle = normalise(snippet)
            found = [p for p in paras if needle in p]
            if not found:
                whole = " ".join(paras)
                why = " (it crosses a paragraph boundary)" if needle in whole else ""
                bad(f"snippet not in {page}{why}: {snippet!r}")
                continue
            hit_paras.extend(found)
            where_else = pages_containing(snippet)
            if len(where_else) > MAX_PAGES:
                warnings.append(
                    f"{where}: snippet on {len(where_else)} pages (not specific): {snippet!r}"
                )
            if verbose:
                print(f"  {qid}: {len(where_else)} page(s): {snippet!r}")
        if not hit_paras:
            continue
        in_sentence = False
        for answer in answers:
            needle = normalise(answer)
            if not any(needle in p for p in hit_paras):
                bad(f"answer {answer!r} not in a paragraph holding a snippet")
            for p in hit_paras:
                for snippet in snippets:
                    for sentence in _sentences_around(p, normalise(snippet)):
                        if needle in sentence:
                            in_sentence = True
        if not in_sentence:
            warnings.append(f"{where}: no answer string in the sentence of a snippet (check)")
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
    global DOCS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--split", action="store_true", help="write the tune and test halves")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--docs", type=Path, default=None, help=f"default {DOCS}")
    parser.add_argument("-v", "--verbose", action="store_true", help="page count of every snippet")
    args = parser.parse_args()
    if args.docs is not None:
        DOCS = args.docs
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
