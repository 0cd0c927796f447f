"""The on-disk collection: generations of FAISS + BM25 + SQLite + manifest, switched atomically.

Layout of ``index/<collection>/``::

    CURRENT            name of the live generation (replaced atomically: the commit point)
    gen-000007/        one complete, immutable generation
        manifest.json  format, model identity, metric, counts, settings, file checksums
        store.sqlite   documents and passages (text, offsets, hashes, page)
        dense.faiss    IndexIDMap2 over inner-product vectors; ids are passage row ids
        bm25/          bm25s arrays + ids.npy (row -> passage id)
    .building-000008/  a build in progress (removed if its writer died)
    .lock              held by the one writer

Readers only ever open the generation CURRENT names, so they see a whole generation or
the previous one, never a mix. No pickle: JSON, SQLite, FAISS and ``.npy`` files only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.store.lexical import LexicalIndex

FORMAT_VERSION = 2
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
SQLITE = "store.sqlite"
FAISS = "dense.faiss"
BM25 = "bm25"
SENTENCE_VECTORS = "sentences.npy"  # float16, one row per sentence
SENTENCE_SPANS = "sentence_spans.npy"  # int64 (passage id, start, end), sorted by passage id
LOCK = ".lock"
SMALL_INDEX = 200_000  # below this many vectors FAISS searches in one thread

SCHEMA = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    text TEXT NOT NULL,
    body_start INTEGER NOT NULL,
    pages TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,
    document_id TEXT NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL,
    paragraph INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    page INTEGER,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    embed_hash TEXT NOT NULL
);
CREATE INDEX passages_by_document ON passages(document_id, ordinal);
"""


class StoreError(Exception):
    """A collection that can't be loaded or written, with what to do about it."""


class CollectionNotFound(StoreError):
    """No collection of that name has been indexed."""


class BusyError(StoreError):
    """Another writer holds the collection."""


class NothingToIndex(StoreError):
    """An update that would leave a collection without a single passage."""


@dataclass(frozen=True)
class DocumentRow:
    id: str
    title: str
    source: str
    format: str
    text: str
    body_start: int
    pages: list[int]
    content_hash: str


@dataclass(frozen=True)
class PassageRow:
    id: int
    document_id: str
    ordinal: int
    paragraph: int
    char_start: int
    char_end: int
    page: int | None
    text: str
    hash: str
    embed_hash: str
    title: str = ""
    source: str = ""


@dataclass
class GenerationData:
    """Everything a new generation holds, ready to be written."""

    documents: list[DocumentRow]
    passages: list[PassageRow]
    vectors: np.ndarray  # row i is the vector of passages[i]
    lexical_texts: list[str]  # row i is what BM25 indexes for passages[i]
    sentence_spans: np.ndarray  # (passage id, start, end) per sentence; offsets inside the passage
    sentence_vectors: np.ndarray  # row j is the vector of sentence_spans[j]
    manifest: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(target: Path, data: bytes, temporary: Path) -> None:
    """Replace ``target`` with ``data`` all at once: write ``temporary``, fsync, rename, fsync the folder."""
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    _fsync_dir(target.parent)


