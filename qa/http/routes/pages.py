"""Pages for people: a document opened at a cited passage (the address every citation
carries), and the admin page over the feedback report."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from qa.errors import NotFound
from qa.http.deps import ServiceDep, SettingsDep, load, visible_document
from qa.http.document_page import HEADERS, parse_span, render_document, render_missing

router = APIRouter(tags=["pages"])
PASSAGE_ID = re.compile(r"\d{1,18}")
# the document page's policy, plus fetch to this origin (the report) and a form without action
ADMIN_HEADERS = {
    **HEADERS,
    "Content-Security-Policy": HEADERS["Content-Security-Policy"].replace(
        "default-src 'none';", "default-src 'none'; connect-src 'self';"
    ),
}


def wants_html(request: Request) -> bool:
    """Whether the client is a browser (it asks for HTML), so an error is shown as a page."""
    return "text/html" in request.headers.get("accept", "")


@router.get("/documents/{document_id:path}", include_in_schema=False)
def document_page(
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    document_id: str,
    passage: str | None = None,
    hl: str | None = None,
    collection: str | None = None,
) -> Response:
    """A document as a page of its own, scrolled to ``passage`` with ``hl`` (``START-END``
    inside the passage) marked: what a citation's ``url`` opens."""
    asked = int(passage) if passage is not None and PASSAGE_ID.fullmatch(passage) else None
    try:
        name = load(request, collection)
        visible_document(request, service, name, document_id)
        document, row = service.document_at(document_id, asked, name)
    except NotFound:
        if not wants_html(request):
            raise
        # a missing document and one the reader may not see look the same
        return HTMLResponse(render_missing(settings.title), status_code=404, headers=HEADERS)
    missing = asked is not None and row is None
    page = render_document(document, row, parse_span(hl), name, settings.title, missing)
    return HTMLResponse(page, headers=HEADERS)


@router.get("/admin", include_in_schema=False)
async def admin_page(settings: SettingsDep) -> Response:
    """The feedback report for an owner (the page asks for the admin key; the data comes
    from ``/v1/feedback/report``, which needs it)."""
    return FileResponse(Path(settings.web_dir) / "admin.html", headers=ADMIN_HEADERS)
