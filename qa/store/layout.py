"""The folders and files of a collection, the one-writer lock and the atomic commit.

Layout of ``index/<collection>/``::

    CURRENT            name of the live generation (replaced atomically: the commit point)
    gen-000007/        one immutable generation: which segments, which of their rows are gone
        manifest.json  format, model identity, metric, counts, settings, segments, checksums
        deletions.json documents deleted from each segment (their rows are hidden)
    segments/
        seg-000004/    immutable passages with their indexes (see qa/store/segment.py)
        .building-<pid>-seg-000005/  a segment being written (removed if its writer died)
    .building-000008/  a generation being written (removed if its writer died)
    .lock              held by the one writer
    uploads/           documents added through the write API (``.records/``: those sent as JSON)

Readers only ever open the generation CURRENT names, so they see a whole generation or
the previous one, never a mix. No pickle: JSON, SQLite, FAISS and ``.npy`` files only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qa.errors import Busy

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
DELETIONS = "deletions.json"
SEGMENTS = "segments"
SEGMENT = "seg-"
LOCK = ".lock"
UPLOADS = "uploads"
RECORDS = ".records"  # documents sent as JSON (see qa/ingest/uploads.py)
GENERATION = "gen-"
BUILDING = ".building-"
_IN_PROGRESS: set[Path] = set()  # segment folders this process is writing (a merge thread's)


# CURRENT's content by its (inode, modification time, size): every request asks for the live
# generation, and under load opening and reading the file was a sixth of the server's time.
# A commit renames a new file over it, so a switch always changes the key.
_LIVE: dict[Path, tuple[tuple[int, int, int], str | None]] = {}


def current_generation(collection_dir: Path) -> str | None:
    """The name of the live generation, or ``None`` when nothing was committed."""
    path = collection_dir / CURRENT
    try:
        stat = os.stat(path)
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        known = _LIVE.get(path)
        if known is not None and known[0] == key:
            return known[1]
        name = path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    _LIVE[path] = (key, name)  # read after the stat: never older than its key
    return name


def list_collections(index_dir: Path) -> list[str]:
    """Names of the collections with a committed generation."""
    if not index_dir.is_dir():
        return []
    return sorted(p.name for p in index_dir.iterdir() if p.is_dir() and (p / CURRENT).exists())


def upload_roots(uploads: Path) -> list[Path]:
    """The folders that hold a collection's uploads: files by name, JSON documents by id hash."""
    return [p.resolve() for p in (uploads, uploads / RECORDS) if p.is_dir()]


def next_generation_name(collection_dir: Path) -> str:
    """The name after every generation and build in the folder (live, old or dead)."""
    numbers = [
        int(p.name.split("-")[-1])
        for p in collection_dir.glob("*-[0-9]*")
        if p.name.split("-")[-1].isdigit()
    ]
    return f"{GENERATION}{max(numbers, default=0) + 1:06d}"


def new_segment_dir(collection_dir: Path) -> tuple[str, Path]:
    """A fresh segment name and the folder it is built in (created here, so two writers in
    one collection, a merge and an update, never pick the same name)."""
    folder = collection_dir / SEGMENTS
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [
            int(p.name.rsplit("-", 1)[-1])
            for p in folder.iterdir()
            if p.name.rsplit("-", 1)[-1].isdigit()
        ]
        name = f"{SEGMENT}{max(numbers, default=0) + 1:06d}"
        building = folder / f"{BUILDING}{os.getpid()}-{name}"
        try:
            building.mkdir()
        except FileExistsError:
            continue
        _IN_PROGRESS.add(building)
        return name, building


def finish_segment_dir(building: Path, name: str) -> Path:
    """Move a written segment to its final name (it is not live until a generation lists it)."""
    target = building.parent / name
    building.rename(target)
    fsync_dir(building.parent)
    _IN_PROGRESS.discard(building)
    return target


def drop_segment_dir(building: Path) -> None:
    """Remove a segment that will not be used (an aborted build or merge)."""
    shutil.rmtree(building, ignore_errors=True)
    _IN_PROGRESS.discard(building)


