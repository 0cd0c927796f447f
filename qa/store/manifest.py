"""A generation's manifest: what was built, how, from what, and the checksum of every file.

Read in one place (:func:`read_manifest`) and written in one (:func:`write_manifest`); the
JSON on disk keeps the shape collections built before this model have, so they still load.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_serializer

from qa.errors import CollectionNotFound, StoreError
from qa.store.layout import MANIFEST, current_generation

FORMAT_VERSION = 3  # 3: segments and deletions (2: one generation, one flat index)
LEGACY_VERSION = 2  # converted once when loaded (qa/store/convert.py)
METRIC = "inner_product"  # vectors are normalised: inner product is cosine


class ModelInfo(BaseModel):
    """The model whose vectors a generation holds (a search with another one is refused)."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: str
    fingerprint: str
    dimension: int
    max_seq_length: int


class Counts(BaseModel):
    """How many documents and passages a generation holds."""

    model_config = ConfigDict(frozen=True)

    documents: int
    passages: int


class PassageSettings(BaseModel):
    """How documents were split; any change means every document is split again."""

    # extra keys (written by another version) are kept, so they compare unequal to ours
    model_config = ConfigDict(frozen=True, extra="allow")

    max_tokens: int
    min_chars: int
    title_in_embedding: bool
    splitter_version: int
    # what the stored vectors hold (qa.store.pipeline.VECTORS_VERSION); absent, and so 1,
    # before sentence vectors embedded on their own were stored: such a collection is
    # embedded again, once, on its next update
    vectors_version: int = 1
    # each sentence's vector embedded on its own stored too (QA_OWN_SENTENCE_VECTORS)
    own_sentence_vectors: bool = False
    # hashes of the paragraphs the corpus repeats across many documents (a site's headers and
    # footers), left out of every passage; absent before issue 14
    repeated: list[str] = []


class SourceOptions(BaseModel):
    """How the folders in ``sources`` are read when the collection is indexed again."""

    model_config = ConfigDict(frozen=True)

    follow_links: bool = False
    # gitignore-style patterns relative to each folder (qa index --include/--exclude; issue 18)
    include: list[str] = []
    exclude: list[str] = []


class BuildInfo(BaseModel):
    """What the indexer decides about a new generation; the writer adds the rest."""

    model_config = ConfigDict(frozen=True)

    collection: str
    model: ModelInfo
    passage_settings: PassageSettings
    next_passage_id: int = 0  # ids only ever grow, so an old citation never names another passage
    sources: list[str] = []  # absolute paths of the folders and files indexed
    source_options: SourceOptions = SourceOptions()  # absent before issue 12

    @field_serializer("source_options")
    def _options(self, options: SourceOptions) -> dict[str, object]:
        # written as read: a collection whose manifest had ``{}`` keeps ``{}``
        return options.model_dump(exclude_unset=True)


class SegmentRef(BaseModel):
    """A segment a generation uses, as the manifest lists it."""

    model_config = ConfigDict(frozen=True)

    name: str
    passages: int  # rows on disk, deleted ones included
    deleted: int = 0  # rows of documents this generation deleted
    dense: str  # the dense index's kind (flat, ivf-sq8, hnsw)
    checksum: str  # SHA-256 of its segment.json (which holds its files' checksums)

    @property
    def live(self) -> int:
        """Rows not deleted."""
        return self.passages - self.deleted


class Manifest(BuildInfo):
    """``manifest.json`` of one generation."""

    format_version: int
    generation: str
    created_at: str  # UTC, ISO 8601 to the second
    metric: str
    counts: Counts
    files: dict[str, str] = {}  # path inside the generation -> SHA-256
    dense_index: str = "auto"  # QA_DENSE_INDEX when the generation was written
    segments: list[SegmentRef] = []

    def dense_summary(self) -> str:
        """The dense indexes in use, e.g. ``ivf-sq8 (1 segment), flat (2 segments)``."""
        kinds: dict[str, int] = {}
        for segment in self.segments:
            kinds[segment.dense] = kinds.get(segment.dense, 0) + 1
        parts = [f"{k} ({n} segment{'s' * (n != 1)})" for k, n in sorted(kinds.items())]
        return ", ".join(parts) or "none"


def format_error(name: str, version: object) -> StoreError:
    """The error for a collection written in another on-disk format."""
    return StoreError(
        f"collection {name!r} was written in format {version}, "
        f"this version reads format {FORMAT_VERSION}; rebuild it with `qa index --full`"
    )


def read_manifest(collection_dir: Path, generation: str | None = None) -> Manifest:
    """The manifest of ``generation`` (default: the live one); a :class:`StoreError` when
    there is none or it is unreadable."""
    name = collection_dir.name
    generation = generation or current_generation(collection_dir)
    if generation is None:
        raise CollectionNotFound(f"collection {name!r} has not been indexed")
    try:
        raw = json.loads((collection_dir / generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"collection {name!r} is damaged ({generation}/{MANIFEST} unreadable: {exc}); "
            f"rebuild it with `qa index --full --collection {name} PATH`"
        ) from None
    if not isinstance(raw, dict):
        raise StoreError(
            f"collection {name!r} is damaged ({generation}/{MANIFEST} is not an object)"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        if raw.get("format_version") not in (FORMAT_VERSION, LEGACY_VERSION):
            raise format_error(name, raw.get("format_version")) from None
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise StoreError(
            f"collection {name!r} is damaged ({generation}/{MANIFEST}: {where}: {problem['msg']}); "
            f"rebuild it with `qa index --full --collection {name} PATH`"
        ) from None


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` into a generation being built."""
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True)
    (folder / MANIFEST).write_text(text, encoding="utf-8")
