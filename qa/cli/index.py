"""``qa index``: index files and folders into a collection (incremental)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qa.cli.common import CollectionOption, Interrupted, ModelOption, make_settings, open_service
from qa.config import Settings
from qa.errors import InvalidInput
from qa.ingest.web.urls import is_url

if TYPE_CHECKING:
    from qa.service import QAService
    from qa.store import IndexReport
    from qa.store.manifest import SourceOptions


class Engine(str, Enum):
    """Where files are parsed and passages embedded."""

    local = "local"
    ray = "ray"


PathsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="files or folders (.txt .md .html .pdf, BEIR corpus.jsonl), or one website's "
        "address (https://docs.example.com/guide/: crawled, see the README); "
        "default: what the collection was last indexed from"
    ),
]
FollowLinksOption = Annotated[
    bool,
    typer.Option(
        "--follow-links",
        help="also follow symbolic links that point outside the folder (off: they are skipped, "
        "so a link can't publish a private file); remembered for later re-indexing",
    ),
]
IncludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--include",
        help="index only files matching this glob (gitignore syntax, relative to the folder: "
        "'*.md', 'docs/**'); repeatable; remembered for later re-indexing",
    ),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        help="leave out files and folders matching this glob ('drafts/', '*.tmp'); repeatable; "
        "remembered. A .qaignore file (gitignore syntax) in an indexed folder is also honoured",
    ),
]
GateOption = Annotated[
    Path | None,
    typer.Option(
        "--gate",
        help="labelled questions (.jsonl): refuse to switch to the new generation when they "
        "score worse on it than on the live one by more than --max-drop",
    ),
]
MaxDropOption = Annotated[
    float, typer.Option("--max-drop", min=0.0, help="largest allowed fall of nDCG@10 (--gate)")
]
SyncEveryOption = Annotated[
    str | None,
    typer.Option(
        "--sync-every",
        help="a website: re-sync it this often while qa serve runs (90s, 30m, 6h, 1d; 0: "
        "drop its own schedule); kept with the collection",
    ),
]
EngineOption = Annotated[
    Engine,
    typer.Option(
        help="local, or ray: parse and embed with Ray Data on RAY_ADDRESS's cluster "
        "(a local Ray runtime without it); needs pip install -e '.[ray]'"
    ),
]


def index(
    paths: PathsArgument = None,
    collection: CollectionOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="rebuild everything instead of updating")
    ] = False,
    follow_links: FollowLinksOption = False,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    gate: GateOption = None,
    max_drop: MaxDropOption = 0.02,
    engine: EngineOption = Engine.local,
    sync_every: SyncEveryOption = None,
) -> None:
    """Index documents into a collection (incremental: only new and changed files are embedded)."""
    from qa.store import current_generation

    settings = make_settings(collection=collection, model=model)
    if engine is Engine.ray:
        from qa.store.ray_engine import require_ray

        require_ray()  # a one-line error before anything is read
    name = settings.collection
    recorded = not paths
    given = paths or _recorded_sources(settings)
    if any(is_url(source) for source in given):
        patterns = bool(include or exclude)
        unused = [
            flag for flag, on in _FOR_FOLDERS.items() if on(gate, engine, follow_links, patterns)
        ]
        _index_site(settings, given, full, as_json, unused, _interval(sync_every))
        return
    if sync_every is not None:
        raise InvalidInput("--sync-every applies to a website, not to files and folders")
    folders = [Path(p) for p in given]
    options = _options(settings, folders, follow_links, include, exclude, recorded)
    missing = [str(p) for p in folders if not p.exists()]
    if missing:
        raise InvalidInput(f"no such file or folder: {', '.join(missing)}")
    service = open_service(settings)
    try:
        if gate is None:
            flags = {"full": full, "progress": True, "engine": engine.value}
            report = service.index(folders, name, options=options, **flags)
        else:
            report = _gated(service, folders, name, gate, max_drop, options, full=full)
    except KeyboardInterrupt:
        live = current_generation(settings.collection_dir(name)) or "nothing"
        raise Interrupted(
            f"interrupted; the partial build is discarded, collection {name!r} stays at {live}"
        ) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    changed = report.changed or report.full_rebuild
    state = f"now at {report.generation}" if changed else "unchanged"
    typer.echo(f"collection {name!r} {state}: {report.summary()}", err=as_json)
    if report.documents == 0:
        raise typer.Exit(1)


# options that have no meaning for a website, and how to tell they were given
_FOR_FOLDERS = {
    "--gate": lambda gate, engine, follow, patterns: gate is not None,
    "--engine ray": lambda gate, engine, follow, patterns: engine is Engine.ray,
    "--follow-links": lambda gate, engine, follow, patterns: follow,
    "--include/--exclude": lambda gate, engine, follow, patterns: patterns,
}


def _interval(value: str | None) -> float | None:
    """``--sync-every`` in seconds (``None``: not given)."""
    from qa.config import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value) or 0.0
    except ValueError as exc:
        raise InvalidInput(f"--sync-every: {exc}") from None


def _index_site(
    settings: Settings,
    given: list[str],
    full: bool,
    as_json: bool,
    unused: list[str],
    every: float | None = None,
) -> None:
    """``qa index URL``: crawl one website into the collection (a re-sync when it exists)."""
    if len(given) != 1:
        raise InvalidInput("give one website address, without files or folders beside it")
    if unused:
        raise InvalidInput(f"{', '.join(unused)} applies to files and folders, not a website")
    service = open_service(settings)
    try:
        report = service.sync_site(
            given[0], settings.collection, full=full, progress=True, every=every
        )
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; collection {settings.collection!r} is unchanged") from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    state = f"now at {report.generation}" if report.changed else "unchanged"
    typer.echo(f"collection {settings.collection!r} {state}: {report.summary()}", err=as_json)


def _recorded_sources(settings: Settings) -> list[str]:
    """What the collection was last indexed from: its folders or its website (the bundled
    corpus for a new default collection)."""
    from qa.store import current_generation, read_manifest

    directory = settings.collection_dir()
    if current_generation(directory) is not None:
        sources = read_manifest(directory).sources
        if sources:
            return list(sources)
    if settings.collection == "default":
        return [str(settings.corpus_dir)]
    raise InvalidInput(
        f"give the files or folders to index into collection {settings.collection!r}"
    )


def _options(
    settings: Settings,
    paths: list[Path],
    follow_links: bool,
    include: list[str] | None,
    exclude: list[str] | None,
    recorded: bool,
) -> SourceOptions:
    """Which files go in: the patterns given, or (none given, re-indexing the folders the
    collection was built from) the patterns it was built with, so re-running the same
    command never drops an --exclude; other folders start without."""
    from qa.ingest.selection import Selection
    from qa.store import current_generation, read_manifest
    from qa.store.manifest import SourceOptions

    try:
        Selection.of(include or (), exclude or ())
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    directory = settings.collection_dir()
    if include is None and exclude is None and current_generation(directory):
        manifest = read_manifest(directory)
        folders = sorted(str(p.expanduser().resolve()) for p in paths)
        if recorded or folders == sorted(manifest.sources):
            before = manifest.source_options  # --follow-links as before: remembered by reindex
            follow = follow_links or (recorded and before.follow_links)
            return before.model_copy(update={"follow_links": follow})
    return SourceOptions(follow_links=follow_links, include=include or [], exclude=exclude or [])


def _gated(
    service: QAService,
    paths: list[Path],
    name: str,
    gate: Path,
    max_drop: float,
    options: SourceOptions,
    **flags: bool,
) -> IndexReport:
    """Index through the gate; the comparison is printed either way."""
    from qa.evaluation import load_dataset
    from qa.evaluation.index_gate import index_with_gate

    dataset = load_dataset(gate, collection=name)
    report, result = index_with_gate(
        service,
        paths,
        name,
        dataset,
        max_drop,
        full=flags["full"],
        progress=True,
        options=options,
    )
    typer.echo(str(result), err=True)
    return report
