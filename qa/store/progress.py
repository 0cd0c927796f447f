"""Progress bars on the terminal for long indexing runs (tqdm)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")


def bar(enabled: bool, total: int | None, label: str, unit: str) -> tqdm[T]:
    """A progress bar (drawn only when ``enabled``); redrawn rarely when not on a terminal."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=label,
        unit=f" {unit}s",
        disable=not enabled,
        dynamic_ncols=True,
        smoothing=0.1,
        mininterval=0.2 if sys.stderr.isatty() else 5.0,
    )


def progress(items: Iterable[T], enabled: bool, label: str, unit: str) -> Iterable[T]:
    """``items``, counted on a progress bar while they are consumed (when ``enabled``)."""
    if not enabled:
        return items
    meter: tqdm[T] = bar(True, None, label, unit)

    def counted() -> Iterator[T]:
        try:
            for item in items:
                meter.update(1)
                yield item
        finally:
            meter.close()

    return counted()
