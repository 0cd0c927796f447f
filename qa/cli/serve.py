"""``qa serve``: the chat page, the widget and the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from qa.cli.common import CollectionOption, ModelOption, make_settings


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (env QA_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (env QA_PORT)")] = None,
    collection: CollectionOption = None,
    model: ModelOption = None,
) -> None:
    """Serve the chat page, the embeddable widget and the HTTP API (builds the default index if needed)."""
    from qa.http.server import run

    run(make_settings(host=host, port=port, collection=collection, model=model))
