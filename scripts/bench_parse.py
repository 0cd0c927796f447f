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
import functools
import importlib.util
import multiprocessing
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Literal

from harness import ROOT, SEED_CORPUS, make_parser, table, table_head, table_row, timed

DOCS = Path("/usr/share/doc/python3.11/html")
READERS = ("qa/ingest/readers.py", "qa/ingest/documents.py", "qa/documents.py")
SENTENCES = ("qa/ingest/sentences.py", "qa/sentences.py")
# The old HTML code is quadratic on long pages (contents.html, 2.6 MB, ran for minutes):
# "before" is measured on the pages under 300 KB; the big ones are among the worst cases.
SMALL_PAGE = 300_000
Version = Literal["new", "old"]
Files = list[tuple[Path, bytes]]


@functools.cache
def _old_module(ref: str, path: str) -> ModuleType | None:
    """The file at ``path`` as of ``ref``, loaded under another name (None if absent)."""
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    file = Path(tempfile.mkdtemp(prefix="bench-parse-old-")) / f"old_{Path(path).stem}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(file.stem, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[file.stem] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:  # it needs code that is gone: no comparison
        print(f"note: {path} at {ref} no longer imports ({exc})", file=sys.stderr)
        return None
    return module


def function(version: Version, ref: str, name: str) -> Callable[..., object] | None:
    """A parsing function (``parse_bytes``, ``html_to_text``, ``read_markdown``, ``read_pdf``,
    ``sentence_spans``) of the current code, or of ``ref``'s wherever it lived then."""
    if version == "new":
        import qa.ingest.readers
        import qa.ingest.sentences

        module = qa.ingest.sentences if name == "sentence_spans" else qa.ingest.readers
        return getattr(module, name)  # type: ignore[no-any-return]
    for path in SENTENCES if name == "sentence_spans" else READERS:
        module = _old_module(ref, path)
        if module is not None and hasattr(module, name):
            return getattr(module, name)  # type: ignore[no-any-return]
    return None


