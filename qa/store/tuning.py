"""Search settings tuned for one collection: ``index/<collection>/tuning.json``.

Written by ``qa tune`` beside the index (not inside a generation, so it holds across
re-indexing), read by the service whenever it searches that collection: a value given here
replaces the configured one (``QA_FUSION_ALPHA``, ``QA_SENTENCE_WEIGHT``,
``QA_MIN_ANSWER_SCORE``, ``QA_MISSING_TERM_WEIGHT``) for this collection only; ``null`` keeps the configured one.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qa.errors import StoreError
from qa.store.layout import write_atomic

TUNING = "tuning.json"


class TunedValues(BaseModel):
    """The values the service uses for the collection (``None``: the configured one)."""

    model_config = ConfigDict(extra="forbid")

    fusion_alpha: float | None = Field(default=None, ge=0, le=1)
    sentence_weight: float | None = Field(default=None, ge=0, le=1)
    min_answer_score: float | None = Field(default=None, ge=-10, le=2)  # see QA_MIN_ANSWER_SCORE
    missing_term_weight: float | None = Field(default=None, ge=0, le=1)

    def given(self) -> dict[str, float]:
        """The values that replace configured ones."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Tuning(BaseModel):
    """What ``qa tune`` chose for a collection, and the evidence it chose it on."""

    model_config = ConfigDict(extra="ignore")

    values: TunedValues
    defaults: dict[str, float] = Field(description="the configured values it was compared with")
    decision: str = Field(description="why these values (or why the defaults were kept)")
    dataset: str
    questions: int
    folds: int
    metric: str
    gain: float | None = Field(description="mean held-out gain over the folds")
    noise: float | None = Field(description="standard deviation of that gain between folds")
    before: dict[str, float | None] = Field(default_factory=dict)
    after: dict[str, float | None] = Field(default_factory=dict)
    generation: str
    created_at: str


def tuning_path(collection_dir: Path) -> Path:
    return collection_dir / TUNING


def tuning_stamp(collection_dir: Path) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of the tuning file (``None`` when there is none): what a reader
    compares to know it changed."""
    try:
        stat = tuning_path(collection_dir).stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def read_tuning(collection_dir: Path) -> Tuning | None:
    """The collection's tuning, ``None`` when it has none; :class:`StoreError` when the file
    can't be read (a hand-edited value out of range, broken JSON)."""
    path = tuning_path(collection_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: unreadable ({exc.strerror or exc})") from None
    try:
        return Tuning.model_validate_json(text)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "file"
        raise StoreError(
            f"{path}: {where}: {problem['msg']}; fix it, or run `qa tune` again, or delete it"
        ) from None


def write_tuning(collection_dir: Path, tuning: Tuning) -> Path:
    """Replace the collection's tuning all at once (readers see the old or the new file)."""
    path = tuning_path(collection_dir)
    temporary = collection_dir / f".{TUNING}.tmp.{os.getpid()}"
    write_atomic(path, (tuning.model_dump_json(indent=2) + "\n").encode(), temporary)
    return path


def remove_tuning(collection_dir: Path) -> bool:
    """Forget the collection's tuning; whether there was one."""
    try:
        tuning_path(collection_dir).unlink()
    except FileNotFoundError:
        return False
    return True
