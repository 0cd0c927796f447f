"""``qa index --gate LABELLED.jsonl --max-drop 0.02``: score the labelled questions on the
newly written generation and on the live one, and refuse the switch when the new one is
worse by more than the allowed drop.

The indexer writes the new generation beside the live one and switches with one rename; the
gate runs between the two (the indexer's ``before_switch``, with the writer lock held). A
refused generation is removed and the live one stays, untouched.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.errors import GateRefused
from qa.evaluation.datasets import Dataset
from qa.evaluation.labelled import METRIC, mean_ndcg, score_questions
from qa.store import Collection, current_generation
from qa.store.layout import GENERATION

if TYPE_CHECKING:
    from qa.service import QAService
    from qa.store import IndexReport


@dataclass
class GateResult:
    """The labelled set's score on the live and on the new generation."""

    live_generation: str | None
    new_generation: str | None
    live: float | None
    new: float | None
    max_drop: float

    @property
    def drop(self) -> float:
        """How much the new generation scores below the live one (negative: better)."""
        if self.live is None or self.new is None:
            return 0.0
        return self.live - self.new

    def __str__(self) -> str:
        if self.live is None or self.new is None:
            return f"gate: nothing to compare ({self.live_generation or 'no live generation'})"
        return (
            f"gate: {METRIC} {self.live:.4f} on {self.live_generation} (live), {self.new:.4f} "
            f"on {self.new_generation} (new): {self.new - self.live:+.4f} (allowed drop {self.max_drop:.4f})"
        )


def pending_generation(directory: Path) -> str | None:
    """The generation written but not yet live (newer than the live one), if any."""
    live = current_generation(directory) or ""
    newer = sorted(p.name for p in directory.glob(f"{GENERATION}*") if p.is_dir() and p.name > live)
    return newer[-1] if newer else None


def score(service: QAService, collection: Collection, dataset: Dataset) -> float | None:
    """Mean nDCG@10 of the labelled questions on ``collection`` with its own settings."""
    params = service.params.of(collection.name)
    return mean_ndcg(score_questions(service, collection, dataset, params, with_answer=False))


def index_with_gate(
    service: QAService,
    paths: list[Path],
    name: str,
    dataset: Dataset,
    max_drop: float,
    **options: Any,  # index_paths' (full, progress, options)
) -> tuple[IndexReport, GateResult]:
    """Index ``paths`` into ``name``; switch only when the labelled set does not score
    worse than on the live generation by more than ``max_drop`` (else :class:`GateRefused`)."""
    directory = service.settings.collection_dir(name)
    live_generation = current_generation(directory)
    live = score(service, service.collection(name), dataset) if live_generation else None
    result = GateResult(live_generation, None, live, None, max_drop)

    def check() -> None:
        pending = pending_generation(directory)
        if pending is None or live is None:
            return  # nothing new was written, or nothing to compare with (a first build)
        try:
            candidate = Collection.load(directory, generation=pending)
            try:
                result.new_generation, result.new = pending, score(service, candidate, dataset)
            finally:
                candidate.close()
            if result.drop > max_drop:
                raise GateRefused(
                    f"{result}; not switched: {name!r} stays at {live_generation} "
                    f"({METRIC} would fall by {result.drop:.4f})"
                )
        except BaseException:
            shutil.rmtree(directory / pending, ignore_errors=True)  # the live one stays
            raise

    report = service.indexer.index_paths(name, paths, before_switch=check, **options)
    return report, result
