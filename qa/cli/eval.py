"""``qa eval``: measure retrieval on a dataset, write reports, and gate on a baseline.

Exit status: 0 when the run finished (and passed the gate), 1 when a headline metric fell
by more than ``--max-drop`` against ``--baseline``, and otherwise the exit status of the
error met (2 for a usage, dataset or baseline error; see :mod:`qa.errors`).
Heavy imports happen inside the command so ``qa --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from qa.cli.common import Interrupted, make_settings, open_service
from qa.errors import USAGE, BaselineError, InvalidInput, QAError

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.evaluation import Dataset, Report
    from qa.evaluation.gate import Headline

EXIT_REGRESSION = 1

DatasetArgument = Annotated[
    Path,
    typer.Argument(
        help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) or a question .jsonl file",
        show_default=False,
    ),
]
SplitOption = Annotated[str, typer.Option("--split", help="qrels split of a BEIR folder")]
CollectionCacheOption = Annotated[
    Path | None,
    typer.Option(
        "--collection-cache",
        help="index folder holding the dataset's collection, built once and reused while the "
        "corpus, model and passage settings are unchanged (default: the index folder, QA_INDEX_DIR)",
    ),
]
RetrieverOption = Annotated[
    list[str] | None,
    typer.Option(
        "--retriever",
        "-r",
        help="dense, bm25 or hybrid; repeat (or comma-separate) to compare side by side "
        "(default: hybrid)",
    ),
]
TopKOption = Annotated[
    int, typer.Option("--top-k", min=1, max=1000, help="results ranked per question")
]
OutOption = Annotated[Path | None, typer.Option("--out", help="write the JSON report here")]
MarkdownOption = Annotated[
    Path | None,
    typer.Option("--markdown", help="write the Markdown report (tables, failed queries) here"),
]
BaselineOption = Annotated[
    Path | None, typer.Option("--baseline", help="an earlier JSON report to gate against")
]
MaxDropOption = Annotated[
    float,
    typer.Option(
        "--max-drop", min=0.0, help="largest allowed absolute fall of any headline metric"
    ),
]
LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="evaluate only the first N questions")
]
CorpusOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--corpus",
        help="documents for a question .jsonl (default: the bundled corpus, QA_CORPUS_DIR)",
    ),
]
CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection", "-c", help="search this existing collection instead of building one"
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="sentence-transformers model folder (env QA_MODEL)"),
]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="progress bars")]


def _fail(message: str, code: int) -> NoReturn:
    """One ``error:`` line, then exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def eval_command(
    dataset: DatasetArgument,
    split: SplitOption = "test",
    collection_cache: CollectionCacheOption = None,
    retriever: RetrieverOption = None,
    top_k: TopKOption = 100,
    out: OutOption = None,
    markdown_out: MarkdownOption = None,
    baseline: BaselineOption = None,
    max_drop: MaxDropOption = 0.01,
    limit: LimitOption = None,
    corpus: CorpusOption = None,
    collection: CollectionOption = None,
    model: ModelOption = None,
    progress: ProgressOption = True,
) -> None:
    """Measure retrieval quality (nDCG@10, MRR@10, Recall@k, MAP@100), latency and abstention."""
    from qa.evaluation import load_baseline, load_dataset

    try:
        names = _retrievers(retriever)
        baseline_runs = load_baseline(baseline) if baseline is not None else None
        settings = make_settings(index_dir=collection_cache, model=model)
        data = load_dataset(
            dataset,
            split,
            corpus=corpus,
            collection=collection,
            default_corpus=settings.corpus_dir,
            limit=limit,
        )
        reports = _evaluate(settings, data, names, top_k, progress)
        _write_reports(reports, out, markdown_out)
        if baseline_runs is not None and baseline is not None:
            _gate(baseline_runs, reports, baseline, max_drop)
    except QAError as exc:
        _fail(exc.message, exc.exit_code)


def _retrievers(values: list[str] | None) -> list[str]:
    """The retrievers asked for, in order, once each (``-r dense -r bm25`` or ``-r dense,bm25``)."""
    from qa.evaluation import DEFAULT_RETRIEVER, RETRIEVERS

    names: list[str] = []
    for value in values or [DEFAULT_RETRIEVER]:
        for name in value.split(","):
            name = name.strip().lower()
            if name and name not in names:
                names.append(name)
    unknown = [n for n in names if n not in RETRIEVERS]
    if unknown:
        raise InvalidInput(f"unknown retriever {unknown[0]!r}; choose from {', '.join(RETRIEVERS)}")
    return names or [DEFAULT_RETRIEVER]


def _evaluate(
    settings: Settings, data: Dataset, names: list[str], top_k: int, progress: bool
) -> list[Report]:
    """Every retriever's report; Ctrl-C ends the run with status 130."""
    from qa.evaluation import evaluate

    try:
        return evaluate(open_service(settings), data, names, top_k, progress=progress)
    except KeyboardInterrupt:
        raise Interrupted("interrupted") from None


def _write_reports(reports: list[Report], out: Path | None, markdown_out: Path | None) -> None:
    """The terminal summary, then the JSON and Markdown reports where asked."""
    from qa.evaluation import bundle, markdown, summary_lines

    for line in summary_lines(reports):
        typer.echo(line)
    if out is not None:
        data = bundle(reports).model_dump(mode="json")
        _write(out, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        typer.echo(f"JSON report: {out}", err=True)
    if markdown_out is not None:
        _write(markdown_out, markdown(reports))
        typer.echo(f"Markdown report: {markdown_out}", err=True)


def _write(path: Path, text: str) -> None:
    """Write a report file (and its folder); a failure is a usage error naming the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"could not write {path}: {exc.strerror or exc}", USAGE)


def _gate(
    baseline_runs: list[Headline], reports: list[Report], baseline: Path, max_drop: float
) -> None:
    """Notes and regressions against the baseline; exit status 1 on a regression."""
    from qa.evaluation import compare

    try:
        regressions, notes = compare(baseline_runs, reports, max_drop)
    except BaselineError as exc:
        raise BaselineError(f"{baseline}: {exc.message}") from None
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