def seconds_capped(
    version: Version, ref: str, name: str, args: tuple[object, ...], cap: float
) -> float | None:
    """Seconds ``name(*args)`` takes in a fresh process, or None when stopped after ``cap``."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_run_once, args=(version, ref, name, args, out))
    process.start()
    try:
        elapsed = out.get(
            timeout=cap + 60
        )  # includes the child's start-up; it reports its own time
    except queue.Empty:
        elapsed = None
    if process.is_alive():
        process.kill()
    process.join()
    return elapsed if elapsed is not None and elapsed <= cap else None


def _run_once(
    version: Version,
    ref: str,
    name: str,
    args: tuple[object, ...],
    out: multiprocessing.Queue[float],
) -> None:
    call = function(version, ref, name)
    assert call is not None
    for module in ("bs4", "lxml.etree", "pypdf", "qa.ingest.html"):  # imported lazily: not timed
        with contextlib.suppress(ImportError):
            __import__(module)
    out.put(timed(lambda: call(*args))[1])


def html_pages(folder: Path, limit: int | None) -> Files:
    pages = sorted(folder.rglob("*.html"))[:limit] if folder.is_dir() else []
    return [(page, page.read_bytes()) for page in pages]


def text_files(limit: int | None) -> Files:
    files = sorted((DOCS / "_sources").rglob("*.txt")) if (DOCS / "_sources").is_dir() else []
    files += sorted(SEED_CORPUS.glob("*.txt"))
    return [(path.with_suffix(".txt"), path.read_bytes()) for path in files[:limit]]


def pdf_from_text(texts: list[bytes], pages: int) -> bytes:
    from tests.ingest.pdf_fixtures import text_pdf

    lines: list[str] = []
    for data in texts:
        lines += [
            line[:95] for line in data.decode("utf-8", "replace").splitlines() if line.strip()
        ]
        if len(lines) >= pages * 50:
            break
    return text_pdf([lines[i : i + 50] for i in range(0, min(len(lines), pages * 50), 50)])


def throughput(parse: Callable[[Path, str, bytes], object], files: Files) -> tuple[float, float]:
    """(MB, seconds) to parse every file once (skips count: they are parsed too)."""
    from qa.ingest import Skip

    def parse_all() -> None:
        for path, data in files:
            with contextlib.suppress(Skip):
                parse(path, path.name, data)

    return sum(len(data) for _, data in files) / 1e6, timed(parse_all)[1]


def fmt_rate(mb: float, seconds: float | None) -> str:
    return "-" if seconds is None else f"{mb / seconds:.2f}"


def fmt_seconds(seconds: float | None, cap: float) -> str:
    if seconds is None:
        return f"> {cap:g} (stopped)"
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def fmt_size(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"


def throughput_table(args: argparse.Namespace, pages: Files, texts: Files, old: bool) -> list[str]:
    """MB/s per format and of sentence splitting, before and after."""
    new_parse = function("new", args.old_ref, "parse_bytes")
    old_parse = function("old", args.old_ref, "parse_bytes") if old else None
    assert new_parse is not None
    pdf = pdf_from_text([data for _, data in texts], 40 if args.quick else 400)
    warm = [
        (Path("w.html"), b"<p>x</p>"),
        (Path("w.txt"), b"x\n\ny\n"),
        (Path("w.pdf"), pdf_from_text([b"x"], 1)),
    ]
    for parse in (new_parse, old_parse):  # the parsers are imported on first use: not timed
        if parse is not None:
            throughput(parse, warm)
    small_pages = [(path, data) for path, data in pages if len(data) < SMALL_PAGE]
    rows = []
    for label, files, compare in (
        (f"HTML, pages under 300 KB ({args.html_dir})", small_pages, True),
        ("HTML, all pages", pages, False),
        ("plain text (docs' `_sources`, corpus)", texts, True),
        ("PDF (pages of the same text, Helvetica)", [(Path("docs.pdf"), pdf)], True),
    ):
        if not files:
            continue
        mb, new_s = throughput(new_parse, files)
        old_s = throughput(old_parse, files)[1] if old_parse and compare else None
        rows.append(
            (label, f"{len(files):,} files, {mb:.1f} MB", fmt_rate(mb, old_s), fmt_rate(mb, new_s))
        )
    joined = "\n\n".join(d.decode("utf-8", "replace") for _, d in texts)
    text_mb = sum(len(d) for _, d in texts) / 1e6
    new_split = function("new", args.old_ref, "sentence_spans")
    old_split = function("old", args.old_ref, "sentence_spans") if old else None
    assert new_split is not None
    new_s = timed(lambda: new_split(joined))[1]
    old_s = timed(lambda: old_split(joined))[1] if old_split else None
    rows.append(
        (
            "sentence splitting (the text files)",
            f"{text_mb:.1f} MB",
            fmt_rate(text_mb, old_s),
            fmt_rate(text_mb, new_s),
        )
    )
    return table(["input", "size", "before MB/s", "after MB/s"], rows, "llrr")


def worst_cases(args: argparse.Namespace) -> list[tuple[str, str, tuple[object, ...], int]]:
    """(label, function, arguments, input size) of each worst case."""
    from tests.ingest.pdf_fixtures import shared_stream_pdf

    scale = 1 if args.quick else 4
    nested = "<div>" * (55_000 * scale) + "x" + "</div>" * (55_000 * scale)  # 1.1 MB at full scale
    front = "---\ntitle: a" + " " * 20_000 + "b\n---\nbody\n"
    cases: list[tuple[str, str, tuple[object, ...], int]] = [
        ("sibling `<p></p>`", "html_to_text", ("<p></p>" * 4_000,), 28_000),
        ("sibling `<p></p>`", "html_to_text", ("<p></p>" * 8_000,), 56_000),
        ("nested `<div>`", "html_to_text", (nested,), len(nested)),
        (
            "`<b>` then unmatched `</i>`",
            "html_to_text",
            ("<b>" * 20_000 + "</i>" * 20_000,),
            140_000,
        ),
        ("run of dots", "sentence_spans", ("a" + "." * 20_000 + "x",), 20_002),
        (
            "dots then closing quotes",
            "sentence_spans",
            ("a" + "?" * 10_000 + "\u201d" * 10_000 + "x",),
            20_002,
        ),
        (
            "front matter title, 20k spaces",
            "read_markdown",
            (Path("a.md"), "a.md", front.encode()),
            len(front),
        ),
    ]
    for name in ("contents.html", "genindex-all.html"):
        if (args.html_dir / name).exists() and not args.quick:
            page = (args.html_dir / name).read_text(encoding="utf-8")
            cases.append((f"Python docs `{name}`", "html_to_text", (page,), len(page.encode())))
    shared = shared_stream_pdf(50, 2_000)
    cases.append(
        (
            "PDF: 50 pages share one stream",
            "read_pdf",
            (Path("s.pdf"), "s.pdf", shared),
            len(shared),
        )
    )
    return cases


def worst_case_table(args: argparse.Namespace, old: bool) -> list[str]:
    """Seconds of each worst case, before (stopped after ``--cap``) and after."""
    from qa.ingest import Skip
    from qa.ingest.parsing import ParserPool
    from tests.ingest.pdf_fixtures import shared_stream_pdf

    lines = table_head(["worst case", "input", "before s", "after s"], "lrrr")
    for label, name, call_args, size in worst_cases(args):
        after = seconds_capped("new", args.old_ref, name, call_args, args.cap)
        before = seconds_capped("old", args.old_ref, name, call_args, args.cap) if old else None
        shown = fmt_seconds(before, args.cap) if old else "-"
        lines.append(table_row([label, fmt_size(size), shown, fmt_seconds(after, args.cap)]))
    distinct = shared_stream_pdf(20, 3_000, distinct_resources=True)
    with ParserPool(timeout_s=30) as pool:
        started = time.perf_counter()
        with contextlib.suppress(Skip):  # over the budget: reported by its time
            pool.parse_bytes(Path("d.pdf"), "d.pdf", distinct)
        label = "PDF: 20 pages share a stream, each its own resources (under the 30 s budget)"
        seconds = f"{time.perf_counter() - started:.1f}"
        lines.append(table_row([label, f"{len(distinct) / 1e3:.0f} KB", "-", seconds]))
    return lines


def worker_table(args: argparse.Namespace) -> list[str]:
    """One file parsed in process and through a worker (medians of 30), and start-up."""
    from qa.ingest import parse_bytes
    from qa.ingest.parsing import ParserPool

    small = b"A small note\n\nOne paragraph of text, as short as a file gets.\n"
    article = (SEED_CORPUS / "songjiang-g60-innovation-corridor.txt").read_bytes()
    json_page = args.html_dir / "library" / "json.html"
    page = json_page.read_bytes() if json_page.exists() else None
    columns = ["parser worker", "in process ms", "through the worker ms", "overhead ms"]
    lines = table_head(columns, "lrrr")
    with ParserPool(workers=1) as pool:
        start_up = timed(lambda: pool.parse_bytes(Path("warm.txt"), "warm.txt", small))[1]
        for label, name, data in (
            ("small .txt (60 B)", "a.txt", small),
            ("the seed article (.txt, 7 KB)", "a.txt", article),
            ("json.html (190 KB)", "json.html", page),
        ):
            if data is None:
                continue
            here = statistics.median(
                timed(lambda d=data, n=name: parse_bytes(Path(n), n, d))[1] for _ in range(30)
            )
            there = statistics.median(
                timed(lambda d=data, n=name: pool.parse_bytes(Path(n), n, d))[1] for _ in range(30)
            )
            lines.append(
                table_row(
                    [
                        label,
                        f"{here * 1000:.2f}",
                        f"{there * 1000:.2f}",
                        f"{(there - here) * 1000:.2f}",
                    ]
                )
            )
    lines.append(
        table_row(["worker start-up (paid once per worker)", "-", f"{start_up * 1000:.0f}", "-"])
    )
    return lines


def folder_table(pages: Files) -> list[str]:
    """A folder of HTML pages parsed in process, then by one and by two workers."""
    from qa.ingest import read_file
    from qa.ingest.parsing import ParserPool

    mb = sum(len(d) for _, d in pages) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for index, (path, data) in enumerate(pages):
            target = Path(tmp) / f"{index:04d}-{path.name}"
            target.write_bytes(data)
            items.append((target, target.name))
        in_process = timed(lambda: [read_file(target, doc_id) for target, doc_id in items])[1]
        lines = table_head(
            [f"folder of {len(items)} HTML pages ({mb:.1f} MB)", "seconds", "MB/s"], "lrr"
        )
        lines.append(
            table_row(
                ["in process, one after the other", f"{in_process:.2f}", f"{mb / in_process:.2f}"]
            )
        )
        for workers in (1, 2):
            with ParserPool(workers=workers) as pool:
                results, elapsed = timed(lambda pool=pool: list(pool.parse_files(items)))
            assert len(results) == len(items)
            name = f"`ParserPool({workers} worker{'s' if workers > 1 else ''}).parse_files` (start-up included)"
            lines.append(table_row([name, f"{elapsed:.2f}", f"{mb / elapsed:.2f}"]))
    return lines


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--html-dir", type=Path, default=DOCS)
    parser.add_argument(
        "--old-ref", default="HEAD", help="git revision of the code to compare with"
    )
    parser.add_argument("--no-old", action="store_true", help="measure the current code only")
    parser.add_argument(
        "--cap", type=float, default=60.0, help="seconds after which an old worst case is stopped"
    )
    parser.add_argument("--quick", action="store_true", help="fewer pages and smaller worst cases")
    args = parser.parse_args()

    wanted = ("parse_bytes", "sentence_spans")
    old = not args.no_old and all(function("old", args.old_ref, name) for name in wanted)
    limit = 60 if args.quick else None
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; 'before' = {args.old_ref if old else 'n/a'}\n"
    )
    pages = html_pages(args.html_dir, limit)
    print("\n".join(throughput_table(args, pages, text_files(limit), old)))
    print("\n" + "\n".join(worst_case_table(args, old)))
    print("\n" + "\n".join(worker_table(args)))
    if pages:
        print("\n" + "\n".join(folder_table(pages)))


if __name__ == "__main__":
    main()
