"""Writes (they need ``QA_API_KEY``): add or replace a document, delete one, reindex."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from qa.errors import InvalidInput, UnsupportedMediaType
from qa.http.deps import ServiceDep, require_writer, valid_name
from qa.http.schemas import ERRORS, DocumentIn, WriteResponse
from qa.service import QAService
from qa.store import IndexReport

router = APIRouter(tags=["writes"], dependencies=[Depends(require_writer)])

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
    return await run_in_threadpool(
        service.add_text, name, document.id, document.title, document.text, document.source
    )


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
def delete_document(service: ServiceDep, name: str, document_id: str) -> WriteResponse:
    """Delete a document: its passages leave FAISS, BM25 and SQLite in one atomic switch."""
    name = valid_name(name)
    report = service.delete_document(name, document_id)
    return written(report, service.delete_note(name))


@router.post("/v1/collections/{name}/reindex", response_model=WriteResponse, responses=ERRORS)
def reindex(service: ServiceDep, name: str, full: bool = False) -> WriteResponse:
    """Index the collection's folders again: new and changed files are embedded, vanished ones removed."""
    return written(service.reindex(valid_name(name), full))