def _dead_build(path: Path) -> bool:
    """A segment build folder whose writer is gone (another process that died, or not one
    of this process's builds in progress)."""
    owner = path.name[len(BUILDING) :].split("-", 1)[0]
    if not owner.isdigit():
        return True
    if int(owner) == os.getpid():
        return path not in _IN_PROGRESS
    try:
        os.kill(int(owner), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def building_dir(collection_dir: Path, generation: str) -> Path:
    """Where ``generation`` is written before it is renamed into place."""
    return collection_dir / f"{BUILDING}{generation.split('-')[-1]}"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (new, renamed, removed files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Make every file under ``path``, and every folder holding one, durable."""
    for file in sorted(path.rglob("*")):
        if file.is_file():
            with file.open("rb") as handle:
                os.fsync(handle.fileno())
    for folder in sorted({f.parent for f in path.rglob("*")} | {path}):
        fsync_dir(folder)


def write_atomic(target: Path, data: bytes, temporary: Path) -> None:
    """Replace ``target`` with ``data`` all at once: write ``temporary``, fsync, rename, fsync
    the folder."""
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    fsync_dir(target.parent)


def switch_to(collection_dir: Path, generation: str) -> None:
    """Make ``generation`` the live one (the commit point: one atomic rename)."""
    pointer = collection_dir / f"{CURRENT}.tmp.{os.getpid()}"
    write_atomic(collection_dir / CURRENT, (generation + "\n").encode(), pointer)


@contextlib.contextmanager
def writer_lock(collection_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the collection's single-writer lock; :class:`Busy` if another writer has it."""
    collection_dir.mkdir(parents=True, exist_ok=True)
    handle = (collection_dir / LOCK).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(
                f"collection {collection_dir.name!r} is being updated by another writer; "
                "try again when it has finished"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def kept_generations(collection_dir: Path, keep_previous: int = 1) -> list[str]:
    """The live generation and the ``keep_previous`` before it (readers may still use those)."""
    live = current_generation(collection_dir)
    generations = sorted(p.name for p in collection_dir.glob(f"{GENERATION}*") if p.is_dir())
    if live not in generations:
        return []
    position = generations.index(live)
    return generations[max(0, position - keep_previous) : position + 1]


def clean_leftovers(
    collection_dir: Path, keep_previous: int = 1, segments: set[str] | None = None
) -> list[str]:
    """Remove dead builds, old generations and, given the ``segments`` the kept generations
    use, every other segment (call with the writer lock held)."""
    removed = []
    keep = set(kept_generations(collection_dir, keep_previous))
    for path in collection_dir.iterdir():
        dead_build = path.name.startswith(BUILDING)
        old_generation = path.name.startswith(GENERATION) and path.name not in keep
        if path.is_dir() and (dead_build or old_generation):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        elif path.name.startswith(f"{CURRENT}.tmp"):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    if segments is not None and (collection_dir / SEGMENTS).is_dir():
        for path in (collection_dir / SEGMENTS).iterdir():
            building = path.name.startswith(BUILDING)
            if (building and _dead_build(path)) or (not building and path.name not in segments):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(f"{SEGMENTS}/{path.name}")
    for partial in collection_dir.glob(f"{UPLOADS}/**/.*.tmp*"):  # an upload cut off mid-save
        partial.unlink(missing_ok=True)
        removed.append(partial.relative_to(collection_dir).as_posix())
    return removed


def remove_uncommitted(collection_dir: Path) -> None:
    """Remove a collection folder that never had a generation committed (a failed first write).

    Call with the writer lock held; the lock file goes last, while still held.
    """
    if current_generation(collection_dir) is not None or not collection_dir.is_dir():
        return
    for path in collection_dir.iterdir():
        if path.name == LOCK:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    (collection_dir / LOCK).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        collection_dir.rmdir()


def load_array(path: Path) -> np.ndarray:
    """A ``.npy`` file memory-mapped (loaded when empty, which can't be mapped); no pickle.

    Returned as a plain array over the mapping: indexing a ``np.memmap`` costs ~10x more.
    """
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
    except ValueError:
        return np.load(path, allow_pickle=False)


class RowFile:
    """Rows of a 2-D ``.npy`` file read with ``pread``, a few at a time.

    A server reads a hundred vectors per question from files of a gigabyte. Through a memory
    map each row read also maps the pages around it (the kernel's fault-around, which
    ``MADV_RANDOM`` doesn't stop), so the process's resident memory grows by ~64 KB per row
    read; ``pread`` copies only the row.
    """

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb", buffering=0)
        version = np.lib.format.read_magic(self._file)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(self._file)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(self._file)
        if fortran or len(shape) != 2:
            raise ValueError(f"{path}: not a C-ordered 2-D array")
        self.dtype, self.width = dtype, shape[1]
        self._start, self._row_bytes = self._file.tell(), dtype.itemsize * shape[1]

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """The given rows, in the order given."""
        out = np.empty((len(rows), self.width), dtype=self.dtype)
        fd, start, size = self._file.fileno(), self._start, self._row_bytes
        buffer = memoryview(out.reshape(-1).view(np.uint8))  # rows read straight into place
        for position, row in enumerate(np.asarray(rows, dtype=np.int64).tolist()):
            into = buffer[position * size : (position + 1) * size]
            if os.preadv(fd, [into], start + row * size) != size:
                raise EOFError(f"row {row} is past the end of {self._file.name}")
        return out

    def span(self, first: int, last: int) -> np.ndarray:
        """Rows ``first`` to ``last`` (excluded)."""
        size = (last - first) * self._row_bytes
        data = os.pread(self._file.fileno(), size, self._start + first * self._row_bytes)
        return np.frombuffer(data, dtype=self.dtype).reshape(last - first, self.width)

    def close(self) -> None:
        self._file.close()
