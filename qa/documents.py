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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
    """A file (or a line of one) that could not be read, and why."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.source}: {self.reason}"


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


_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---[ \t]*(\n|\Z)", re.DOTALL)


def read_markdown(path: Path, doc_id: str, data: bytes) -> Document:
    """Markdown: YAML front matter's ``title``, else the first heading or line, is the title."""
    text = decode_text(data, str(path))
    start, title = 0, ""
    front = _FRONT_MATTER.match(text)
    if front:
        start = front.end()
        found = re.search(r"^title:\s*['\"]?(.+?)['\"]?\s*$", front.group(1), re.MULTILINE)
        title = found.group(1) if found else ""
    line, end = _first_line(text, start)
    if not title:
        title = re.sub(r"^#+\s*|\s*#+$", "", line) if line.startswith("#") else line
        start = end
    elif line.startswith("#") and re.sub(r"^#+\s*", "", line).strip() == title:
        start = end
    if not text[start:].strip() and not title:
        raise Skip(str(path), "empty file")
    return Document(doc_id, title.strip()[:300], str(path), text, "markdown", body_start=start)


_BLOCK_TAGS = [
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "h1", "h2",
    "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody",
    "tr", "td", "th", "blockquote", "pre", "figure", "figcaption", "address", "hr", "form",
    "fieldset",
]
_DROP_TAGS = ["script", "style", "noscript", "template", "nav", "footer", "aside", "svg", "head"]


def html_to_text(markup: str) -> tuple[str, str]:
    """Visible text of an HTML page, one block per paragraph, and its title."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title_tag = soup.find("title")
    h1 = soup.find("h1")
    title = (title_tag.get_text(" ", strip=True) if title_tag else "") or (
        h1.get_text(" ", strip=True) if h1 else ""
    )
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\u2028")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\u2029")
        tag.insert_after("\u2029")
    raw = soup.get_text()
    blocks = []
    for block in raw.split("\u2029"):
        lines = [" ".join(part.split()) for part in block.split("\u2028")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            blocks.append(joined)
    return "\n\n".join(blocks), " ".join(title.split())


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
        pages_text = [normalise_newlines(page.extract_text() or "") for page in reader.pages]
        meta_title = ((reader.metadata or {}).get("/Title") or "").strip()
    except Skip:
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


def read_file(path: Path, doc_id: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document:
    """Read one non-JSONL file; raises :class:`Skip` when it can't be indexed."""
    suffix = path.suffix.lower()
    source = str(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise Skip(source, f"unsupported file type {suffix or '(none)'!r}")
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


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root`` in a stable order, following symlinks without looping."""
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
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(Path(entry.path))
            else:
                yield Path(entry.path)
        stack.extend(reversed(subfolders))


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
    paths: list[Path], max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Iterator[Document | Skip]:
    """Every document under ``paths`` (files or folders, recursively), and every skip.

    A folder's documents are identified by their path relative to it; a file given
    directly by its name; a JSONL document by its ``_id``. A second document with an
    id already seen is skipped.
    """
    seen: set[str] = set()
    for root in paths:
        root = Path(root)
        if not root.exists():
            yield Skip(str(root), "no such file or folder")
            continue
        files = [root] if root.is_file() else list(_walk(root))
        for path in files:
            doc_id = path.name if path == root else path.relative_to(root).as_posix()
            if path.is_symlink() and not path.exists():
                yield Skip(str(path), _unreachable(path))
                continue
            if (problem := _special_file(path)) is not None:
                yield Skip(str(path), problem)
                continue
            if path.suffix.lower() == ".jsonl":
                errors: list[Skip] = []
                try:
                    for doc in read_jsonl(path, errors):
                        yield from _unique(doc, seen)
                except OSError as exc:
                    yield Skip(str(path), f"unreadable ({exc.strerror or exc})")
                yield from errors
                continue
            try:
                doc = read_file(path, doc_id, max_bytes)
            except Skip as skip:
                yield skip
                continue
            yield from _unique(doc, seen)


def _unique(doc: Document, seen: set[str]) -> Iterator[Document | Skip]:
    if doc.id in seen:
        yield Skip(doc.source, f"duplicate document id {doc.id!r}")
    else:
        seen.add(doc.id)
        yield doc
