"""Every error a user can meet, in one hierarchy.

Each error carries its HTTP status and a machine-readable code (the API's one handler turns
it into ``{"error": {"code", "message"}}``) and the exit status the CLI ends with after
printing its ``error:`` line. Messages say what to do, and never name a server path when
they can reach an HTTP client.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

USAGE = 2  # CLI exit status for a mistake in what was asked (bad argument, unknown name)
FAILURE = 1  # CLI exit status for something that went wrong while doing it


class QAError(Exception):
    """Base of every error with a message meant for the person who caused or can fix it."""

    status: int = 500
    code: str = "internal_error"
    exit_code: int = FAILURE
    headers: Mapping[str, str] = MappingProxyType({})
    param: str | None = None  # the request field at fault (OpenAI's error shape names it)

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if param is not None:
            self.param = param


# 400 -------------------------------------------------------------------------------------


class BadRequest(QAError):
    """A request that can't be parsed (malformed JSON, a bad header)."""

    status, code, exit_code = 400, "bad_request", USAGE


class InvalidName(QAError):
    """A collection name, document id or upload name that is not allowed (it could escape its
    folder, or isn't in canonical form)."""

    status, code, exit_code = 400, "invalid_name", USAGE


# 401 / 403 -------------------------------------------------------------------------------


class Unauthorized(QAError):
    """No key, or a wrong one."""

    status, code, exit_code = 401, "unauthorized", USAGE


class Forbidden(QAError):
    """The caller may not do this (or nobody may: the feature is switched off)."""

    status, code, exit_code = 403, "forbidden", USAGE


# 404 -------------------------------------------------------------------------------------


class NotFound(QAError):
    status, code, exit_code = 404, "not_found", USAGE


class UnknownCollection(NotFound):
    """A collection name that has no index, with the names that do."""

    code = "unknown_collection"

    def __init__(self, name: str, available: list[str] | None = None) -> None:
        self.name = name
        self.available = available or []
        listed = ", ".join(repr(n) for n in self.available) or "none yet"
        super().__init__(
            f"unknown collection {name!r}; available collections: {listed}. "
            f"Create it with `qa index PATH --collection {name}`"
        )


class UnknownDocument(NotFound):
    code = "unknown_document"


class UnknownPassage(NotFound):
    code = "unknown_passage"


# 409 -------------------------------------------------------------------------------------


class Conflict(QAError):
    status, code, exit_code = 409, "conflict", FAILURE


class Busy(Conflict):
    """Another writer holds the collection."""

    code = "busy"
    headers = MappingProxyType({"Retry-After": "5"})


class NothingToIndex(Conflict):
    """An update that would leave a collection without a single passage."""

    code = "nothing_to_index"


class NameConflict(Conflict):
    """An upload whose name clashes with a folder or file already in the uploads."""

    code = "name_conflict"


class TooManyCollections(Conflict):
    """The write API would create more collections than ``QA_MAX_COLLECTIONS`` allows."""

    code = "too_many_collections"


class GateRefused(Conflict):
    """``qa index --gate``: the new generation scores worse on the labelled questions than
    the live one by more than the allowed drop, so it was not switched in."""

    code = "gate_refused"


# 415 / 422 -------------------------------------------------------------------------------


class UnsupportedMediaType(QAError):
    status, code, exit_code = 415, "unsupported_media_type", USAGE


class InvalidInput(QAError):
    """A field with a value that isn't allowed."""

    status, code, exit_code = 422, "validation_error", USAGE


class UnreadableDocument(QAError):
    """A document sent to the write API that can't be indexed, and why."""

    status, code, exit_code = 422, "unreadable_document", USAGE


# 5xx -------------------------------------------------------------------------------------


class StoreError(QAError):
    """A collection that can't be loaded or written, with what to do about it.

    Over HTTP only the collection's name is shown (the details, which may name server
    paths, go to the log).
    """

    status, code, exit_code = 503, "index_unavailable", FAILURE


class CollectionNotFound(StoreError):
    """No collection of that name has been indexed (the store's view; the service raises
    :class:`UnknownCollection` with the names that exist)."""


class SourceUnavailable(QAError):
    """A website a collection is built from could not be read; the collection is unchanged."""

    status, code, exit_code = 502, "source_unavailable", FAILURE


class ModelError(QAError):
    """The model folder is missing or is not a sentence-transformers model."""

    status, code, exit_code = 503, "model_unavailable", USAGE


class ServiceBusy(QAError):
    """Too many questions are being worked on."""

    status, code, exit_code = 503, "busy", FAILURE
    headers = MappingProxyType({"Retry-After": "1"})


class Timeout(QAError):
    status, code, exit_code = 504, "timeout", FAILURE


class StorageFull(QAError):
    """A store that holds as much as its limit allows (feedback: QA_FEEDBACK_MAX_RECORDS)."""

    status, code, exit_code = 507, "storage_full", FAILURE


# evaluation ------------------------------------------------------------------------------


class DatasetError(QAError):
    """A dataset that can't be read, naming the file (and line) and what is wrong."""

    status, code, exit_code = 422, "invalid_dataset", USAGE

    def __init__(self, path: object, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")
        self.detail = message


class BaselineError(QAError):
    """A baseline report that can't be compared with."""

    status, code, exit_code = 422, "invalid_baseline", USAGE


class MissingExtra(QAError):
    """An optional part of the project (e.g. the Ray engine) is not installed."""

    status, code, exit_code = 501, "not_installed", USAGE
