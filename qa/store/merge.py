"""Deletions and merges: which segments a generation hides rows in, and when segments are
rewritten into bigger ones.

Size-tiered policy: segments are put in tiers by their live rows (below ``floor`` all share
the lowest tier, then one tier per factor of ``factor``); when a tier holds ``factor``
segments they are merged into one, so a collection keeps O(log n) segments and each row is
rewritten O(log n) times. A segment with ``max_deleted`` of its rows deleted is rewritten
alone. A merge is built without the writer lock, from immutable segments, while readers and
writers go on; it is committed under the lock only if its segments are all still live
(documents deleted meanwhile are hidden in the merged segment).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from qa.store.collection import Collection
from qa.store.dense import DenseParams
from qa.store.layout import (
    SEGMENTS,
    drop_segment_dir,
    finish_segment_dir,
    new_segment_dir,
    writer_lock,
)
from qa.store.manifest import SegmentRef, read_manifest
from qa.store.merge_rows import Source, copy_live_rows
from qa.store.segment import SegmentInfo
from qa.store.segment_writer import SegmentWriter
from qa.store.writer import Hook, commit_generation, segment_ref

log = logging.getLogger("qa.store.merge")


@dataclass(frozen=True)
class MergePolicy:
    """When segments are merged (QA_MERGE_FACTOR; the rest are fixed)."""

    factor: int = 4  # segments of one tier merged together (Lucene's default is 10; fewer
    # segments keep queries fast on 2 cores, and each row is still rewritten O(log n) times)
    floor: int = 10_000  # segments smaller than this share the lowest tier
    max_deleted: float = 0.3  # share of deleted rows that makes a segment worth rewriting

    def tier(self, rows: int) -> int:
        """The size tier of a segment with ``rows`` live rows."""
        if rows < self.floor:
            return 0
        return 1 + int(math.log(rows / self.floor, self.factor))

    def pick(self, segments: list[SegmentRef], everything: bool = False) -> list[str]:
        """The segments to merge next (none when the collection is in shape).

        ``everything``: all segments into one (``qa optimize --full``), when there is more
        than one or any row is deleted.
        """
        if everything:
            if len(segments) > 1 or any(s.deleted for s in segments):
                return [s.name for s in segments]
            return []
        tiers: dict[int, list[SegmentRef]] = {}
        for segment in segments:
            tiers.setdefault(self.tier(segment.live), []).append(segment)
        for tier in sorted(tiers):
            if len(tiers[tier]) >= self.factor:
                return [s.name for s in tiers[tier]]
        for segment in segments:
            if segment.passages and segment.deleted / segment.passages >= self.max_deleted:
                return [segment.name]
        return []


@dataclass
class MergeReport:
    """What ``qa optimize`` (or the background merger) did."""

    collection: str
    merges: list[list[str]] = field(default_factory=list)  # the segments merged, each time
    segments_before: int = 0
    segments_after: int = 0
    generation: str | None = None

    def summary(self) -> str:
        """One line for the terminal."""
        rows = sum(len(m) for m in self.merges)
        return (
            f"{len(self.merges)} merge(s) of {rows} segments: {self.segments_before} -> "
            f"{self.segments_after} segments"
        )


def hide(
    previous: Collection, documents: Iterable[str]
) -> tuple[list[SegmentRef], dict[str, list[str]]]:
    """The previous generation's segments with ``documents`` hidden too, and the deletion
    lists; a segment left with no live row is dropped."""
    documents = list(documents)
    where = previous.document_segments(documents)
    deletions = {name: set(ids) for name, ids in previous.deletions.items()}
    for document in documents:
        if document in where:
            deletions.setdefault(where[document], set()).add(document)
    refs = []
    for ref, segment in zip(previous.manifest.segments, previous.segments):
        gone = sorted(deletions.get(ref.name, ()))
        if len(gone) != len(previous.deletions.get(ref.name, ())):
            rows = segment.db.select_in(
                "SELECT COUNT(*) AS n FROM passages WHERE document_id IN ({marks})", gone
            )
            ref = ref.model_copy(update={"deleted": sum(r["n"] for r in rows)})
        if ref.live > 0:
            refs.append(ref)
        else:
            deletions.pop(ref.name, None)
    return refs, {name: sorted(ids) for name, ids in deletions.items()}


def build_merged(
    collection: Collection, names: list[str], params: DenseParams, step: Hook
) -> tuple[SegmentInfo, Path]:
    """Write the live rows of segments ``names`` into a new segment (not yet in any
    generation); its info and the folder it waits in."""
    step("merge")
    chosen = [(number, s) for number, s in enumerate(collection.segments) if s.name in set(names)]
    sources = [
        Source(s, collection.live[collection.offsets[n] : collection.offsets[n + 1]].copy())
        for n, s in chosen
    ]
    name, building = new_segment_dir(collection.path.parent)
    try:
        width = max((s.segment.sentence_vectors.shape[-1] for s in sources), default=0)
        writer = SegmentWriter(building, collection.dimension, params, sentence_width=width)
        copy_live_rows(sources, writer)
        info = writer.finish(name, step)
    except BaseException:
        drop_segment_dir(building)
        raise
    return info, building


def optimize(
    collection_dir: Path,
    params: DenseParams,
    policy: MergePolicy,
    everything: bool = False,
    hook: Hook | None = None,
    load: Callable[[Path], Collection] = Collection.load,
) -> MergeReport:
    """Merge segments by ``policy`` until none is due (or all into one, ``everything``)."""
    step = hook or (lambda stage: log.debug("stage %s", stage))  # the crash test kills here
    report = MergeReport(collection=collection_dir.name)
    while True:
        collection = load(collection_dir)
        try:
            if not report.merges:
                report.segments_before = len(collection.segments)
            names = policy.pick(collection.manifest.segments, everything)
            if not names:
                report.segments_after = len(collection.segments)
                return report
            log.info("merging %d segments of collection %r", len(names), collection_dir.name)
            info, building = build_merged(collection, names, params, step)
            snapshot = {n: set(collection.deletions.get(n, ())) for n in names}
        finally:
            collection.close()
        generation = _commit_merge(collection_dir, info, building, snapshot, step)
        if generation is None:
            continue  # a writer changed those segments meanwhile: plan again
        report.merges.append(names)
        report.generation = generation
        everything = False


def _commit_merge(
    collection_dir: Path,
    info: SegmentInfo,
    building: Path,
    snapshot: dict[str, set[str]],
    step: Hook,
) -> str | None:
    """Switch to a generation where the merged segment replaces its sources; ``None`` (and
    the merged segment dropped) when a source is no longer live."""
    with writer_lock(collection_dir, wait=True):
        live = read_manifest(collection_dir)
        names = [s.name for s in live.segments]
        if not set(snapshot) <= set(names):
            drop_segment_dir(building)
            return None
        current = load_deletions(collection_dir, live.generation)
        # documents deleted from a source after the merge read it are hidden in the merge
        hidden = sorted({d for n in snapshot for d in set(current.get(n, ())) - snapshot[n]})
        finish_segment_dir(building, info.name)
        step("segment")
        ref = segment_ref(collection_dir, info)
        if hidden:
            ref = _with_hidden(collection_dir, ref, hidden)
        first = names.index(next(n for n in names if n in snapshot))
        refs = [s for s in live.segments if s.name not in snapshot]
        refs.insert(min(first, len(refs)), ref)
        deletions = {n: ids for n, ids in current.items() if n not in snapshot}
        if hidden:
            deletions[info.name] = hidden
        return commit_generation(
            collection_dir,
            live,
            refs,
            deletions,
            documents=live.counts.documents,
            dense_index=live.dense_index,
            hook=step,
        )


def load_deletions(collection_dir: Path, generation: str) -> dict[str, list[str]]:
    """The deletion lists of a generation."""
    import json

    from qa.store.layout import DELETIONS

    return json.loads((collection_dir / generation / DELETIONS).read_text(encoding="utf-8"))


def _with_hidden(collection_dir: Path, ref: SegmentRef, hidden: list[str]) -> SegmentRef:
    """``ref`` with the rows of ``hidden`` documents counted as deleted."""
    from qa.store.sql import Database

    db = Database(collection_dir / SEGMENTS / ref.name / "store.sqlite")
    try:
        rows = db.select_in(
            "SELECT COUNT(*) AS n FROM passages WHERE document_id IN ({marks})", hidden
        )
    finally:
        db.close()
    return ref.model_copy(update={"deleted": sum(r["n"] for r in rows)})
