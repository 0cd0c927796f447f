"""``qa serve``: the chat page, the widget and the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from qa.cli.common import CollectionOption, ModelOption, make_settings
from qa.cli.index import Engine
from qa.errors import InvalidInput


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (env QA_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (env QA_PORT)")] = None,
    collection: CollectionOption = None,
    model: ModelOption = None,
    engine: Annotated[
        Engine,
        typer.Option(help="local, or ray: replicas on Ray Serve (pip install -e '.[ray]')"),
    ] = Engine.local,
    replicas: Annotated[
        int, typer.Option(min=1, help="--engine ray: replicas, each with its own model")
    ] = 2,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="follow the folders every collection was built from: changes are indexed "
            "within seconds (env QA_WATCH)",
        ),
    ] = False,
    sync_every: Annotated[
        str | None,
        typer.Option(
            help="re-sync collections built from websites this often (90s, 30m, 6h, 1d; "
            "env QA_SYNC_EVERY)"
        ),
    ] = None,
) -> None:
    """Serve the chat page, the embeddable widget and the HTTP API (builds the default index if needed)."""
    settings = make_settings(
        host=host,
        port=port,
        collection=collection,
        model=model,
        watch=watch or None,
        sync_every=sync_every,
    )
    if engine is Engine.ray:
        if settings.watch:
            raise InvalidInput("--watch runs with the local engine only; run qa watch beside Ray")
        from qa.store.ray_engine import require_ray

        require_ray()  # a one-line error saying what to install
        from qa.http.ray_serve import run as run_on_ray

        run_on_ray(settings, replicas)
        return
    from qa.http.server import run

    run(settings)
