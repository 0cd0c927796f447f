"""Writes (they need ``QA_API_KEY``): add or replace a document, delete one, reindex."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from qa.errors import Forbidden, InvalidInput, UnsupportedMediaType
from qa.http.deps import ServiceDep, caller_of, require_writer, valid_name, visible_document
from qa.http.schemas import ERRORS, DocumentIn, WriteResponse
from qa.search.scope import may_see
from qa.service import QAService
from qa.store import IndexReport
from qa.store.rowmeta import PUBLIC


def writable(request: Request) -> None:
    """A key restricted to some collections writes only to those."""
    name = request.path_params.get("name", "")
    if not caller_of(request).reads(name):
        raise Forbidden(f"this key may not write to collection {name!r}", code="forbidden")


router = APIRouter(tags=["writes"], dependencies=[Depends(require_writer), Depends(writable)])

# The body of an upload, documented by hand: the route reads it itself (JSON or multipart).
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {
                            "type": "string",
                            "description": "path inside the collection (default: the file name)",
                        },
                    },
                }
            },
        },
    }
}


def written(report: IndexReport, note: str | None = None) -> WriteResponse:
    """What a write did, as the API tells it (with ``note`` for the client to know)."""
    response = WriteResponse.model_validate(report, from_attributes=True)
    response.note = note
    return response


@router.post(
    "/v1/collections/{name}/documents",
    response_model=WriteResponse,
    status_code=201,
    responses=ERRORS,
    openapi_extra=UPLOAD_BODY,
)
async def add_document(request: Request, service: ServiceDep, name: str) -> WriteResponse:
    """Add or replace a document: JSON ``{id, title, text, source}`` or a file upload (multipart)."""
    name = valid_name(name, must_exist=False)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        report = await _add_json(request, service, name)
    elif kind == "multipart/form-data":
        report = await _add_upload(request, service, name)
    else:
        raise UnsupportedMediaType("send application/json or multipart/form-data")
    return written(report)


async def _add_json(request: Request, service: QAService, name: str) -> IndexReport:
    try:
        document = DocumentIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    meta = {"groups": document.groups or [], "tags": document.tags or []}
    await run_in_threadpool(_check_writer, request, service, name, document.id, meta["groups"])
    return await run_in_threadpool(
        service.add_text, name, document.id, document.title, document.text, document.source, meta
    )


def _check_writer(
    request: Request, service: QAService, name: str, document_id: str, groups: list[str]
) -> None:
    """A writer that reads only some groups gives documents only those groups (or public),
    and does not replace a document it may not read."""
    caller = caller_of(request)
    if caller.groups is None:
        return
    foreign = sorted(set(groups) - caller.groups - {PUBLIC})
    if foreign:
        raise Forbidden(f"groups: this key may not give documents the group {foreign[0]!r}")
    if name not in service.collection_names():
        return
    existing = service.collection(name).document(document_id)
    if existing is not None and not may_see(existing, caller.groups):
        raise Forbidden(f"this key may not replace document {document_id!r}")


async def _add_upload(request: Request, service: QAService, name: str) -> IndexReport:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("file: send the document in a form field named 'file'")
    filename = str(form.get("name") or upload.filename or "")
    data = await upload.read()
    return await run_in_threadpool(service.add_file, name, filename, data)


@router.delete(
    "/v1/collections/{name}/documents/{document_id:path}",
    response_model=WriteResponse,
    responses=ERRORS,
)
def delete_document(
    request: Request, service: ServiceDep, name: str, document_id: str
) -> WriteResponse:
    """Delete a document: its passages leave FAISS, BM25 and SQLite in one atomic switch."""
    name = valid_name(name)
    service.document(document_id, name)  # a 404 when there is none
    visible_document(request, service, name, document_id)
    report = service.delete_document(name, document_id)
    return written(report, delete_note(service, name))


def delete_note(service: QAService, collection: str) -> str | None:
    """What a client should know after deleting from ``collection``: a collection also
    built from folders gets a deleted file's document back on the next reindex (moved here
    from the service: only this route says it)."""
    uploads = str(service.indexer.uploads_dir(collection).resolve())
    sources = service.manifest(collection).sources
    if sources and not all(source == uploads for source in sources):
        return "if the document's file is still in an indexed folder, the next reindex adds it back"
    return None


@router.post("/v1/collections/{name}/reindex", response_model=WriteResponse, responses=ERRORS)
def reindex(service: ServiceDep, name: str, full: bool = False) -> WriteResponse:
    """Index the collection's folders again: new and changed files are embedded, vanished ones removed."""
    return written(service.reindex(valid_name(name), full))
