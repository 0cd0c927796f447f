"""Read files into documents: .txt, .md, .html/.htm, .pdf and BEIR-style .jsonl.

Every reader returns :class:`Document` objects or raises :class:`Skip` with a reason a
person can act on. :func:`discover` walks the paths a user gave and yields both.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.ingest.parsing import ParserPool

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".jsonl"}
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024


@dataclass
class Document:
    """One document: its text is what citations' character offsets refer to."""

    id: str
    title: str
    source: str
    text: str
    format: str
    body_start: int = 0  # passages start here (after a title line that is part of ``text``)
    pages: list[int] = field(default_factory=list)  # char offset where each PDF page starts

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that ends up in the index changes."""
        digest = hashlib.sha256()
        for part in (self.title, self.source, self.format, str(self.body_start), self.text):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
        digest.update(json.dumps(self.pages).encode())
        return digest.hexdigest()

    def page_at(self, offset: int) -> int | None:
        """1-based page number holding ``offset`` (PDF only)."""
        if not self.pages:
            return None
        page = 0
        for number, start in enumerate(self.pages):
            if start <= offset:
                page = number
        return page + 1


@dataclass
class Skip(Exception):
    """A file (or a line of one) that could not be read, and why.

    ``source`` names it as readers may see it (relative to the indexed folder, or as the
    client named an upload); ``path`` is where it is on this machine, for the CLI and the log.
    """

    source: str
    reason: str
    path: str = ""

    def __str__(self) -> str:
        return f"skipped {self.path or self.source}: {self.reason}"


# --------------------------------------------------------------------------- text helpers


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR become LF; a leading byte-order mark is dropped."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def decode_text(data: bytes, source: str) -> str:
    """Decode bytes as UTF-8 (or UTF-16/32 with a BOM), refusing binary data."""
    if not data.strip():
        raise Skip(source, "empty file")
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise Skip(source, f"not valid {codec.upper()} ({exc.reason})") from None
            break
    else:
        if b"\x00" in data[:8192]:
            raise Skip(source, "binary file (contains NUL bytes)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Skip(
                source,
                f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "convert it to UTF-8",
            ) from None
    text = normalise_newlines(text)
    if not text.strip():
        raise Skip(source, "empty file (only whitespace)")
    return text


def _first_line(text: str, start: int = 0) -> tuple[str, int]:
    """The first non-blank line at or after ``start`` and the offset just after it."""
    for match in re.finditer(r"[^\n]*", text[start:]):
        line = match.group()
        if line.strip():
            return line.strip(), start + match.end()
    return "", start


# --------------------------------------------------------------------------- readers


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
    return Document(doc_id, title.strip()[:300], str(path), text, "markdown", body_start=start)


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
            str(record["_id"]), " ".join(title.split())[:300],
            str(source_override) if source_override else where, text, "jsonl",
        )


def read_file(
    path: Path, doc_id: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES, parser: ParserPool | None = None
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


# --------------------------------------------------------------------------- uploads


class UnsafePath(ValueError):
    """A name that would place a file outside the folder meant for it."""


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
        raise UnsafePath(f"invalid document name {name!r}: use a relative path without '..' or hidden parts")
    target = (folder / "/".join(parts)).resolve()
    root = folder.resolve()
    if root not in target.parents:
        raise UnsafePath(f"invalid document name {name!r}: it would be stored outside the collection")
    return target


# --------------------------------------------------------------------------- discovery


OUTSIDE = "symbolic link to a path outside the indexed folder; not followed (use --follow-links to index it)"


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symbolic links resolved) lies within ``root``."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return True  # a loop or a dangling link: reported as such by the caller
    return resolved == root or root in resolved.parents


def _walk(root: Path, follow_links: bool = False) -> Iterator[Path | Skip]:
    """Files under ``root`` in a stable order, without looping.

    Symbolic links are followed only while they stay inside ``root`` (a link out of it is
    a :class:`Skip`), unless ``follow_links``.
    """
    real_root = root.resolve()
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
        except OSError:
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            continue
        seen.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_symlink() and not follow_links and not _inside(path, real_root):
                yield Skip(_display(root, path), OUTSIDE, str(path))
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(path)
            else:
                yield path
        stack.extend(reversed(subfolders))


def _display(root: Path, path: Path) -> str:
    """How a file is named to readers: the indexed folder's name and the path inside it."""
    if path == root:
        return root.name
    return f"{root.name}/{path.relative_to(root).as_posix()}"


