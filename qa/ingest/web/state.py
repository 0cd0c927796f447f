"""What a site's last sync learnt about every URL: validators for conditional requests
(``ETag``, ``Last-Modified``), the extracted text's hash, when it was checked and last
changed, and its state with the reason. Kept as ``site_state.json`` in the collection's
folder, written atomically (a temporary file renamed over it), plain JSON (no pickle).

The fields are those a per-source status listing shows: ``source, state, reason, passages,
content_hash, checked_at, changed_at``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

STATE_FILE = "site_state.json"
STATE_VERSION = 1

State = Literal["indexed", "unchanged", "skipped", "failed"]


def now() -> str:
    """UTC now, ISO 8601 to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PageState:
    """One URL the collection knows."""

    source: str  # the URL (canonical spelling)
    state: State
    reason: str = ""  # why it was skipped or failed
    document_id: str | None = None  # the document it is indexed as (its canonical URL)
    passages: int = 0
    content_hash: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    status: int = 0  # the last HTTP status (0: no response)
    checked_at: str = ""
    changed_at: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> PageState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})  # type: ignore[arg-type]


@dataclass
class SiteState:
    """Every URL of one site's collection, and the last sync's summary."""

    root: str
    pages: dict[str, PageState] = field(default_factory=dict)
    last_sync: dict[str, object] = field(default_factory=dict)
    sync_every: float | None = None  # this collection's own schedule (qa index URL --sync-every)

    @classmethod
    def load(cls, collection_dir: Path, root: str) -> SiteState:
        """The stored state (empty when there is none, it is unreadable, or it was kept for
        another start URL: then every page is fetched again in full)."""
        try:
            raw = json.loads((collection_dir / STATE_FILE).read_text(encoding="utf-8"))
            pages = {url: PageState.from_dict(p) for url, p in raw["pages"].items()}
            last = dict(raw.get("last_sync") or {})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls(root)
        return cls(root, pages, last, own_interval(raw))

    def save(self, collection_dir: Path) -> None:
        """Write the state atomically: a reader sees the old file or the new one."""
        collection_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "version": STATE_VERSION,
            "root": self.root,
            "last_sync": self.last_sync,
            "sync_every": self.sync_every,
            "pages": {url: asdict(page) for url, page in sorted(self.pages.items())},
        }
        handle, temporary = tempfile.mkstemp(dir=collection_dir, prefix=".site_state.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, collection_dir / STATE_FILE)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def document_ids(self) -> set[str]:
        """The documents the last sync left in the index."""
        return {
            p.document_id
            for p in self.pages.values()
            if p.document_id and p.state in ("indexed", "unchanged")
        }


def own_interval(raw: object) -> float | None:
    """The ``sync_every`` seconds a state file holds (``None``: none, or not a positive number)."""
    every = raw.get("sync_every") if isinstance(raw, dict) else None
    ok = isinstance(every, int | float) and not isinstance(every, bool) and every > 0
    return float(every) if ok else None  # type: ignore[arg-type]


def read_interval(collection_dir: Path) -> float | None:
    """A website collection's own re-sync interval, read from its state file."""
    try:
        raw = json.loads((collection_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return own_interval(raw)
