"""What ingestion produces: a :class:`Document` (the text citations point into) or a
:class:`Skip` (a file or line that could not be read, and why), and text decoding."""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from qa.errors import UnreadableDocument

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".jsonl"}
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
PUBLIC = "public"  # the group every reader of a collection is in


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
    # who may read it (``None``: not said by the document; a folder's ``.qa-access`` or public)
    groups: list[str] | None = None
    tags: list[str] = field(default_factory=list)
    date: str = ""  # ISO date: front matter ``date:``, a JSONL ``date``, else the file's mtime

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that ends up in the index changes."""
        digest = hashlib.sha256()
        for part in (self.title, self.source, self.format, str(self.body_start), self.text):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
        digest.update(json.dumps(self.pages).encode())
        # only when not the default, so documents indexed before access lists keep their hash;
        # the file-time date is left out (touching a file is not a change worth a new row)
        if self.access_groups != [PUBLIC] or self.tags:
            digest.update(json.dumps([self.access_groups, self.tags]).encode())
        return digest.hexdigest()

    @property
    def access_groups(self) -> list[str]:
        """The groups that may read it (``public`` unless said otherwise)."""
        return list(self.groups) if self.groups else [PUBLIC]

    def page_at(self, offset: int) -> int | None:
        """1-based page number holding ``offset`` (PDF only)."""
        if not self.pages:
            return None
        return max(bisect.bisect_right(self.pages, offset) - 1, 0) + 1


@dataclass
class Skip(Exception):
    """A file (or a line of one) that could not be read, and why.

    ``source`` names it as readers may see it (relative to the indexed folder, or as the
    client named an upload); ``path`` is where it is on this machine, for the CLI and the log.
    """

    source: str
    reason: str
    path: str = ""
    failed: bool | None = None  # could not be read (True) or left out (False); None: by reason

    def __str__(self) -> str:
        return f"skipped {self.path or self.source}: {self.reason}"


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


def name_list(value: object) -> list[str]:
    """Group or tag names from a JSON list or a comma-separated string (trimmed, no empties)."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    out = [str(item).strip().strip("'\"").strip() for item in items]
    return list(dict.fromkeys(item for item in out if item))


@contextlib.contextmanager
def unreadable(name: str | None = None) -> Iterator[None]:
    """A :class:`Skip` raised inside, as the write API's :class:`UnreadableDocument` (named
    ``name`` when given, else by the source the skip gives)."""
    try:
        yield
    except Skip as skip:
        raise UnreadableDocument(f"{name or skip.source}: {skip.reason}") from None
