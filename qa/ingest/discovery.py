"""Walk the files and folders a user gave: every document, and every file skipped with why.

Symbolic links are followed only while they stay inside the folder given; sources are named
relative to it (``corpus/notes.txt``), never by their absolute path on this machine.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from qa.ingest.documents import DEFAULT_MAX_FILE_BYTES, Document, Skip, name_list
from qa.ingest.readers import read_file, read_jsonl
from qa.ingest.selection import Ignore, Selection, read_ignore

if TYPE_CHECKING:
    from qa.ingest.parsing import ParserPool


ACCESS_FILE = ".qa-access"  # groups for every document below its folder (the nearest one wins)
ACCESS_FILE_MAX_BYTES = 64 * 1024
OUTSIDE = "symbolic link to a path outside the indexed folder; not followed (use --follow-links to index it)"


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symbolic links resolved) lies within ``root``."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return True  # a loop or a dangling link: reported as such by the caller
    return resolved == root or root in resolved.parents


def _walk(
    root: Path, follow_links: bool = False, selection: Selection | None = None
) -> Iterator[Path | Skip]:
    """Files under ``root`` in a stable order, without looping.

    Symbolic links are followed only while they stay inside ``root`` (a link out of it is
    a :class:`Skip`), unless ``follow_links``. Files and folders the ``selection`` or a
    ``.qaignore`` leaves out are a :class:`Skip` saying which pattern did (a folder once,
    not each file in it).
    """
    real_root = root.resolve()
    selection = selection or Selection()
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Path, tuple[Ignore, ...]]] = [(root, ())]
    while stack:
        folder, ignores = stack.pop()
        try:
            info = folder.stat()
        except OSError:
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            continue
        seen.add(key)
        inside = "" if folder == root else folder.relative_to(root).as_posix()
        shown = _display(root, folder) if inside else root.name
        own = read_ignore(folder, inside, shown)
        ignores = (*ignores, own) if own is not None else ignores
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
            relative = f"{inside}/{entry.name}" if inside else entry.name
            reason = selection.reason(relative, is_dir, ignores)
            if reason is not None:
                yield Skip(_display(root, path) + "/" * is_dir, reason, str(path))
            elif is_dir:
                subfolders.append((path, ignores))
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
    selection: Selection | None = None,
) -> Iterator[Document | Skip]:
    """Every document under ``paths`` (files or folders, recursively), and every skip.

    A folder's documents are identified by their path relative to it; a file given
    directly by its name; a JSONL document by its ``_id``. A second document with an
    id already seen is skipped. Sources are named relative to the folder given (see
    :func:`_display`), never by their absolute path on this machine. With a ``parser``
    (:class:`qa.ingest.parsing.ParserPool`) files are parsed in its worker processes, several at
    once, each within its time and memory budget; results keep their order. A folder's files
    are filtered by ``selection`` and its ``.qaignore`` files (a file named directly is not).
    """
    located: deque[tuple[Path, Path]] = deque()  # (root, file) of each item, in order

    def items() -> Iterator[tuple[Path, str] | Document | Skip]:
        for root in map(Path, paths):
            if not root.exists():
                located.append((root, root))
                yield Skip(root.name or str(root), "no such file or folder", str(root))
                continue
            files = (
                [root] if root.is_file() else list(_walk(root, follow_links, selection))
            )  # listed, then read
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
    folders: dict[Path, list[str] | None] = {}
    for result in results:
        root, path = located.popleft()
        if isinstance(result, Skip):
            yield result if result.path else _renamed(result, root, path)
        else:
            result.source = _display_source(result.source, root, path)
            yield from _unique(_with_folder(result, root, path, folders), seen)


def _with_folder(
    document: Document, root: Path, path: Path, folders: dict[Path, list[str] | None]
) -> Document:
    """The document with its folder's access list (when it names no groups itself) and, when
    it gives no date, its file's modification time."""
    if document.groups is None:
        folder = path.parent
        stop = root if root.is_dir() else path.parent
        while True:
            if folder not in folders:
                folders[folder] = _access_file(folder / ACCESS_FILE)
            if folders[folder] is not None or folder == stop or stop not in folder.parents:
                break
            folder = folder.parent
        document.groups = folders[folder]
    if not document.date:
        with contextlib.suppress(OSError):
            stamp = path.stat().st_mtime
            document.date = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
    return document


def _access_file(path: Path) -> list[str] | None:
    """The groups a ``.qa-access`` file names (one per line or comma-separated, ``#``
    comments), or ``None`` when there is no such (regular) file."""
    try:
        if path.is_symlink() or not path.is_file():
            return None
        with path.open("rb") as handle:
            text = handle.read(ACCESS_FILE_MAX_BYTES).decode("utf-8", "replace")
    except OSError:
        return None
    names = [line.split("#", 1)[0] for line in text.splitlines()]
    return name_list(",".join(names)) or None


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
