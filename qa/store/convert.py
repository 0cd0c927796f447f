"""Collections written before segments (format 2: one generation = one SQLite file, one flat
FAISS index, bm25s arrays) are converted once, when first loaded: their passages, ids,
vectors and sentence vectors become one segment of a new generation (nothing is embedded
again; BM25 term frequencies are counted from the stored text). The switch is the usual
atomic one, so a conversion cut short leaves the old generation live and is done again."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from qa.errors import StoreError
from qa.store.dense import DenseParams
from qa.store.layout import (
    current_generation,
    drop_segment_dir,
    finish_segment_dir,
    load_array,
    new_segment_dir,
    writer_lock,
)
from qa.store.manifest import LEGACY_VERSION, BuildInfo, read_manifest
from qa.store.segment_writer import SegmentWriter
from qa.store.sql import Database, DocumentRow, PassageRow, document_row
from qa.store.writer import commit_generation, segment_ref

log = logging.getLogger("qa.store.convert")

CHUNK = 20_000  # passages converted at a time


def convert_legacy(collection_dir: Path, generation: str, locked: bool = False) -> str:
    """Convert the live format-2 ``generation`` into a format-3 one; the new generation."""
    name = collection_dir.name
    log.warning(
        "collection %r is in format 2 (one flat index): converting it once to segments "
        "(vectors and ids kept, nothing embedded again)",
        name,
    )
    with contextlib.nullcontext() if locked else writer_lock(collection_dir):
        if current_generation(collection_dir) != generation:
            return str(current_generation(collection_dir))  # another process converted it
        manifest = read_manifest(collection_dir, generation)
        if manifest.format_version != LEGACY_VERSION:
            return generation
        segment, building = _write_segment(collection_dir / generation, manifest)
        finish_segment_dir(building, segment.name)
        build = BuildInfo(**{key: getattr(manifest, key) for key in BuildInfo.model_fields})
        return commit_generation(
            collection_dir,
            build,
            [segment_ref(collection_dir, segment)],
            {},
            documents=manifest.counts.documents,
        )


def _write_segment(old: Path, manifest: BuildInfo) -> tuple[object, Path]:
    """One segment holding everything the old generation holds."""
    import faiss

    try:
        index = faiss.read_index(str(old / "dense.faiss"))
        db = Database(old / "store.sqlite")
    except Exception as exc:  # noqa: BLE001 - any failure to read is a damaged store
        raise StoreError(f"collection {old.parent.name!r} could not be converted: {exc}") from None
    spans = load_array(old / "sentence_spans.npy")
    sentences = load_array(old / "sentences.npy")
    keys = np.ascontiguousarray(spans[:, 0]) if len(spans) else np.zeros(0, np.int64)
    name, building = new_segment_dir(old.parent)
    try:
        dimension = manifest.model.dimension
        writer = SegmentWriter(building, dimension, DenseParams(), sentence_width=dimension)
        titles: dict[str, str] = {}
        ids = [r["id"] for r in db.select("SELECT id FROM passages ORDER BY id")]
        for begin in range(0, len(ids), CHUNK):
            chunk = ids[begin : begin + CHUNK]
            passages = [
                PassageRow(**dict(r))
                for r in db.select_in("SELECT * FROM passages WHERE id IN ({marks})", chunk)
            ]
            passages.sort(key=lambda p: p.id)
            wanted = sorted({p.document_id for p in passages} - set(titles))
            documents: list[DocumentRow] = [
                document_row(r, r["source"])
                for r in db.select_in("SELECT * FROM documents WHERE id IN ({marks})", wanted)
            ]
            titles.update({d.id: d.title for d in documents})
            first, last = np.searchsorted(keys, chunk[0]), np.searchsorted(keys, chunk[-1] + 1)
            titled = manifest.passage_settings.title_in_embedding
            writer.add(
                documents,
                passages,
                index.reconstruct_batch(np.asarray(chunk, dtype=np.int64)),
                np.asarray(spans[first:last]),
                np.asarray(sentences[first:last]),
                [f"{titles[p.document_id]}\n{p.text}" if titled else p.text for p in passages],
            )
        info = writer.finish(name, lambda stage: None)
    except BaseException:
        drop_segment_dir(building)
        raise
    finally:
        db.close()
    return info, building
