"""Parsing speed (MB/s) per format, the worst cases before/after, and the worker's overhead.

Prints Markdown tables:

1. MB/s of ``parse_bytes`` for HTML (every page of the Python docs in
   /usr/share/doc/python3.11/html, or ``--html-dir``), plain text (the docs' ``_sources``
   and the bundled corpus) and PDF (a multi-page PDF written from that text), now and as of
   ``git HEAD`` (``--old-ref``; skipped outside a checkout), plus sentence splitting.
2. Worst cases: input size and seconds, now and before (each "before" run is stopped after
   ``--cap`` seconds, in a process of its own).
3. The parser worker: round trip per small file, start-up, and a folder parsed in process vs
   by one and two workers.

    python scripts/bench_parse.py [--quick] [--cap 60] [--old-ref HEAD]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

DOCS = Path("/usr/share/doc/python3.11/html")


# --------------------------------------------------------------------------- the old code


def old_modules(ref: str) -> dict[str, ModuleType] | None:
    """``qa.ingest.documents`` and ``qa.ingest.sentences`` as of ``ref``, loaded under other names."""
    modules = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-parse-old-"))
    for name in ("documents", "sentences"):
        try:
            source = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{ref}:qa/{name}.py"], capture_output=True, text=True, check=True
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        path = folder / f"old_{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        modules[name] = module
    return modules


def _function(which: str, ref: str, name: str) -> Callable[..., object]:
    if which == "new":
        import qa.ingest.documents
        import qa.ingest.sentences

        modules = {"documents": qa.ingest.documents, "sentences": qa.ingest.sentences}
    else:
        loaded = old_modules(ref)
        assert loaded is not None
        modules = loaded
    module, _, attribute = name.partition(".")
    return getattr(modules[module], attribute)  # type: ignore[no-any-return]


def seconds_capped(which: str, ref: str, name: str, args: tuple[object, ...], cap: float) -> float | None:
    """Seconds ``name(*args)`` takes in a fresh process, or None when stopped after ``cap``."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_run_once, args=(which, ref, name, args, out))
    process.start()
    try:
        elapsed = out.get(timeout=cap + 60)  # includes the child's start-up; it reports its own time
    except Exception:  # noqa: BLE001 - queue.Empty: stopped
        elapsed = None
    if process.is_alive():
        process.kill()
    process.join()
    return elapsed if elapsed is not None and elapsed <= cap else None


