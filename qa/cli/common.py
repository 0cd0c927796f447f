"""What the commands share: their common options, settings from flags, the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qa.config import Settings
from qa.errors import InvalidInput, QAError

if TYPE_CHECKING:
    from qa.service import QAService

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="sentence-transformers model folder (default: bundled all-MiniLM-L6-v2; env QA_MODEL)",
    ),
]
CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection", "-c", help="collection name (default: 'default'; env QA_COLLECTION)"
    ),
]


class Interrupted(QAError):
    """Ctrl+C during a command (after it cleaned up)."""

    exit_code = 130


def make_settings(**overrides: object) -> Settings:
    """Settings from the environment with the given CLI flags (those not ``None``) on top."""
    from pydantic import ValidationError

    try:
        base = Settings()
        values = {k: v for k, v in overrides.items() if v is not None}
        return Settings(**{**base.model_dump(), **values}) if values else base
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"invalid setting: {problems}") from None


def open_service(settings: Settings) -> QAService:
    """The service, failing early (a :class:`ModelError`) on a bad model folder."""
    from qa.service import QAService

    service = QAService(settings)
    service.embedder.identity  # noqa: B018 - fail early on a bad model folder
    return service
