"""``qa eval``: measure retrieval on a dataset, write reports, and gate on a baseline.

Exit status: 0 when the run finished (and passed the gate), 1 when a headline metric fell
by more than ``--max-drop`` against ``--baseline``, 2 on a usage or dataset error.
Heavy imports happen inside the command so ``qa --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

EXIT_REGRESSION = 1
EXIT_ERROR = 2


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _retrievers(values: list[str] | None) -> list[str]:
    from qa.evaluation import DEFAULT_RETRIEVER, RETRIEVERS

    names: list[str] = []
    for value in values or [DEFAULT_RETRIEVER]:
        for name in value.split(","):
            name = name.strip().lower()
            if name and name not in names:
                names.append(name)
    unknown = [n for n in names if n not in RETRIEVERS]
    if unknown:
        _fail(f"unknown retriever {unknown[0]!r}; choose from {', '.join(RETRIEVERS)}")
    return names or [DEFAULT_RETRIEVER]


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"could not write {path}: {exc.strerror or exc}")


def eval_command(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) or a question .jsonl file",
            show_default=False,
        ),
    ],
    split: Annotated[str, typer.Option("--split", help="qrels split of a BEIR folder")] = "test",
    collection_cache: Annotated[
        Path | None,
        typer.Option(
            "--collection-cache",
            help="index folder holding the dataset's collection, built once and reused while the "
            "corpus, model and passage settings are unchanged (default: the index folder, QA_INDEX_DIR)",
        ),
    ] = None,
    retriever: Annotated[
        list[str] | None,
        typer.Option(
            "--retriever",
            "-r",
            help="dense, bm25 or hybrid; repeat (or comma-separate) to compare side by side [default: dense]",
        ),
    ] = None,
    top_k: Annotated[
        int, typer.Option("--top-k", min=1, max=1000, help="results ranked per question")
    ] = 100,
    out: Annotated[Path | None, typer.Option("--out", help="write the JSON report here")] = None,
    markdown_out: Annotated[
        Path | None,
        typer.Option("--markdown", help="write the Markdown report (tables, failed queries) here"),
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="an earlier JSON report to gate against")
    ] = None,
    max_drop: Annotated[
        float,
        typer.Option(
            "--max-drop", min=0.0, help="largest allowed absolute fall of any headline metric"
        ),
    ] = 0.01,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="evaluate only the first N questions")
    ] = None,
    corpus: Annotated[
        list[Path] | None,
        typer.Option(
            "--corpus",
            help="documents for a question .jsonl (default: the bundled corpus, QA_CORPUS_DIR)",
        ),
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection", "-c", help="search this existing collection instead of building one"
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="sentence-transformers model folder (env QA_MODEL)"),
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="progress bars")
    ] = True,
) -> None:
    """Measure retrieval quality (nDCG@10, MRR@10, Recall@k, MAP@100), latency and abstention."""
    from qa.evaluation import (
        BaselineError,
        DatasetError,
        bundle,
        compare,
        evaluate,
        load_baseline,
        load_dataset,
        markdown,
        summary_lines,
    )

    names = _retrievers(retriever)
    old = None
    if baseline is not None:
        try:
            old = load_baseline(baseline)
        except BaselineError as exc:
            _fail(str(exc))
    settings = _settings(collection_cache, model)
    try:
        data = load_dataset(
            dataset,
            split,
            corpus=corpus,
            collection=collection,
            default_corpus=settings.corpus_dir,
            limit=limit,
        )
    except DatasetError as exc:
        _fail(str(exc))

    from qa.encoding.embedder import ModelError
    from qa.service import QAService
    from qa.store.collection import StoreError

    try:
        service = QAService(settings)
        service.embedder.identity  # noqa: B018 - fail early on a bad model folder
        reports = evaluate(service, data, names, top_k, progress=progress)
    except DatasetError as exc:
        _fail(str(exc))
    except (ModelError, StoreError) as exc:  # UnknownCollection is a StoreError
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", 130)

    for line in summary_lines(reports):
        typer.echo(line)
    if out is not None:
        _write(out, json.dumps(bundle(reports), indent=2, ensure_ascii=False) + "\n")
        typer.echo(f"JSON report: {out}", err=True)
    if markdown_out is not None:
        _write(markdown_out, markdown(reports))
        typer.echo(f"Markdown report: {markdown_out}", err=True)

    if old is not None:
        try:
            regressions, notes = compare(old, reports, max_drop)
        except BaselineError as exc:
            _fail(f"{baseline}: {exc}")
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        if regressions:
            for regression in regressions:
                typer.echo(f"REGRESSION {regression} (allowed: {max_drop:.4f})", err=True)
            raise typer.Exit(EXIT_REGRESSION)
        typer.echo(
            f"gate passed: no headline metric fell by more than {max_drop:.4f} against {baseline}",
            err=True,
        )


def _settings(collection_cache: Path | None, model: str | None):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from qa.config import Settings

    overrides = {
        k: v for k, v in {"index_dir": collection_cache, "model": model}.items() if v is not None
    }
    try:
        base = Settings()
        return Settings(**{**base.model_dump(), **overrides}) if overrides else base
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        _fail(f"invalid setting: {problems}")


def main(argv: list[str] | None = None) -> None:
    """Run ``eval_command`` as a program of its own (``scripts/evaluate.py``)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("sentence_transformers", "transformers", "httpx", "faiss", "bm25s", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(context_settings={"help_option_names": ["-h", "--help"]})(eval_command)
    app(args=argv, prog_name="evaluate.py")
