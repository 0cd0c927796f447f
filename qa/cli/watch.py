"""``qa watch``: follow the folders a collection was built from and index changes as they come."""

from __future__ import annotations

import signal
import time
from types import FrameType

import typer

from qa.cli.common import CollectionOption, ModelOption, make_settings, open_service
from qa.errors import InvalidInput, UnknownCollection


def watch(collection: CollectionOption = None, model: ModelOption = None) -> None:
    """Follow a collection's folders: files added, changed, renamed or deleted are indexed
    within seconds (debounced by QA_WATCH_DEBOUNCE_MS), until Ctrl+C."""
    from qa.store import current_generation, list_collections

    settings = make_settings(collection=collection, model=model)
    name = settings.collection
    if current_generation(settings.collection_dir(name)) is None:
        raise UnknownCollection(name, list_collections(settings.index_dir))
    service = open_service(settings)
    watchers = service.watch([name])
    if not watchers:
        raise InvalidInput(f"collection {name!r} was not built from folders; nothing to watch")
    # Ctrl+C and `kill` (systemd, docker stop) both stop it after the update in progress,
    # even when it was started with SIGINT ignored (a background job of a script)
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _interrupt)
    roots = ", ".join(str(r) for r in watchers[name].roots)
    typer.echo(f"watching {roots} for collection {name!r}; Ctrl+C stops", err=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        typer.echo("stopping after the update in progress", err=True)
    finally:
        service.stop_watching()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
