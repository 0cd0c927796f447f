"""Checks made before a generation is searched: the model is the configured one, and every
file is the one the manifest (and each segment's ``segment.json``) describes."""

from __future__ import annotations

from pathlib import Path

from qa.errors import StoreError
from qa.store.layout import SEGMENTS, sha256_file
from qa.store.manifest import Manifest, ModelInfo
from qa.store.segment import SEGMENT_JSON, read_info

# Files up to this size are hashed at every load; larger ones (a million passages' index and
# vectors) were hashed when written and are checked by size, so start-up stays within seconds.
HASH_AT_LOAD_BYTES = 64 * 2**20


def _corrupt(name: str, where: str) -> StoreError:
    return StoreError(
        f"collection {name!r} is corrupt: {where} is missing or its checksum does not match "
        f"the manifest; rebuild it with `qa index --full --collection {name} PATH`"
    )


def verify_generation(name: str, collection_dir: Path, manifest: Manifest) -> None:
    """Every file of the generation and its segments is there, with its checksum (or size)."""
    path = collection_dir / manifest.generation
    for relative, checksum in manifest.files.items():
        file = path / relative
        if not file.exists() or sha256_file(file) != checksum:
            raise _corrupt(name, f"{path.name}/{relative}")
    for segment in manifest.segments:
        folder = collection_dir / SEGMENTS / segment.name
        description = folder / SEGMENT_JSON
        if not description.exists() or sha256_file(description) != segment.checksum:
            raise _corrupt(name, f"{SEGMENTS}/{segment.name}/{SEGMENT_JSON}")
        info = read_info(folder)
        for relative, checksum in info.files.items():
            file = folder / relative
            where = f"{SEGMENTS}/{segment.name}/{relative}"
            if not file.exists() or file.stat().st_size != info.sizes.get(relative):
                raise _corrupt(name, where)
            if file.stat().st_size <= HASH_AT_LOAD_BYTES and sha256_file(file) != checksum:
                raise _corrupt(name, where)


def check_model(name: str, built: ModelInfo, configured: ModelInfo) -> None:
    """Refuse to search an index with vectors from another model."""
    if built.dimension != configured.dimension or built.fingerprint != configured.fingerprint:
        raise StoreError(
            f"collection {name!r} was built with the model {built.name!r} "
            f"({built.dimension}-d, fingerprint {built.fingerprint[:12]}), "
            f"but the configured model is {configured.name!r} ({configured.dimension}-d, "
            f"fingerprint {configured.fingerprint[:12]}); use the same --model/QA_MODEL, "
            f"or rebuild with `qa index --full --collection {name} PATH`"
        )
