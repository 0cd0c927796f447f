"""``qa sources``: every file a collection knows, with its state and why (read from disk)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from qa.cli.common import CollectionOption, make_settings


class StateChoice(str, Enum):
    """The states a source can be in."""

    indexed = "indexed"
    unchanged = "unchanged"
    skipped = "skipped"
    failed = "failed"


def sources(
    collection: CollectionOption = None,
    state: Annotated[
        StateChoice | None, typer.Option("--state", help="list only sources in this state")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """List every source of a collection: indexed, unchanged, skipped or failed (failures
    first), with the reason, passages and when it was last checked and changed."""
    from qa.store.status import collection_sources

    settings = make_settings(collection=collection)
    name, generation, records = collection_sources(
        settings, None, state.value if state is not None else None
    )
    if as_json:
        rows = [r.model_dump() for r in records]
        typer.echo(
            json.dumps({"collection": name, "generation": generation, "sources": rows}, indent=2)
        )
        return
    typer.echo(f"collection {name!r} at {generation}: {len(records)} sources")
    for r in records:
        when = (r.changed_at or "-").replace("T", " ").rstrip("Z")
        line = f"{r.state:<9} {r.passages:>5}  {when:<19}  {r.source}"
        typer.echo(line + (f"  ({r.reason})" if r.reason else ""))