def _run_once(which: str, ref: str, name: str, args: tuple[object, ...], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    function = _function(which, ref, name)
    for module in ("bs4", "lxml.etree", "pypdf", "qa.ingest.html"):  # imported lazily: not timed
        try:
            __import__(module)
        except ImportError:
            pass
    started = time.perf_counter()
    function(*args)
    out.put(time.perf_counter() - started)


# --------------------------------------------------------------------------- inputs


def html_pages(folder: Path, limit: int | None) -> list[tuple[Path, bytes]]:
    pages = sorted(folder.rglob("*.html"))
    if limit:
        pages = pages[:limit]
    return [(page, page.read_bytes()) for page in pages]


def text_files(limit: int | None) -> list[tuple[Path, bytes]]:
    files = sorted((DOCS / "_sources").rglob("*.txt")) if (DOCS / "_sources").is_dir() else []
    files += sorted((ROOT / "corpus").glob("*.txt"))
    if limit:
        files = files[:limit]
    return [(path.with_suffix(".txt"), path.read_bytes()) for path in files]


def pdf_from_text(texts: list[bytes], pages: int) -> bytes:
    from tests.pdf_fixtures import text_pdf

    lines: list[str] = []
    for data in texts:
        lines += [line[:95] for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        if len(lines) >= pages * 50:
            break
    return text_pdf([lines[i : i + 50] for i in range(0, min(len(lines), pages * 50), 50)])


# --------------------------------------------------------------------------- measurements


def throughput(parse: Callable[[Path, str, bytes], object], files: list[tuple[Path, bytes]]) -> tuple[float, float]:
    """(MB, seconds) to parse every file once (skips count: they are parsed too)."""
    from qa.ingest.documents import Skip

    total = sum(len(data) for _, data in files) / 1e6
    started = time.perf_counter()
    for path, data in files:
        try:
            parse(path, path.name, data)
        except Skip:
            pass
    return total, time.perf_counter() - started


def fmt_rate(mb: float, seconds: float | None) -> str:
    return "-" if seconds is None else f"{mb / seconds:.2f}"


def fmt_seconds(seconds: float | None, cap: float) -> str:
    if seconds is None:
        return f"> {cap:g} (stopped)"
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html-dir", type=Path, default=DOCS)
    parser.add_argument("--old-ref", default="HEAD", help="git revision of the code to compare with")
    parser.add_argument("--no-old", action="store_true", help="measure the current code only")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds after which an old worst case is stopped")
    parser.add_argument("--quick", action="store_true", help="fewer pages and smaller worst cases")
    args = parser.parse_args()

    from qa.ingest.documents import Skip, parse_bytes
    from qa.ingest.parsing import ParserPool
    from qa.ingest.sentences import sentence_spans
    from tests.pdf_fixtures import shared_stream_pdf

    old = None if args.no_old else old_modules(args.old_ref)
    limit = 60 if args.quick else None
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; 'before' = {args.old_ref if old else 'n/a'}\n")

    # 1. throughput
    pages = html_pages(args.html_dir, limit) if args.html_dir.is_dir() else []
    texts = text_files(limit)
    pdf = pdf_from_text([data for _, data in texts], 40 if args.quick else 400)
    pdfs = [(Path("docs.pdf"), pdf)]
    text_mb = sum(len(d) for _, d in texts) / 1e6
    joined = "\n\n".join(d.decode("utf-8", "replace") for _, d in texts)

    warm = [(Path("w.html"), b"<p>x</p>"), (Path("w.txt"), b"x\n\ny\n"), (Path("w.pdf"), pdf_from_text([b"x"], 1))]
    throughput(parse_bytes, warm)  # the parsers are imported on first use: not timed
    if old:
        throughput(old["documents"].parse_bytes, warm)
    # The old HTML code is quadratic on long pages (contents.html, 2.6 MB, ran for minutes):
    # "before" is measured on the pages under 300 KB; the big ones are among the worst cases.
    small_pages = [(path, data) for path, data in pages if len(data) < 300_000]
    rows = []
    for label, files, compare in (
        (f"HTML, pages under 300 KB ({args.html_dir})", small_pages, True),
        ("HTML, all pages", pages, False),
        ("plain text (docs' `_sources`, corpus)", texts, True),
        ("PDF (pages of the same text, Helvetica)", pdfs, True),
    ):
        if not files:
            continue
        mb, new_s = throughput(parse_bytes, files)
        old_s = throughput(old["documents"].parse_bytes, files)[1] if old and compare else None
        rows.append((label, f"{len(files):,} files, {mb:.1f} MB", fmt_rate(mb, old_s), fmt_rate(mb, new_s)))
    started = time.perf_counter()
    sentence_spans(joined)
    new_s = time.perf_counter() - started
    old_s = None
    if old:
        started = time.perf_counter()
        old["sentences"].sentence_spans(joined)
        old_s = time.perf_counter() - started
    rows.append(("sentence splitting (the text files)", f"{text_mb:.1f} MB", fmt_rate(text_mb, old_s), fmt_rate(text_mb, new_s)))
    print("| input | size | before MB/s | after MB/s |\n|---|---|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")

    # 2. worst cases
    scale = 1 if args.quick else 4
    nested = "<div>" * (55_000 * scale) + "x" + "</div>" * (55_000 * scale)  # 1.1 MB at full scale
    cases: list[tuple[str, str, tuple[object, ...], int]] = [
        ("sibling `<p></p>`", "documents.html_to_text", ("<p></p>" * 4_000,), 28_000),
        ("sibling `<p></p>`", "documents.html_to_text", ("<p></p>" * 8_000,), 56_000),
        ("nested `<div>`", "documents.html_to_text", (nested,), len(nested)),
        ("`<b>` then unmatched `</i>`", "documents.html_to_text", ("<b>" * 20_000 + "</i>" * 20_000,), 140_000),
        ("run of dots", "sentences.sentence_spans", ("a" + "." * 20_000 + "x",), 20_002),
        ("dots then closing quotes", "sentences.sentence_spans", ("a" + "?" * 10_000 + "\u201d" * 10_000 + "x",), 20_002),
    ]
    front = "---\ntitle: a" + " " * 20_000 + "b\n---\nbody\n"
    cases.append(("front matter title, 20k spaces", "documents.read_markdown", (Path("a.md"), "a.md", front.encode()), len(front)))
    for name in ("contents.html", "genindex-all.html"):
        if (args.html_dir / name).exists() and not args.quick:
            page = (args.html_dir / name).read_text(encoding="utf-8")
            cases.append((f"Python docs `{name}`", "documents.html_to_text", (page,), len(page.encode())))
    shared = shared_stream_pdf(50, 2_000)
    cases.append(("PDF: 50 pages share one stream", "documents.read_pdf", (Path("s.pdf"), "s.pdf", shared), len(shared)))
    print("\n| worst case | input | before s | after s |\n|---|---:|---:|---:|")
    for label, name, call_args, size in cases:
        after = seconds_capped("new", args.old_ref, name, call_args, args.cap)
        before = seconds_capped("old", args.old_ref, name, call_args, args.cap) if old else None
        size_text = f"{size / 1e6:.2f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"
        print(f"| {label} | {size_text} | {fmt_seconds(before, args.cap) if old else '-'} | {fmt_seconds(after, args.cap)} |")
    distinct = shared_stream_pdf(20, 3_000, distinct_resources=True)
    with ParserPool(timeout_s=30) as pool:
        started = time.perf_counter()
        with contextlib.suppress(Skip):  # over the budget: reported by its time
            pool.parse_bytes(Path("d.pdf"), "d.pdf", distinct)
        print(
            f"| PDF: 20 pages share a stream, each its own resources (under the 30 s budget) | "
            f"{len(distinct) / 1e3:.0f} KB | - | {time.perf_counter() - started:.1f} |"
        )

    # 3. the worker
    small = b"A small note\n\nOne paragraph of text, as short as a file gets.\n"
    article = (ROOT / "corpus" / "songjiang-g60-innovation-corridor.txt").read_bytes()
    page = (args.html_dir / "library" / "json.html").read_bytes() if (args.html_dir / "library" / "json.html").exists() else None
    print("\n| parser worker | in process ms | through the worker ms | overhead ms |\n|---|---:|---:|---:|")
    with ParserPool(workers=1) as pool:
        started = time.perf_counter()
        pool.parse_bytes(Path("warm.txt"), "warm.txt", small)
        start_up = time.perf_counter() - started
        for label, name, data in (("small .txt (60 B)", "a.txt", small), ("the seed article (.txt, 7 KB)", "a.txt", article),
                                  ("json.html (190 KB)", "json.html", page)):
            if data is None:
                continue
            local = statistics.median(_time(lambda d=data, n=name: parse_bytes(Path(n), n, d)) for _ in range(30))
            remote = statistics.median(_time(lambda d=data, n=name: pool.parse_bytes(Path(n), n, d)) for _ in range(30))
            print(f"| {label} | {local * 1000:.2f} | {remote * 1000:.2f} | {(remote - local) * 1000:.2f} |")
    print(f"| worker start-up (paid once per worker) | - | {start_up * 1000:.0f} | - |")

    if pages:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            items = []
            for index, (path, data) in enumerate(pages):
                target = folder / f"{index:04d}-{path.name}"
                target.write_bytes(data)
                items.append((target, target.name))
            from qa.ingest.documents import read_file

            mb = sum(len(d) for _, d in pages) / 1e6
            started = time.perf_counter()
            for target, doc_id in items:
                read_file(target, doc_id)
            in_process = time.perf_counter() - started
            print(f"\n| folder of {len(items)} HTML pages ({mb:.1f} MB) | seconds | MB/s |\n|---|---:|---:|")
            print(f"| in process, one after the other | {in_process:.2f} | {mb / in_process:.2f} |")
            for workers in (1, 2):
                with ParserPool(workers=workers) as pool:
                    started = time.perf_counter()
                    results = list(pool.parse_files(items))
                    elapsed = time.perf_counter() - started
                assert len(results) == len(items)
                print(f"| `ParserPool({workers} worker{'s' if workers > 1 else ''}).parse_files` (start-up included) | {elapsed:.2f} | {mb / elapsed:.2f} |")


def _time(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
