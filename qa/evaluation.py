"""Offline evaluation: datasets, cached collections, retrieval runs, metrics, reports, the gate.

(first cut: only the collection cache, so the SciFact build can start.)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.store import current_generation


def _hash_paths(paths: Sequence[Path]) -> str:
    """SHA-256 over the files under ``paths`` (names relative to each root, and contents)."""
    digest = hashlib.sha256()
    for root in sorted(Path(p).resolve() for p in paths):
        files = [root] if root.is_file() else sorted(
            f for f in root.rglob("*") if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts)
        )
        for file in files:
            digest.update((file.name if file == root else file.relative_to(root).as_posix()).encode())
            digest.update(b"\x00")
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\x00")
    return digest.hexdigest()


def collection_key(corpus_paths: Sequence[Path], service: Any) -> str:
    parts = {
        "corpus": _hash_paths(corpus_paths),
        "model": service.embedder.identity.fingerprint,
        "passages": service.indexer.passage_settings(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def collection_name(dataset_name: str, key: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset_name).strip("-.")[:40] or "dataset"
    return f"eval-{slug}-{key[:12]}"


def ensure_collection(service: Any, dataset_name: str, corpus_paths: Sequence[Path], progress: bool = True) -> str:
    key = collection_key(corpus_paths, service)
    name = collection_name(dataset_name, key)
    if current_generation(service.settings.collection_dir(name)) is None:
        service.index(list(corpus_paths), name, progress=progress)
    return name
