"""``qa keys create|list|revoke``: the API keys of ``QA_AUTH=keys``, kept hashed under the
index root (the token is printed once, at creation)."""

from __future__ import annotations

from typing import Annotated

import typer

from qa.access import Key, KeyStore
from qa.cli.common import make_settings
from qa.ingest.documents import name_list

keys_app = typer.Typer(
    help="API keys for QA_AUTH=keys: create, list, revoke.", no_args_is_help=True
)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="a name to list and revoke it by")],
    scope: Annotated[str, typer.Option("--scope", help="read, write or admin")] = "read",
    groups: Annotated[
        str, typer.Option("--groups", help="comma-separated groups whose documents it reads")
    ] = "public",
    collections: Annotated[
        str, typer.Option("--collections", help="comma-separated collections (default: all)")
    ] = "",
    origins: Annotated[
        str, typer.Option("--origins", help="browser origins it may be used from (widget keys)")
    ] = "",
    rate: Annotated[str, typer.Option("--rate", help="its own limit, e.g. 60/min")] = "",
) -> None:
    """Create a key and print its token (shown only this once; only its hash is kept)."""
    key = Key(
        name=name,
        hash="",
        scope=scope,  # type: ignore[arg-type]
        groups=name_list(groups),
        collections=name_list(collections),
        origins=[o.rstrip("/") for o in name_list(origins)],
        rate=rate,
    )
    token = KeyStore(make_settings().index_dir).create(key)
    typer.echo(token)
    typer.echo(f"created key {name!r} ({scope}); the token above is not shown again", err=True)


@keys_app.command("list")
def list_keys() -> None:
    """The keys: name, scope, groups, collections, origins, rate (never a token or hash)."""
    for key in KeyStore(make_settings().index_dir).all():
        parts = [
            key.name,
            key.scope,
            f"groups={','.join(key.groups) or '-'}",
            f"collections={','.join(key.collections) or '*'}",
            f"origins={','.join(key.origins) or '*'}",
            f"rate={key.rate or '-'}",
            f"created={key.created}",
        ]
        typer.echo("  ".join(parts))


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key: running servers refuse it from their next request."""
    KeyStore(make_settings().index_dir).revoke(name)
    typer.echo(f"revoked key {name!r}")
