"""The collection a dataset is searched in, built once and cached, and its passage-level gold.

The collection is built once per (corpus files' hash, model fingerprint, passage settings)
under the name ``eval-<dataset>-<12 hex of that key>`` and reused while they are unchanged
(a cached collection that no longer loads, e.g. after a store format change, is rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import DatasetError
from qa.evaluation.datasets import Dataset, normalise, validate_corpus_jsonl
from qa.store.pipeline import VECTORS_VERSION

if TYPE_CHECKING:
    from qa.service import QAService
    from qa.store import Collection, IndexReport

log = logging.getLogger("qa.evaluation")


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    """``(name, file)`` under ``root``, sorted, hidden ones left out; a file is its own name."""
    if root.is_file():
        yield root.name, root
        return
    files = sorted(
        f
        for f in root.rglob("*")
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts)
    )
    for file in files:
        yield file.relative_to(root).as_posix(), file


def _hash_paths(paths: Sequence[Path]) -> str:
    """SHA-256 over the files under ``paths``: names relative to each root, and contents."""
    digest = hashlib.sha256()
    for root in sorted(Path(p).resolve() for p in paths):
        for name, file in _files(root):
            digest.update(name.encode())
            digest.update(b"\x00")
            with file.open("rb") as handle:
                hashlib.file_digest(handle, lambda: digest)  # adds the contents to ``digest``
            digest.update(b"\x00")
    return digest.hexdigest()


def collection_key(corpus_paths: Sequence[Path], service: QAService) -> str:
    """Changes whenever the corpus files, the model, the passage settings or the way vectors
    are made change."""
    parts = {
        "corpus": _hash_paths(corpus_paths),
        "model": service.embedder.identity.fingerprint,
        "passages": service.indexer.passage_settings(),
        "vectors": [VECTORS_VERSION, service.embedder.active_passage_backend],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def collection_name(dataset_name: str, key: str) -> str:
    """``eval-<dataset>-<12 hex of the key>``, the dataset's name made safe for a collection."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset_name).strip("-._")[:40] or "dataset"
    return f"eval-{slug}-{key[:12]}"


@dataclass
class Prepared:
    """The collection a run searches, and whether (and how fast) it was built now."""

    collection: str
    key: str | None
    built: bool
    seconds: float
    index_report: IndexReport | None = None


def ensure_collection(service: QAService, dataset: Dataset, progress: bool = True) -> Prepared:
    """The collection to search: the dataset's cached one (built if missing) or the one given."""
    from qa.errors import StoreError
    from qa.store import current_generation

    started = time.perf_counter()
    if dataset.collection:
        service.collection(dataset.collection)  # raises UnknownCollection with the names available
        return Prepared(dataset.collection, None, False, 0.0)
    key = collection_key(dataset.corpus_paths, service)
    # named after what is indexed, so question sets over the same documents share it
    corpus = (
        dataset.name if dataset.format == "beir" else "+".join(p.name for p in dataset.corpus_paths)
    )
    name = collection_name(corpus, key)
    full = False
    if current_generation(service.settings.collection_dir(name)) is not None:
        try:
            service.collection(name)
            log.info("reusing cached collection %r in %s", name, service.settings.index_dir)
            return Prepared(name, key, False, time.perf_counter() - started)
        except StoreError as exc:
            log.warning("rebuilding the cached collection: %s", exc)
            full = True
    for corpus in dataset.corpus_paths:
        if corpus.suffix.lower() == ".jsonl" and corpus.is_file():
            validate_corpus_jsonl(corpus)
    log.info(
        "building collection %r in %s (once; reused while corpus and model are unchanged)",
        name,
        service.settings.index_dir,
    )
    report = service.index(list(dataset.corpus_paths), name, full=full, progress=progress)
    for skip in report.skipped:
        log.warning("%s", skip)
    return Prepared(name, key, True, time.perf_counter() - started, report)


def snippet_qrels(dataset: Dataset, collection: Collection) -> dict[str, dict[int, int]]:
    """Passage-level gold of each question: snippet matches plus explicit passage ids."""
    wanted = [q for q in dataset.questions if q.unit == "passage"]
    if not wanted:
        return {}
    passages = collection.passages_of(sorted(collection.document_hashes()))
    known = {p.id for p in passages}
    texts = [(p.id, normalise(p.text)) for p in passages]
    out: dict[str, dict[int, int]] = {}
    for question in wanted:
        gold = dict(question.gold_passages)
        for passage_id in gold:
            if passage_id not in known:
                raise DatasetError(
                    dataset.path,
                    f"passage {passage_id} is not in collection {collection.name!r}",
                    question.line,
                )
        for snippet in question.gold_snippets:
            needle = normalise(snippet)
            matched = [pid for pid, text in texts if needle in text]
            if not matched:
                raise DatasetError(
                    dataset.path,
                    f"gold snippet {snippet!r} is not in any passage of collection "
                    f"{collection.name!r} (a snippet must lie within one passage; shorten it)",
                    question.line,
                )
            for pid in matched:
                gold[pid] = max(gold.get(pid, 0), 1)
        out[question.id] = gold
    return out
