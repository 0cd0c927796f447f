"""The ``qa`` command: a thin shell over the library (index, ask, serve, eval, collections)."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from qa.config import Settings

app = typer.Typer(
    name="qa",
    help="Question answering over your own documents, with exact citations.\n\n"
    "Index a folder with `qa index PATH`, ask with `qa ask \"QUESTION\"`, serve the web "
    "chat and HTTP API with `qa serve`, measure with `qa eval DATASET`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="sentence-transformers model folder (default: bundled all-MiniLM-L6-v2; env QA_MODEL)"),
]
CollectionOption = Annotated[
    str | None, typer.Option("--collection", "-c", help="collection name (default: 'default'; env QA_COLLECTION)")
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def make_settings(**overrides: Any) -> Settings:
    """Settings from the environment with the given CLI flags (those not ``None``) on top."""
    from pydantic import ValidationError

    try:
        base = Settings()
        values = {k: v for k, v in overrides.items() if v is not None}
        return Settings(**{**base.model_dump(), **values}) if values else base
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        fail(f"invalid setting: {problems}")


def _service(settings: Settings) -> Any:
    from qa.encoding.embedder import ModelError
    from qa.service import QAService

    try:
        service = QAService(settings)
        service.embedder.identity  # noqa: B018 - fail early on a bad model folder
        return service
    except ModelError as exc:
        fail(str(exc))


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log each step")] = False,
) -> None:
    """Configure logging for every command."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s" if not verbose else "%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("sentence_transformers", "transformers", "httpx", "faiss", "bm25s", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --------------------------------------------------------------------------- index


@app.command()
def index(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="files or folders (.txt .md .html .pdf, BEIR corpus.jsonl); "
        "default: the folders the collection was last indexed from"),
    ] = None,
    collection: CollectionOption = None,
    full: Annotated[bool, typer.Option("--full", help="rebuild everything instead of updating")] = False,
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links",
            help="also follow symbolic links that point outside the folder (off: they are skipped, "
            "so a link can't publish a private file); remembered for later re-indexing",
        ),
    ] = False,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Index documents into a collection (incremental: only new and changed files are embedded)."""
    from qa.store.collection import BusyError, StoreError, current_generation

    settings = make_settings(collection=collection, model=model)
    name = settings.collection
    if not paths:
        paths = _recorded_sources(settings)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}")
    service = _service(settings)
    try:
        report = service.index(paths, name, full=full, progress=True, follow_links=follow_links)
    except BusyError as exc:
        fail(str(exc), 1)
    except StoreError as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        live = current_generation(settings.collection_dir(name))
        fail(f"interrupted; the partial build is discarded, collection {name!r} stays at {live or 'nothing'}", 130)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    state = "unchanged" if not report.changed and not report.full_rebuild else f"now at {report.generation}"
    typer.echo(f"collection {name!r} {state}: {report.summary()}", err=as_json)
    if report.documents == 0:
        raise typer.Exit(1)


def _recorded_sources(settings: Settings) -> list[Path]:
    import json as _json

    from qa.store.collection import MANIFEST, current_generation

    directory = settings.collection_dir()
    live = current_generation(directory)
    if live:
        manifest = _json.loads((directory / live / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("sources"):
            return [Path(p) for p in manifest["sources"]]
    if settings.collection == "default":
        return [settings.corpus_dir]
    fail(f"give the files or folders to index into collection {settings.collection!r}")


# --------------------------------------------------------------------------- ask


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question, in quotes")],
    collection: CollectionOption = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="passages to return")] = 5,
    retriever: Annotated[
        str | None, typer.Option("--retriever", help="hybrid (default), dense or bm25")
    ] = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the reply as JSON")] = False,
) -> None:
    """Ask a question: the best passages with their citations and the answering sentence."""
    from qa.service import UnknownCollection
    from qa.store.collection import StoreError

    if not question.strip():
        fail("the question is empty")
    settings = make_settings(collection=collection, model=model, retriever=retriever)
    service = _service(settings)
    try:
        if settings.collection == "default":
            service.ensure_default(progress=True)
        reply = service.ask(question, top_k=top_k)
    except UnknownCollection as exc:
        fail(str(exc))
    except StoreError as exc:
        fail(str(exc), 1)
    if as_json:
        typer.echo(json.dumps(reply.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(_format_reply(reply))


def _format_reply(reply: Any) -> str:
    lines = [f"Question: {reply.query}"]
    if reply.answer:
        rank = next((p.rank for p in reply.passages if p.passage_id == reply.answer.passage_id), 1)
        lines.append(f"Answer:   {reply.answer.text} [{rank}]")
    elif reply.passages:
        lines.append("Answer:   the documents don't answer this; the nearest passages are below.")
    else:
        lines.append("Answer:   nothing in the collection matches.")
    for passage in reply.passages:
        c = passage.citation
        page = f", page {c.page}" if c.page else ""
        lines += [
            "",
            f"[{passage.rank}] score {passage.score:.3f}  {c.title} (paragraph {c.paragraph}{page})",
            f"    {c.source}  chars {c.char_start}-{c.char_end}",
            textwrap.fill(passage.text, width=100, initial_indent="    ", subsequent_indent="    "),
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- serve


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (env QA_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (env QA_PORT)")] = None,
    collection: CollectionOption = None,
    model: ModelOption = None,
) -> None:
    """Serve the chat page, the embeddable widget and the HTTP API (builds the default index if needed)."""
    from qa.http.server import run

    settings = make_settings(host=host, port=port, collection=collection, model=model)
    code = run(settings)
    raise typer.Exit(code)


# --------------------------------------------------------------------------- collections


@app.command()
def collections(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """List the indexed collections with their counts and model."""
    from qa.store.collection import MANIFEST, current_generation, list_collections

    settings = make_settings()
    rows = []
    for name in list_collections(settings.index_dir):
        directory = settings.index_dir / name
        manifest = json.loads((directory / str(current_generation(directory)) / MANIFEST).read_text())
        rows.append(
            {
                "name": name,
                "generation": manifest["generation"],
                "documents": manifest["counts"]["documents"],
                "passages": manifest["counts"]["passages"],
                "model": manifest["model"]["name"],
                "created_at": manifest["created_at"],
                "sources": manifest.get("sources", []),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo(f"no collections in {settings.index_dir}; create one with `qa index PATH`")
    for row in rows if not as_json else []:
        typer.echo(
            f"{row['name']:<20} {row['documents']:>7} documents {row['passages']:>8} passages  "
            f"{row['model']}  built {row['created_at']} ({row['generation']})"
        )
        for source in row["sources"]:
            typer.echo(f"{'':<20} from {source}")


from qa.cli.eval import eval_command

app.command("eval")(eval_command)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