def _unreachable(link: Path) -> str:
    try:
        link.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
    return "broken symbolic link"


def _special_file(path: Path) -> str | None:
    """Why ``path`` must not be read (a pipe blocks forever, a device never ends), or None."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "file disappeared while indexing"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "not a regular file (a pipe, socket or device)"


def discover(
    paths: list[Path],
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    follow_links: bool = False,
    parser: ParserPool | None = None,
) -> Iterator[Document | Skip]:
    """Every document under ``paths`` (files or folders, recursively), and every skip.

    A folder's documents are identified by their path relative to it; a file given
    directly by its name; a JSONL document by its ``_id``. A second document with an
    id already seen is skipped. Sources are named relative to the folder given (see
    :func:`_display`), never by their absolute path on this machine. With a ``parser``
    (:class:`qa.ingest.parsing.ParserPool`) files are parsed in its worker processes, several at
    once, each within its time and memory budget; results keep their order.
    """
    located: deque[tuple[Path, Path]] = deque()  # (root, file) of each item, in order

    def items() -> Iterator[tuple[Path, str] | Document | Skip]:
        for root in map(Path, paths):
            if not root.exists():
                located.append((root, root))
                yield Skip(root.name or str(root), "no such file or folder", str(root))
                continue
            files = [root] if root.is_file() else list(_walk(root, follow_links))  # listed, then read
            for path in files:
                if isinstance(path, Skip):
                    located.append((root, root))
                    yield path
                    continue
                for item in _prepare(root, path):
                    located.append((root, path))
                    yield item

    if parser is not None:
        results: Iterator[Document | Skip] = parser.parse_files(items(), max_bytes)
    else:
        results = (_read(item, max_bytes) for item in items())
    seen: set[str] = set()
    for result in results:
        root, path = located.popleft()
        if isinstance(result, Skip):
            yield result if result.path else _renamed(result, root, path)
        else:
            result.source = _display_source(result.source, root, path)
            yield from _unique(result, seen)


def _prepare(root: Path, path: Path) -> Iterator[tuple[Path, str] | Document | Skip]:
    """What one file gives: a ``(path, document id)`` to parse, a JSONL file's documents, or a skip."""
    if path.is_symlink() and not path.exists():
        yield Skip(str(path), _unreachable(path))
        return
    if (problem := _special_file(path)) is not None:
        yield Skip(str(path), problem)
        return
    if path.suffix.lower() == ".jsonl":
        errors: list[Skip] = []
        try:
            yield from read_jsonl(path, errors)
        except OSError as exc:
            yield Skip(str(path), f"unreadable ({exc.strerror or exc})")
        yield from errors
        return
    yield path, (path.name if path == root else path.relative_to(root).as_posix())


def _read(item: tuple[Path, str] | Document | Skip, max_bytes: int) -> Document | Skip:
    """Parse one prepared item in this process."""
    if isinstance(item, (Document, Skip)):
        return item
    try:
        return read_file(item[0], item[1], max_bytes)
    except Skip as skip:
        return skip


def _display_source(source: str, root: Path, path: Path) -> str:
    """``source`` with the file's absolute path replaced by its display name."""
    absolute = str(path)
    if source == absolute or source.startswith(absolute + ":"):
        return _display(root, path) + source[len(absolute) :]
    return source


def _renamed(skip: Skip, root: Path, path: Path) -> Skip:
    """A reader's skip (named by absolute path) named for readers, keeping the path for the log."""
    absolute = skip.path or skip.source
    return Skip(_display_source(skip.source, root, path), skip.reason, absolute)


def _unique(doc: Document, seen: set[str]) -> Iterator[Document | Skip]:
    if doc.id in seen:
        yield Skip(doc.source, f"duplicate document id {doc.id!r}", doc.source)
    else:
        seen.add(doc.id)
        yield doc
