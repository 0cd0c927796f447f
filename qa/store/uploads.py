"""Where documents sent through the write API are kept, one document per file.

``index/<collection>/uploads/`` holds uploaded files under the name the client gave
(``notes/a.txt``: its document id is that name); ``uploads/.records/`` holds documents sent
as JSON, one single-line JSONL file each, named by a hash of the id. Ids map to files
one-to-one: the two kinds can't collide (a record's file name is a hash, and ``.jsonl``
files can't be uploaded), and ids are checked to be in canonical form, so two ids never
name one file. Writing a document removes any other file that held the same id.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from pathlib import Path

from qa.errors import InvalidName, NameConflict
from qa.store.layout import RECORDS, write_atomic

MAX_ID_CHARS = 200


def safe_relative_path(folder: Path, name: str) -> Path:
    """``folder / name`` for a relative, normalised ``name`` that stays inside ``folder``."""
    cleaned = name.replace("\\", "/").strip()
    parts = [p for p in cleaned.split("/") if p not in ("", ".")]
    if (
        not parts
        or cleaned.startswith("/")
        or any(p == ".." or p.startswith(".") for p in parts)
        or "\x00" in cleaned
        or len(cleaned) > 255
    ):
        raise InvalidName(
            f"invalid document name {name!r}: use a relative path without '..' or hidden parts"
        )
    target = (folder / "/".join(parts)).resolve()
    root = folder.resolve()
    if root not in target.parents:
        raise InvalidName(
            f"invalid document name {name!r}: it would be stored outside the collection"
        )
    return target


def check_document_id(document_id: str) -> str:
    """``document_id`` when it is canonical: no outer whitespace, control characters,
    backslashes, empty, ``.``, ``..`` or hidden segments, and not longer than 200 characters.

    Ids appear in URLs (``/v1/documents/{id}``), where a browser would resolve ``..``
    segments into another path, so those can't be ids at all.
    """
    problem = None
    if not document_id or document_id != document_id.strip():
        problem = "it is empty or has leading or trailing spaces"
    elif len(document_id) > MAX_ID_CHARS:
        problem = f"it is longer than {MAX_ID_CHARS} characters"
    elif any(unicodedata.category(c) in {"Cc", "Cs"} for c in document_id) or "\\" in document_id:
        problem = "it holds control characters or backslashes"
    elif any(part == "" or part.startswith(".") for part in document_id.split("/")):
        problem = "it has an empty, '.', '..' or hidden ('.name') path segment"
    if problem:
        raise InvalidName(f"invalid document id {document_id!r}: {problem}")
    return document_id


def record_path(uploads: Path, document_id: str) -> Path:
    """The file that holds a document sent as JSON."""
    digest = hashlib.sha256(document_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return uploads / RECORDS / f"{digest}.jsonl"


def record_line(
    document_id: str,
    title: str,
    text: str,
    source: str | None,
    meta: dict[str, list[str]] | None = None,
) -> bytes:
    """A document of the write API as a JSONL line (with its ``groups`` and ``tags``)."""
    record: dict[str, object] = {
        "_id": document_id,
        "title": title,
        "text": text,
        "source": source or f"api:{document_id}",
    }
    record.update({k: v for k, v in (meta or {}).items() if v})
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def file_path(uploads: Path, name: str) -> tuple[Path, str]:
    """The file an upload named ``name`` is kept in, and its document id (its canonical name)."""
    target = safe_relative_path(uploads, name)
    document_id = target.relative_to(uploads.resolve()).as_posix()
    check_document_id(document_id)
    root = uploads.resolve()
    for parent in target.parents:
        if parent == root:
            break
        if parent.exists() and not parent.is_dir():
            clash = parent.relative_to(root).as_posix()
            raise NameConflict(
                f"cannot store {document_id!r}: {clash!r} is a document, not a folder"
            )
    if target.is_dir():
        raise NameConflict(f"cannot store {document_id!r}: it is a folder of other documents")
    return target, document_id


def files_of(uploads: Path, document_id: str) -> list[Path]:
    """Every upload file that holds ``document_id`` (one, unless it changed kind)."""
    found = []
    record = record_path(uploads, document_id)
    if record.is_file():
        found.append(record)
    try:
        path, _ = file_path(uploads, document_id)
    except (InvalidName, NameConflict):
        path = None
    if path is not None and path.is_file():
        found.append(path)
    legacy = uploads / f"{document_id}.jsonl"  # how records were kept before (one level, by id)
    if legacy.is_file() and _holds_only(legacy, document_id):
        found.append(legacy)
    return found


def _holds_only(path: Path, document_id: str) -> bool:
    try:
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        return len(lines) == 1 and json.loads(lines[0]).get("_id") == document_id
    except (OSError, ValueError, AttributeError):
        return False


def save(uploads: Path, target: Path, data: bytes, document_id: str) -> None:
    """Keep ``data`` as ``target`` (atomically), and drop other files that held the same id."""
    for old in files_of(uploads, document_id):
        if old != target:
            old.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, data, target.with_name(f".{target.name}.tmp{os.getpid()}"))


def remove(uploads: Path, document_id: str) -> None:
    """Remove the files that hold ``document_id`` (never what its free-text ``source`` names)."""
    for path in files_of(uploads, document_id):
        path.unlink(missing_ok=True)