def _fsync_tree(path: Path) -> None:
    for file in sorted(path.rglob("*")):
        if file.is_file():
            with file.open("rb") as handle:
                os.fsync(handle.fileno())
    for folder in sorted({f.parent for f in path.rglob("*")} | {path}):
        _fsync_dir(folder)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def current_generation(collection_dir: Path) -> str | None:
    """The name of the live generation, or ``None`` when nothing was committed."""
    try:
        name = (collection_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def read_manifest(collection_dir: Path, generation: str | None = None) -> dict[str, Any]:
    """The manifest of ``generation`` (default: the live one); a :class:`StoreError` when
    there is none or it is unreadable."""
    name = collection_dir.name
    generation = generation or current_generation(collection_dir)
    if generation is None:
        raise CollectionNotFound(f"collection {name!r} has not been indexed")
    try:
        manifest = json.loads((collection_dir / generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"collection {name!r} is damaged ({generation}/{MANIFEST} unreadable: {exc}); "
            f"rebuild it with `qa index --full --collection {name} PATH`"
        ) from None
    if not isinstance(manifest, dict):
        raise StoreError(f"collection {name!r} is damaged ({generation}/{MANIFEST} is not an object)")
    return manifest


def list_collections(index_dir: Path) -> list[str]:
    """Names of the collections with a committed generation."""
    if not index_dir.is_dir():
        return []
    return sorted(p.name for p in index_dir.iterdir() if p.is_dir() and (p / CURRENT).exists())


# --------------------------------------------------------------------------- writing


@contextlib.contextmanager
def writer_lock(collection_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the collection's single-writer lock; :class:`BusyError` if another writer has it."""
    collection_dir.mkdir(parents=True, exist_ok=True)
    handle = (collection_dir / LOCK).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise BusyError(
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


def clean_leftovers(collection_dir: Path, keep_previous: int = 1) -> list[str]:
    """Remove dead builds and old generations (call with the writer lock held)."""
    removed = []
    live = current_generation(collection_dir)
    generations = sorted(p.name for p in collection_dir.glob("gen-*") if p.is_dir())
    keep = set()
    if live in generations:
        position = generations.index(live)
        keep = set(generations[max(0, position - keep_previous) : position + 1])
    for path in collection_dir.iterdir():
        dead_build = path.name.startswith(".building-")
        old_generation = path.name.startswith("gen-") and path.name not in keep
        if path.is_dir() and (dead_build or old_generation):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        elif path.name.startswith(f"{CURRENT}.tmp"):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    for partial in collection_dir.glob("uploads/**/.*.tmp*"):  # an upload cut off mid-save
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


def next_generation_name(collection_dir: Path) -> str:
    numbers = [
        int(p.name.split("-")[-1])
        for p in collection_dir.glob("*-[0-9]*")
        if p.name.split("-")[-1].isdigit()
    ]
    return f"gen-{max(numbers, default=0) + 1:06d}"


def _write_sqlite(path: Path, data: GenerationData) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        connection.executemany(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?)",
            (
                (d.id, d.title, d.source, d.format, d.text, d.body_start, json.dumps(d.pages), d.content_hash)
                for d in data.documents
            ),
        )
        connection.executemany(
            "INSERT INTO passages VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (p.id, p.document_id, p.ordinal, p.paragraph, p.char_start, p.char_end, p.page, p.text, p.hash, p.embed_hash)
                for p in data.passages
            ),
        )
        connection.commit()
    finally:
        connection.close()


def _write_faiss(path: Path, vectors: np.ndarray, ids: np.ndarray, dimension: int) -> None:
    import faiss

    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    faiss.write_index(index, str(path))


def write_generation(
    collection_dir: Path, data: GenerationData, hook: Any = None, before_switch: Any = None
) -> str:
    """Write ``data`` as a new generation and make it live. Call with the writer lock held.

    ``hook(stage)`` is called between steps (used by tests to interrupt a build);
    ``before_switch()`` once everything is on disk, just before the switch.
    """
    step = hook or (lambda stage: None)
    collection_dir.mkdir(parents=True, exist_ok=True)
    name = next_generation_name(collection_dir)
    building = collection_dir / f".building-{name.split('-')[-1]}"
    building.mkdir()
    ids = np.asarray([p.id for p in data.passages], dtype=np.int64)
    step("sqlite")
    _write_sqlite(building / SQLITE, data)
    step("faiss")
    _write_faiss(building / FAISS, data.vectors, ids, int(data.manifest["model"]["dimension"]))
    step("bm25")
    LexicalIndex.build(data.lexical_texts, ids).save(building / BM25)
    step("sentences")
    order = np.lexsort((data.sentence_spans[:, 1], data.sentence_spans[:, 0])) if len(data.sentence_spans) else []
    spans = np.ascontiguousarray(data.sentence_spans[order], dtype=np.int64).reshape(-1, 3)
    np.save(building / SENTENCE_SPANS, spans, allow_pickle=False)
    vectors = np.asarray(data.sentence_vectors, dtype=np.float16).reshape(len(data.sentence_spans), -1)
    np.save(building / SENTENCE_VECTORS, np.ascontiguousarray(vectors[order]), allow_pickle=False)
    step("manifest")
    manifest = dict(data.manifest)
    manifest.update(
        format_version=FORMAT_VERSION,
        generation=name,
        metric="inner_product",
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        counts={"documents": len(data.documents), "passages": len(data.passages)},
        files={p.relative_to(building).as_posix(): _sha256(p) for p in _files(building)},
    )
    (building / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    _fsync_tree(building)
    step("rename")
    building.rename(collection_dir / name)
    _fsync_dir(collection_dir)
    if before_switch is not None:
        before_switch()
    step("switch")
    pointer = collection_dir / f"{CURRENT}.tmp.{os.getpid()}"
    write_atomic(collection_dir / CURRENT, (name + "\n").encode(), pointer)
    step("switched")
    clean_leftovers(collection_dir)
    return name


# --------------------------------------------------------------------------- reading


class Collection:
    """One loaded, read-only generation of a collection."""

    def __init__(self, name: str, path: Path, manifest: dict[str, Any], dense: Any, lexical: LexicalIndex) -> None:
        self.name = name
        self.path = path
        self.manifest = manifest
        self.dense = dense
        self.lexical = lexical
        self._sentence_spans = _load_array(path / SENTENCE_SPANS)
        self._sentence_keys = np.ascontiguousarray(self._sentence_spans[:, 0]) if len(self._sentence_spans) else np.zeros(0, dtype=np.int64)
        self._sentence_vectors = _load_array(path / SENTENCE_VECTORS)
        self._db = sqlite3.connect(f"file:{path / SQLITE}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._db_lock = threading.Lock()
        roots = [Path(p) for p in manifest.get("sources", []) if str(p).startswith("/")]
        self._roots = [*roots, path.parent / "uploads"]

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        collection_dir: Path,
        expect_model: dict[str, Any] | None = None,
        verify: bool = True,
    ) -> Collection:
        """Load the live generation, checking its manifest, checksums and model."""
        import faiss

        name = collection_dir.name
        generation = current_generation(collection_dir)
        if generation is None:
            raise CollectionNotFound(f"collection {name!r} has not been indexed")
        path = collection_dir / generation
        manifest = read_manifest(collection_dir, generation)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise StoreError(
                f"collection {name!r} was written in format {manifest.get('format_version')}, "
                f"this version reads format {FORMAT_VERSION}; rebuild it with `qa index --full`"
            )
        if expect_model is not None:
            check_model(name, manifest, expect_model)
        if verify:
            for relative, checksum in manifest.get("files", {}).items():
                file = path / relative
                if not file.exists() or _sha256(file) != checksum:
                    raise StoreError(
                        f"collection {name!r} is corrupt: {generation}/{relative} is missing or "
                        f"its checksum does not match the manifest; rebuild it with "
                        f"`qa index --full --collection {name} PATH`"
                    )
        try:
            dense = faiss.read_index(str(path / FAISS))
            lexical = LexicalIndex.load(path / BM25)
            return cls(name, path, manifest, dense, lexical)
        except Exception as exc:  # noqa: BLE001 - any failure to load is reported as a damaged store
            raise StoreError(f"collection {name!r} could not be loaded: {exc}; rebuild it with `qa index --full`") from None

    def close(self) -> None:
        with self._db_lock:
            self._db.close()

    # ------------------------------------------------------------------ facts
    @property
    def generation(self) -> str:
        return str(self.manifest["generation"])

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.manifest["counts"])

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._db_lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def public_source(self, source: str) -> str:
        """``source`` as readers may see it: never an absolute path on this machine.

        Sources are stored relative to the indexed folder; collections built before that
        stored absolute paths, which are shown relative to their folder here.
        """
        if not source.startswith("/"):
            return source
        for root in self._roots:
            prefix = str(root)
            if source == prefix or source.startswith((prefix + "/", prefix + ":")):
                return root.name + source[len(prefix) :]
        return Path(source.split(":", 1)[0]).name

    _PASSAGE_SQL = (
        "SELECT p.id, p.document_id, p.ordinal, p.paragraph, p.char_start, p.char_end, p.page, "
        "p.text, p.hash, p.embed_hash, d.title, d.source FROM passages p JOIN documents d "
        "ON d.id = p.document_id"
    )

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        """Passages by id (ids not in this generation are absent from the result)."""
        wanted = [int(i) for i in ids]
        rows: dict[int, PassageRow] = {}
        for begin in range(0, len(wanted), 500):
            chunk = wanted[begin : begin + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._query(f"{self._PASSAGE_SQL} WHERE p.id IN ({marks})", chunk):
                rows[row[0]] = self._passage_row(row)
        return rows

    def passage(self, passage_id: int) -> PassageRow | None:
        return self.passages([passage_id]).get(passage_id)

    def neighbours(self, passage: PassageRow, before: int = 1, after: int = 1) -> list[PassageRow]:
        """The passage with up to ``before``/``after`` passages around it in its document."""
        rows = self._query(
            f"{self._PASSAGE_SQL} WHERE p.document_id = ? AND p.ordinal BETWEEN ? AND ? ORDER BY p.ordinal",
            (passage.document_id, passage.ordinal - before, passage.ordinal + after),
        )
        return [self._passage_row(row) for row in rows]

    def _passage_row(self, row: tuple[Any, ...]) -> PassageRow:
        return PassageRow(*row[:-1], source=self.public_source(row[-1]))

    def document(self, document_id: str) -> DocumentRow | None:
        rows = self._query(
            "SELECT id, title, source, format, text, body_start, pages, content_hash FROM documents WHERE id = ?",
            (document_id,),
        )
        if not rows:
            return None
        row = list(rows[0])
        row[6] = json.loads(row[6])
        row[2] = self.public_source(row[2])
        return DocumentRow(*row)

    def document_hashes(self) -> dict[str, str]:
        """``{document_id: content_hash}`` for every document."""
        return dict(self._query("SELECT id, content_hash FROM documents"))  # type: ignore[arg-type]

    def iter_documents(self, ids: Iterable[str]) -> Iterator[DocumentRow]:
        for document_id in ids:
            row = self.document(document_id)
            if row is not None:
                yield row

    def passages_of(self, document_ids: Iterable[str]) -> list[PassageRow]:
        """All passages of the given documents, in document then passage order."""
        out: list[PassageRow] = []
        wanted = list(document_ids)
        for begin in range(0, len(wanted), 500):
            chunk = wanted[begin : begin + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"{self._PASSAGE_SQL} WHERE p.document_id IN ({marks}) ORDER BY p.document_id, p.ordinal", chunk
            )
            out.extend(self._passage_row(row) for row in rows)
        return out

    def ids_by_embed_hash(self, hashes: Iterable[str]) -> dict[str, int]:
        """A passage id for each embedded-text hash already in this generation."""
        wanted = sorted(set(hashes))
        found: dict[str, int] = {}
        for begin in range(0, len(wanted), 500):
            chunk = wanted[begin : begin + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT embed_hash, MIN(id) FROM passages WHERE embed_hash IN ({marks}) GROUP BY embed_hash"
            found.update(self._query(sql, chunk))  # type: ignore[arg-type]
        return found

    def sentences(self, ids: Iterable[int]) -> dict[int, tuple[list[tuple[int, int]], np.ndarray]]:
        """``{passage_id: (spans, vectors)}`` of the passages' sentences (spans inside the passage)."""
        wanted = np.fromiter((int(i) for i in ids), dtype=np.int64)
        firsts = np.searchsorted(self._sentence_keys, wanted)
        lasts = np.searchsorted(self._sentence_keys, wanted + 1)
        out: dict[int, tuple[list[tuple[int, int]], np.ndarray]] = {}
        for passage_id, first, last in zip(wanted.tolist(), firsts.tolist(), lasts.tolist()):
            if last > first:
                spans = self._sentence_spans[first:last, 1:].tolist()
                out[passage_id] = ([(a, b) for a, b in spans], self._sentence_vectors[first:last].astype(np.float32))
        return out

    def vectors(self, ids: Iterable[int]) -> np.ndarray:
        """Stored vectors of the given passage ids."""
        wanted = np.fromiter((int(i) for i in ids), dtype=np.int64)
        if not len(wanted):
            return np.zeros((0, self.dense.d), dtype=np.float32)
        return self.dense.reconstruct_batch(wanted)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of every passage, in the FAISS index's order."""
        import faiss

        ids = faiss.vector_to_array(self.dense.id_map).astype(np.int64)
        if not len(ids):
            return ids, np.zeros((0, self.dense.d), dtype=np.float32)
        return ids, self.dense.index.reconstruct_n(0, self.dense.ntotal)

    def dense_search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` passage ids and cosine scores for each query vector."""
        import faiss

        k = min(k, self.dense.ntotal)
        if k <= 0:
            empty = np.zeros((len(vectors), 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        if self.dense.ntotal < SMALL_INDEX:
            # a few queries over a small index: OpenMP threads cost more than they save (the
            # setting is per calling thread, and requests run on several)
            faiss.omp_set_num_threads(1)
        scores, ids = self.dense.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return ids, scores


def _load_array(path: Path) -> np.ndarray:
    """A ``.npy`` file memory-mapped (loaded when empty, which can't be mapped); no pickle."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:
        return np.load(path, allow_pickle=False)


def check_model(name: str, manifest: dict[str, Any], model: dict[str, Any]) -> None:
    """Refuse to search an index with vectors from another model."""
    built = manifest.get("model", {})
    if built.get("dimension") != model.get("dimension") or built.get("fingerprint") != model.get("fingerprint"):
        raise StoreError(
            f"collection {name!r} was built with the model {built.get('name')!r} "
            f"({built.get('dimension')}-d, fingerprint {str(built.get('fingerprint'))[:12]}), "
            f"but the configured model is {model.get('name')!r} ({model.get('dimension')}-d, "
            f"fingerprint {str(model.get('fingerprint'))[:12]}); use the same --model/QA_MODEL, "
            f"or rebuild with `qa index --full --collection {name} PATH`"
        )
