"""The gate: headline metrics of this run against a baseline report file.

A baseline is read for what the gate needs (dataset, split, retriever, headline metrics), so
report files written by earlier versions, with other keys or fewer of them, still load.
Runs are matched by retriever.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from qa.errors import BaselineError
from qa.evaluation.metrics import HEADLINE
from qa.evaluation.report import Report


class HeadlineConfig(BaseModel):
    """The part of a report's config the gate needs."""

    retriever: str | None = None


class Headline(BaseModel):
    """What the gate compares of one run (any other keys of a report are ignored)."""

    dataset: str | None = None
    split: str | None = None
    config: HeadlineConfig = HeadlineConfig()
    metrics: dict[str, float | None]


class HeadlineRuns(BaseModel):
    """A file of several runs."""

    runs: list[Headline]


# "runs" wins over "metrics" when a file has both
_FILE: TypeAdapter[HeadlineRuns | Headline] = TypeAdapter(
    Annotated[HeadlineRuns | Headline, Field(union_mode="left_to_right")]
)


@dataclass
class Regression:
    """A headline metric that fell by more than the allowed drop."""

    retriever: str
    metric: str
    baseline: float
    current: float

    @property
    def drop(self) -> float:
        """How far the metric fell."""
        return self.baseline - self.current

    def __str__(self) -> str:
        return (
            f"{self.retriever}: {self.metric} fell by {self.drop:.4f} "
            f"({self.baseline:.4f} -> {self.current:.4f})"
        )


def unbundle(data: object) -> list[Headline]:
    """The runs of a report file's JSON: ``{"runs": [...]}`` or a single report."""
    try:
        parsed = _FILE.validate_python(data)
    except ValidationError:
        raise BaselineError('not an evaluation report (expected "metrics" or "runs")') from None
    return parsed.runs if isinstance(parsed, HeadlineRuns) else [parsed]


def load_baseline(path: Path) -> list[Headline]:
    """The runs of a report file written by ``qa eval --out`` (this version or an earlier one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file") from None
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: unreadable baseline ({exc})") from None
    try:
        return unbundle(data)
    except BaselineError as exc:
        raise BaselineError(f"{path}: {exc}") from None


def compare(
    baseline: Sequence[Headline], current: Sequence[Report | Headline], max_drop: float
) -> tuple[list[Regression], list[str]]:
    """Headline metrics that fell by more than ``max_drop`` (absolute), and notes on what was
    compared; :class:`BaselineError` when no retriever of this run is in the baseline."""
    by_name = {run.config.retriever: run for run in baseline}
    regressions: list[Regression] = []
    notes: list[str] = []
    matched = 0
    for report in (Headline.model_validate(r, from_attributes=True) for r in current):
        name = str(report.config.retriever)
        old = by_name.get(name)
        if old is None:
            known = ", ".join(map(str, by_name)) or "nothing"
            notes.append(f"{name}: not in the baseline (baseline has {known})")
            continue
        matched += 1
        if (old.dataset, old.split) != (report.dataset, report.split):
            notes.append(
                f"{name}: baseline is {old.dataset}/{old.split}, "
                f"this run is {report.dataset}/{report.split}"
            )
        for metric in HEADLINE:
            before, after = old.metrics.get(metric), report.metrics.get(metric)
            if before is None or after is None:
                continue
            if before - after > max_drop + 1e-9:
                regressions.append(Regression(name, metric, before, after))
    if not matched:
        raise BaselineError(
            "the baseline has no run for any retriever of this run; " + "; ".join(notes)
        )
    return regressions, notes
