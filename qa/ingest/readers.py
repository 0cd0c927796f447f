"""Readers: .txt, .md, .html/.htm, .pdf and BEIR-style .jsonl bytes into documents.

Every reader returns :class:`~qa.ingest.documents.Document` objects or raises
:class:`~qa.ingest.documents.Skip` with a reason a person can act on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from qa.ingest.documents import (
    DEFAULT_MAX_FILE_BYTES,
    HTML_SUFFIXES,
    SUPPORTED_SUFFIXES,
    TEXT_SUFFIXES,
    Document,
    Skip,
    decode_text,
    name_list,
    normalise_newlines,
)

if TYPE_CHECKING:
    from qa.ingest.parsing import ParserPool


def _first_line(text: str, start: int = 0) -> tuple[str, int]:
    """The first non-blank line at or after ``start`` and the offset just after it."""
    for match in re.finditer(r"[^\n]*", text[start:]):
        line = match.group()
        if line.strip():
            return line.strip(), start + match.end()
    return "", start


def read_text(path: Path, doc_id: str, data: bytes) -> Document:
    """Plain text: the first non-blank line is the title."""
    text = decode_text(data, str(path))
    title, end = _first_line(text)
    return Document(doc_id, title[:300], str(path), text, "text", body_start=end)


# Anchored at the start and possessive: no backtracking over a long line of spaces.
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---[ \t]*+(\n|\Z)", re.DOTALL)


def _front_matter_title(front: str) -> str:
    """The first non-empty ``title:`` of YAML front matter, without its quotes.

    Plain string operations: the regex this replaces (``^title:\\s*['"]?(.+?)['"]?\\s*$``)
    was quadratic on a long run of whitespace.
    """
    for line in front.split("\n"):
        if not line.startswith("title:"):
            continue
        value = line[len("title:") :].strip()
        if len(value) > 1 and value[0] in "'\"":
            value = value[1:]
        if len(value) > 1 and value[-1] in "'\"":
            value = value[:-1]
        if value:
            return value
    return ""


def _front_matter_field(front: str, key: str) -> str | list[str]:
    """The value of a top-level ``key:`` of YAML front matter: its text, or the items of a
    block list (``- item`` lines) under it; '' when absent. Plain string operations, linear."""
    lines = front.split("\n")
    for number, line in enumerate(lines):
        if not line.startswith(key + ":"):
            continue
        value = line[len(key) + 1 :].strip()
        if value.startswith("[") and value.endswith("]"):
            return value[1:-1].split(",")
        if value:
            return value
        items = []
        for item in lines[number + 1 :]:
            if not item.lstrip().startswith("- "):
                break
            items.append(item.lstrip()[2:])
        return items
    return ""


def _with_front_matter(document: Document, front: str) -> Document:
    """``groups``, ``tags`` and ``date`` of the front matter on the document."""
    groups = name_list(_front_matter_field(front, "groups"))
    document.groups = groups or None
    document.tags = name_list(_front_matter_field(front, "tags"))
    date = _front_matter_field(front, "date")
    document.date = date.strip("'\"")[:32] if isinstance(date, str) else ""
    return document


def _heading_text(line: str) -> str:
    """A Markdown heading line without its ``#`` marks (leading, and closing ones)."""
    text = line.lstrip("#").lstrip()
    if text.endswith("#"):
        text = text.rstrip("#").rstrip()
    return text


def read_markdown(path: Path, doc_id: str, data: bytes) -> Document:
    """Markdown: YAML front matter's ``title``, else the first heading or line, is the title."""
    text = decode_text(data, str(path))
    start, title = 0, ""
    front = _FRONT_MATTER.match(text)
    if front:
        start = front.end()
        title = _front_matter_title(front.group(1))
    line, end = _first_line(text, start)
    if not title:
        title = _heading_text(line) if line.startswith("#") else line
        start = end
    elif line.startswith("#") and line.lstrip("#").strip() == title:
        start = end
    if not text[start:].strip() and not title:
        raise Skip(str(path), "empty file")
    document = Document(doc_id, title.strip()[:300], str(path), text, "markdown", body_start=start)
    return _with_front_matter(document, front.group(1)) if front else document


def html_to_text(markup: str) -> tuple[str, str]:
    """Visible text of an HTML page, one block per paragraph, and its title.

    Linear in the size of the page, however it is nested or broken (see :mod:`qa.ingest.html`).
    """
    from qa.ingest.html import html_to_text as extract

    return extract(markup)


def read_html(path: Path, doc_id: str, data: bytes) -> Document:
    """HTML: visible text; ``<title>`` or the first ``<h1>`` is the title."""
    markup = decode_text(data, str(path))
    text, title = html_to_text(markup)
    if not text.strip():
        raise Skip(str(path), "HTML page has no visible text")
    first, end = _first_line(text)
    body_start = 0
    if not title:
        title = first
    if first == title:
        body_start = end
    return Document(doc_id, title[:300], str(path), text, "html", body_start=body_start)


def read_pdf(path: Path, doc_id: str, data: bytes) -> Document:
    """PDF: text per page (page starts recorded); metadata title or first line is the title."""
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    source = str(path)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise Skip(source, "encrypted PDF (needs a password)")
            except Skip:
                raise
            except Exception:  # noqa: BLE001 - pypdf's decryption errors vary by cipher
                raise Skip(source, "encrypted PDF (needs a password)") from None
        # Pages that draw the same content stream with the same resources have the same
        # text: it is extracted once. A small file can give hundreds of pages one large
        # compressed stream, and parsing it again for each page took seconds per page.
        extracted: dict[tuple[int, int], str] = {}
        shared: list[object] = []  # keeps the objects whose ids are the keys alive
        pages_text = []
        for page in reader.pages:
            # resolved objects: the reader resolves each indirect object once, so a shared one
            # is the same Python object on every page
            refs = (page.get("/Contents"), page.get("/Resources"))
            contents, resources = (None if ref is None else ref.get_object() for ref in refs)
            key = (id(contents), id(resources))
            if contents is None or key not in extracted:
                text = normalise_newlines(page.extract_text() or "")
                if contents is not None:
                    extracted[key] = text
                    shared += [contents, resources]
            pages_text.append(extracted[key] if contents is not None else text)
        meta_title = ((reader.metadata or {}).get("/Title") or "").strip()
    except (Skip, MemoryError):  # out of memory is the parser process's budget, not a bad file
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Skip(source, f"unreadable PDF ({exc.__class__.__name__}: {exc})") from None
    except Exception as exc:  # noqa: BLE001 - pypdf raises a wide range of errors on broken files
        raise Skip(source, f"unreadable PDF ({exc.__class__.__name__})") from None
    if not any(part.strip() for part in pages_text):
        raise Skip(source, "PDF has no text layer (scanned images?); run OCR on it first")
    text, starts = "", []
    for part in pages_text:
        if text:
            text += "\n\n"
        starts.append(len(text))
        text += part.strip("\n")
    first, end = _first_line(text)
    title = str(meta_title) if meta_title and meta_title.lower() not in {"untitled"} else first
    body_start = end if first == title else 0
    return Document(doc_id, title[:300], source, text, "pdf", body_start=body_start, pages=starts)


def read_jsonl(path: Path, errors: list[Skip]) -> Iterator[Document]:
    """BEIR ``corpus.jsonl``: one ``{"_id", "title", "text"}`` object per line."""
    with path.open("rb") as handle:
        yield from _jsonl_lines(path, handle, errors)


def read_jsonl_bytes(path: Path, data: bytes) -> list[Document]:
    """Documents of JSONL content held in memory; raises :class:`Skip` on a bad line."""
    errors: list[Skip] = []
    documents = list(_jsonl_lines(path, data.splitlines(keepends=True), errors))
    if errors:
        raise errors[0]
    return documents


def _jsonl_lines(path: Path, lines: Iterable[bytes], errors: list[Skip]) -> Iterator[Document]:
    source = str(path)
    for number, raw in enumerate(lines, start=1):
        where = f"{source}:{number}"
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            errors.append(Skip(where, f"malformed JSON ({exc})"))
            continue
        if not isinstance(record, dict) or "_id" not in record:
            errors.append(Skip(where, 'not a BEIR document (needs "_id" and "text")'))
            continue
        title = str(record.get("title") or "").strip()
        text = normalise_newlines(str(record.get("text") or ""))
        if not text.strip() and not title:
            errors.append(Skip(where, "empty document"))
            continue
        source_override = record.get("source")
        yield Document(
            str(record["_id"]),
            " ".join(title.split())[:300],
            str(source_override) if source_override else where,
            text,
            "jsonl",
            groups=name_list(record.get("groups")) or None,
            tags=name_list(record.get("tags")),
            date=str(record.get("date") or "")[:32],
        )


def read_file(
    path: Path,
    doc_id: str,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    parser: ParserPool | None = None,
) -> Document:
    """Read one non-JSONL file; raises :class:`Skip` when it can't be indexed.

    With a ``parser`` (:class:`qa.ingest.parsing.ParserPool`) the file is read and parsed in one of
    its worker processes, within its time and memory budget.
    """
    suffix = path.suffix.lower()
    source = str(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise Skip(source, f"unsupported file type {suffix or '(none)'!r}")
    if parser is not None:
        return parser.parse_path(path, doc_id, max_bytes)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise Skip(
                source,
                f"file is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:g} MiB limit "
                "(raise QA_MAX_FILE_MB to index it)",
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise Skip(source, "file disappeared while indexing") from None
    except IsADirectoryError:
        raise Skip(source, "is a directory") from None
    except OSError as exc:
        raise Skip(source, f"unreadable ({exc.strerror or exc})") from None
    return parse_bytes(path, doc_id, data)


def parse_bytes(path: Path, doc_id: str, data: bytes) -> Document:
    """Parse a file's bytes by its suffix (not for JSONL); raises :class:`Skip`."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return read_pdf(path, doc_id, data)
    if suffix in HTML_SUFFIXES:
        return read_html(path, doc_id, data)
    if suffix in {".md", ".markdown"}:
        return read_markdown(path, doc_id, data)
    if suffix in TEXT_SUFFIXES:
        return read_text(path, doc_id, data)
    raise Skip(str(path), f"unsupported file type {suffix or '(none)'!r}")
