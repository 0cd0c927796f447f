"""``qa index --engine ray``: the same build, with files parsed and passages embedded by Ray Data.

The files to read are listed on the driver exactly as the local engine lists them (same
document ids, same order, same skips). Ray Data then parses them in tasks and splits and
embeds the documents in a pool of actors that each hold one model (``map_batches``), and the
driver takes the results back in order and writes and commits the segments through the
ordinary :class:`~qa.store.indexer.Indexer`: the collection format, the passage ids and the
commit (one manifest switch) are those of a local build, and a failed worker or build leaves
the live generation as it was. ``RAY_ADDRESS`` picks a cluster; without it a local runtime starts.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import numpy as np

from qa.config import Settings
from qa.encoding import Embedder
from qa.errors import MissingExtra
from qa.ingest.documents import Document, Skip
from qa.store.indexer import Indexer
from qa.store.manifest import PassageSettings
from qa.store.pipeline import sentences_of, shift, split_documents
from qa.store.segment import sentence_width

INSTALL = "the Ray engine needs Ray: pip install -e '.[ray]'"
PARSE_BATCH = 16  # files per parsing task
EMBED_BATCH = 64  # documents per call of an embedding actor


def require_ray() -> ModuleType:
    """The ``ray`` module, or a one-line error saying what to install."""
    try:
        import ray
    except ImportError:
        raise MissingExtra(INSTALL) from None
    return ray


def start_ray(num_cpus: int | None = None) -> ModuleType:
    """Connect to ``RAY_ADDRESS``'s cluster, or start a local runtime (once per process)."""
    ray = require_ray()
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return ray


# ---------------------------------------------------------------------- rows of the dataset
def _item_row(item: tuple[Path, str] | Document | Skip) -> dict[str, str]:
    """A listed item as a dataset row of plain strings (rows cross process boundaries)."""
    if isinstance(item, Skip):
        return {"kind": "skip", "payload": json.dumps([item.source, item.reason, item.path])}
    if isinstance(item, Document):
        return {"kind": "doc", "payload": json.dumps(dataclasses.asdict(item))}
    return {"kind": "path", "payload": json.dumps([str(item[0]), item[1]])}


