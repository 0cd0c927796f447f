"""What an indexing run did (``qa index``'s summary, ``--json`` and the write API's reply)."""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.ingest.documents import Skip


@dataclass
class IndexReport:
    """What an indexing run did."""

    collection: str
    generation: str | None = None
    documents: int = 0
    passages: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0
    reused_vectors: int = 0
    relocated: int = 0  # unchanged documents whose source (path, JSONL line) moved
    skipped: list[Skip] = field(default_factory=list)
    full_rebuild: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the run had anything to write."""
        return bool(self.added or self.updated or self.removed or self.relocated)

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.documents} documents, {self.passages} passages "
            f"({self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged; {self.embedded} passages embedded), "
            f"{len(self.skipped)} skipped"
        )

    def to_dict(self) -> dict[str, object]:
        """The report as JSON (``qa index --json``, the write API)."""
        out: dict[str, object] = {k: v for k, v in vars(self).items() if k != "skipped"}
        out["skipped"] = [{"source": s.source, "reason": s.reason} for s in self.skipped]
        return out
