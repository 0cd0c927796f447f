"""The web client: the chat page, the embeddable widget and their configuration (the
``/assets`` folder is mounted by the app)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from qa.http.deps import ServiceDep, SettingsDep, caller_of, valid_name
from qa.http.schemas import ERRORS, ClientConfig

router = APIRouter(tags=["web"])
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("/v1/config", response_model=ClientConfig, responses=ERRORS)
def client_config(
    request: Request, service: ServiceDep, settings: SettingsDep, collection: str | None = None
) -> ClientConfig:
    """Title and starter questions for the chat page and widget (of one collection), and
    whether a model writes the answers (then the clients stream them)."""
    name = valid_name(collection) if collection else settings.collection
    # a collection the caller may not use gives no starters (its questions tell of its documents)
    starters = service.starter_questions(name) if caller_of(request).reads(name) else []
    generation = request.app.state.writer is not None
    return ClientConfig(
        title=settings.title,
        collection=name,
        starter_questions=starters,
        feedback=settings.feedback,
        feedback_max_comment_chars=settings.feedback_max_comment_chars,
        generation=generation,
    )


@router.get("/", include_in_schema=False)
async def page(settings: SettingsDep) -> Response:
    return FileResponse(Path(settings.web_dir) / "index.html", headers=NO_CACHE)


@router.get("/widget.js", include_in_schema=False)
async def widget(settings: SettingsDep) -> Response:
    path = Path(settings.web_dir) / "widget.js"
    return FileResponse(path, media_type="text/javascript", headers=NO_CACHE)
