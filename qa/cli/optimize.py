"""``qa optimize``: merge a collection's segments (by the size-tiered policy, or all into one)."""

from __future__ import annotations

from typing import Annotated

import typer

from qa.cli.common import CollectionOption, make_settings


def optimize(
    collection: CollectionOption = None,
    full: Annotated[
        bool,
        typer.Option("--full", help="merge every segment into one and drop deleted rows"),
    ] = False,
) -> None:
    """Merge small segments into bigger ones (readers keep answering meanwhile)."""
    from qa.service import QAService

    settings = make_settings(collection=collection)
    report = QAService(settings).optimize(settings.collection, everything=full)
    state = f"now at {report.generation}" if report.merges else "already in shape"
    typer.echo(f"collection {settings.collection!r} {state}: {report.summary()}")