def _parse_row(row: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Parse a listed file in a Ray task (the reader the local parser pool runs)."""
    from qa.ingest.readers import read_file

    if row["kind"] != "path":
        return row
    path, doc_id = json.loads(row["payload"])
    try:
        return _item_row(read_file(Path(path), doc_id, max_bytes))
    except Skip as skip:
        return _item_row(skip)


class _EmbedActor:
    """One model per actor: splits documents as the indexer does and embeds their passages."""

    def __init__(self, model: str, batch_size: int, threads: int, split: dict[str, Any]) -> None:
        self.embedder = Embedder(model, batch_size=batch_size, threads=threads)
        self.split = PassageSettings.model_validate(split)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        kinds, payloads = list(batch["kind"]), list(batch["payload"])
        documents = [Document(**json.loads(p)) for k, p in zip(kinds, payloads) if k == "doc"]
        _, pieces, _ = split_documents(documents, self.embedder, self.split)
        texts = list(dict.fromkeys(p.embedded_text for p in pieces))
        by_text = {p.embedded_text: p for p in pieces}
        spans = [
            shift(sentences_of(by_text[t].passage.text), len(t) - len(by_text[t].passage.text))
            for t in texts
        ]
        own = self.split.own_sentence_vectors
        vectors, sentences = (
            self.embedder.encode_passages(texts, spans, own=own) if texts else ([], [])
        )
        found = {
            text: [_pack(vector), _pack(piece)]
            for text, vector, piece in zip(texts, vectors, sentences)
        }
        # the vectors ride on the batch's first document row: the driver only needs them first
        extra = [json.dumps(found)] + ["{}"] * (len(kinds) - 1)
        return {"kind": kinds, "payload": payloads, "vectors": extra}


# ---------------------------------------------------------------------- the driver's side
class PrecomputedEmbedder:
    """The embedder the indexer sees on the driver: passage vectors come from the actors'
    results (by embedded text); anything else goes to the real embedder."""

    def __init__(self, embedder: Embedder) -> None:
        self.real = embedder
        self.waiting: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def encode_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
        chunk: int = 256,
        own: bool = True,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of ``texts`` from the actors (those never sent are embedded here)."""
        missing = [i for i, t in enumerate(texts) if t not in self.waiting]
        local = self.real.encode_passages(
            [texts[i] for i in missing], [spans[i] for i in missing], own=own
        )
        made = dict(zip(missing, zip(*local), strict=False)) if missing else {}
        out = [made[i] if i in made else self.waiting.pop(t) for i, t in enumerate(texts)]
        if progress is not None:
            progress(len(texts))
        dimension = self.real.identity.dimension
        vectors = np.asarray([v for v, _ in out], np.float32).reshape(len(out), dimension)
        width = sentence_width(dimension, own)
        return vectors, [np.asarray(s, np.float32).reshape(-1, width) for _, s in out]


class RayParser:
    """Stands in for :class:`~qa.ingest.parsing.ParserPool` in discovery: parses and embeds
    with Ray Data, handing documents back in order and their vectors to ``embedder``."""

    def __init__(self, settings: Settings, embedder: PrecomputedEmbedder, split: PassageSettings):
        self.settings = settings
        self.embedder = embedder
        self.split = split

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def parse_files(
        self, items: Iterable[tuple[Path, str] | Document | Skip], max_bytes: int
    ) -> Iterator[Document | Skip]:
        """Documents (or skips) of the listed items, in order."""
        ray = start_ray()
        rows = [_item_row(item) for item in items]  # paths only: the texts stay in the dataset
        if not rows:
            return
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # the ids and order of a local build
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor_cpus = min(self.settings.ray_actor_cpus, cpus)
        actors = self.settings.ray_actors or max(1, cpus // actor_cpus)
        blocks = max(1, len(rows) // PARSE_BATCH)
        dataset = (
            ray.data.from_items(rows, override_num_blocks=blocks)
            # Parsing reserves no CPU, or embedding actors holding every CPU (one 2-CPU actor
            # on a 2-CPU machine) would starve it and the build would wait for ever; its
            # tasks are capped at one per CPU instead.
            .map(
                _parse_row,
                fn_kwargs={"max_bytes": max_bytes},
                num_cpus=0,
                concurrency=min(cpus, blocks),
            )
            .map_batches(
                _EmbedActor,
                fn_constructor_kwargs={
                    "model": str(self.embedder.real.path),
                    "batch_size": self.settings.batch_size,
                    "threads": actor_cpus,
                    "split": self.split.model_dump(),
                },
                batch_size=EMBED_BATCH,
                concurrency=(1, actors),  # grows with the input (a small build starts one)
                num_cpus=actor_cpus,
                **_gpus(ray),
            )
        )
        for row in dataset.iter_rows():
            for text, (vector, pieces) in json.loads(row["vectors"]).items():
                self.embedder.waiting[text] = (_unpack(vector), _unpack(pieces))
            yield _from_row(row)


def _gpus(ray: ModuleType) -> dict[str, float]:
    """One GPU per embedding actor when the cluster has GPUs."""
    return {"num_gpus": 1} if ray.cluster_resources().get("GPU", 0) else {}


def _pack(array: np.ndarray) -> str:
    """float32 values as base64 text (exact, and far smaller than JSON numbers)."""
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.float32)


def _from_row(row: dict[str, Any]) -> Document | Skip:
    values = json.loads(row["payload"])
    if row["kind"] == "skip":
        return Skip(*values)
    return Document(**values)


def ray_indexer(settings: Settings, embedder: Embedder) -> Indexer:
    """An :class:`Indexer` whose files are parsed and passages embedded by Ray Data."""
    require_ray()
    wrapped = PrecomputedEmbedder(embedder)

    def parser() -> RayParser:
        return RayParser(settings, wrapped, indexer.split_settings())

    indexer = Indexer(settings, wrapped, parser=parser)  # type: ignore[arg-type]
    return indexer
