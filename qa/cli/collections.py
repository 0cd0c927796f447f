"""``qa collections``: the indexed collections, read from their manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qa.cli.common import make_settings

if TYPE_CHECKING:
    from qa.store import Manifest


def collections(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
    groups: Annotated[
        bool,
        typer.Option("--groups", help="also count documents per access group (reads each index)"),
    ] = False,
) -> None:
    """List the indexed collections with their counts and model."""
    from qa.store import list_collections, read_manifest

    settings = make_settings()
    names = list_collections(settings.index_dir)
    manifests = {name: read_manifest(settings.index_dir / name) for name in names}
    if as_json:
        typer.echo(
            json.dumps([_row(n, m, settings.index_dir / n) for n, m in manifests.items()], indent=2)
        )
        return
    if not manifests:
        typer.echo(f"no collections in {settings.index_dir}; create one with `qa index PATH`")
    for name, manifest in manifests.items():
        counts = manifest.counts
        typer.echo(
            f"{name:<20} {counts.documents:>7} documents {counts.passages:>8} passages  "
            f"{manifest.model.name}  built {manifest.created_at} ({manifest.generation})"
        )
        typer.echo(f"{'':<20} dense index {manifest.dense_index}: {manifest.dense_summary()}")
        for source in manifest.sources:
            typer.echo(f"{'':<20} from {source}")
        if groups:
            shares = _groups(settings.index_dir / name)
            typer.echo(f"{'':<20} groups: " + ", ".join(f"{g} ({n})" for g, n in shares.items()))
        tuned = _tuned(settings.index_dir / name)
        if tuned:
            values = " ".join(f"{k}={v:g}" for k, v in tuned.items())
            typer.echo(f"{'':<20} tuned: {values} (qa tune)")


def _groups(directory: Path) -> dict[str, int]:
    """Live documents per access group (a document in two groups counts in both)."""
    from collections import Counter

    from qa.store import Collection

    loaded = Collection.load(directory, verify=False)
    try:
        rows = loaded.meta.document_of_row[loaded.live]
        live = {int(d) for d in rows.tolist() if d >= 0}
        counts = Counter(g for d in live for g in loaded.meta.documents[d].groups)
    finally:
        loaded.close()
    return dict(sorted(counts.items()))


def _tuned(directory: Path) -> dict[str, float]:
    """The values ``qa tune`` stored for the collection (empty: the configured ones)."""
    from qa.store.tuning import read_tuning

    tuning = read_tuning(directory)
    return tuning.values.given() if tuning is not None else {}


def _row(name: str, manifest: Manifest, manifest_dir: Path) -> dict[str, object]:
    """One collection as ``--json`` prints it."""
    return {
        "name": name,
        "tuned": _tuned(manifest_dir),
        "generation": manifest.generation,
        "documents": manifest.counts.documents,
        "passages": manifest.counts.passages,
        "model": manifest.model.name,
        "created_at": manifest.created_at,
        "dense_index": manifest.dense_index,
        "segments": [s.model_dump() for s in manifest.segments],
        "sources": manifest.sources,
    }
