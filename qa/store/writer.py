"""Committing a generation: segments already on disk plus a deletion list, written beside the
live generation and switched in with one atomic rename."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from qa.store.layout import (
    DELETIONS,
    SEGMENTS,
    building_dir,
    clean_leftovers,
    fsync_dir,
    fsync_tree,
    kept_generations,
    next_generation_name,
    sha256_file,
    switch_to,
)
from qa.store.manifest import (
    FORMAT_VERSION,
    METRIC,
    BuildInfo,
    Counts,
    Manifest,
    SegmentRef,
    read_manifest,
    write_manifest,
)
from qa.store.segment import SEGMENT_JSON, SegmentInfo

log = logging.getLogger("qa.store.writer")

Hook = Callable[[str], None]  # called with each stage's name (tests interrupt a build there)
Commit = Callable[[], None]  # runs once a new generation is written, just before it goes live
Deletions = Mapping[str, list[str]]  # segment name -> ids of the documents deleted from it


def _no_hook(stage: str) -> None:
    """The hook when none is given."""


def segment_ref(collection_dir: Path, info: SegmentInfo, deleted: int = 0) -> SegmentRef:
    """How a generation lists a written segment."""
    folder = collection_dir / SEGMENTS / info.name
    return SegmentRef(
        name=info.name,
        passages=info.passages,
        deleted=deleted,
        dense=info.dense.kind,
        checksum=sha256_file(folder / SEGMENT_JSON),
    )


def commit_generation(
    collection_dir: Path,
    build: BuildInfo,
    segments: list[SegmentRef],
    deletions: Deletions,
    documents: int,
    dense_index: str = "auto",
    hook: Hook | None = None,
    before_switch: Commit | None = None,
) -> str:
    """Write a generation listing ``segments`` (already on disk) and make it live. Call with
    the writer lock held.

    ``hook(stage)`` is called between steps (used by tests to interrupt a build);
    ``before_switch()`` once everything is on disk, just before the switch.
    """
    step = hook or _no_hook
    name = next_generation_name(collection_dir)
    building = building_dir(collection_dir, name)
    building.mkdir()
    kept = {s.name for s in segments}
    hidden = {k: sorted(set(v)) for k, v in sorted(deletions.items()) if k in kept and v}
    (building / DELETIONS).write_text(json.dumps(hidden, indent=1), encoding="utf-8")
    step("manifest")
    fields = {key: getattr(build, key) for key in BuildInfo.model_fields}  # a Manifest has more
    manifest = Manifest(
        **fields,
        format_version=FORMAT_VERSION,
        generation=name,
        metric=METRIC,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        counts=Counts(documents=documents, passages=sum(s.live for s in segments)),
        files={DELETIONS: sha256_file(building / DELETIONS)},
        dense_index=dense_index,
        segments=segments,
    )
    write_manifest(building, manifest)
    fsync_tree(building)
    step("rename")
    building.rename(collection_dir / name)
    fsync_dir(collection_dir)
    if before_switch is not None:
        before_switch()
    step("switch")
    switch_to(collection_dir, name)
    step("switched")
    clean_up(collection_dir)
    return name


def clean_up(collection_dir: Path) -> list[str]:
    """Remove dead builds, old generations and the segments no kept generation uses."""
    used: set[str] = set()
    for generation in kept_generations(collection_dir):
        try:
            used |= {s.name for s in read_manifest(collection_dir, generation).segments}
        except Exception:  # noqa: BLE001 - an unreadable old generation keeps nothing alive
            log.warning("generation %s unreadable; its segments are not kept", generation)
    return clean_leftovers(collection_dir, segments=used)
