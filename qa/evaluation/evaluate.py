"""One evaluation: the dataset's collection, each retriever's run, and their reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from qa.errors import DatasetError, InvalidInput
from qa.evaluation.build import build_report
from qa.evaluation.datasets import Dataset
from qa.evaluation.prepare import Prepared, ensure_collection, snippet_qrels
from qa.evaluation.report import Config, Counts, ModelInfo, Report
from qa.evaluation.run import PASSAGE_DEPTH, TEXT_CHARS, run_queries

if TYPE_CHECKING:
    from qa.service import QAService
    from qa.store import Collection

RETRIEVERS = ("dense", "bm25", "hybrid")
DEFAULT_RETRIEVER = "hybrid"  # the service default (dense and bm25 are the published baselines)
DEFAULT_TOP_K = 100


def evaluate(
    service: QAService,
    dataset: Dataset,
    retrievers: Sequence[str] = (DEFAULT_RETRIEVER,),
    top_k: int = DEFAULT_TOP_K,
    progress: bool = True,
) -> list[Report]:
    """Build or reuse the collection, run each retriever, and return one report per retriever."""
    unknown = [r for r in retrievers if r not in RETRIEVERS]
    if unknown:
        raise InvalidInput(f"unknown retriever {unknown[0]!r}; choose from {', '.join(RETRIEVERS)}")
    if not dataset.questions:
        raise DatasetError(dataset.path, "no questions to evaluate")
    prepared = ensure_collection(service, dataset, progress=progress)
    collection = service.collection(prepared.collection)
    passage_gold = snippet_qrels(dataset, collection)
    created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    reports = []
    for mode in retrievers:
        results, wall = run_queries(service, prepared.collection, dataset, mode, top_k, progress)
        config = _config(service, dataset, prepared, collection, top_k, mode, created_at)
        reports.append(
            build_report(dataset, results, wall, passage_gold, config, _describer(collection))
        )
    return reports


def _config(
    service: QAService,
    dataset: Dataset,
    prepared: Prepared,
    collection: Collection,
    top_k: int,
    mode: str,
    created_at: str,
) -> Config:
    """What a report records about how it was made."""
    identity = service.embedder.identity
    return Config(
        format=dataset.format,
        dataset_path=str(dataset.path.resolve()),
        corpus=[str(p.resolve()) for p in dataset.corpus_paths],
        collection=prepared.collection,
        collection_key=prepared.key,
        index_dir=str(service.settings.index_dir),
        collection_built_now=prepared.built,
        index_seconds=prepared.seconds,
        counts=Counts.model_validate(collection.counts, from_attributes=True),
        model=ModelInfo(
            name=identity.name,
            fingerprint=identity.fingerprint[:16],
            max_seq_length=identity.max_seq_length,
        ),
        passage_settings=service.indexer.passage_settings(),
        top_k=top_k,
        passage_depth=top_k * PASSAGE_DEPTH,
        aggregation="document score = best passage score",
        with_answers=dataset.with_answers,
        fusion=asdict(service.params.of(prepared.collection).fusion) if mode == "hybrid" else None,
        created_at=created_at,
        retriever=mode,
    )


def _describer(collection: Collection) -> Callable[[str], str | None]:
    """Title of a gold document, or the start of a gold passage (``#<id>``)."""

    def describe(gold_id: str) -> str | None:
        if gold_id.startswith("#") and gold_id[1:].isdigit():
            row = collection.passage(int(gold_id[1:]))
            return row.text[:TEXT_CHARS] if row is not None else None
        document = collection.document(gold_id)
        return document.title if document is not None else None

    return describe
