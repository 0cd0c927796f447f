"""Choose the hybrid fusion (method and parameters) on SciFact's train split; report on test.

    python scripts/tune_fusion.py --split train          # grid search, prints the table
    python scripts/tune_fusion.py --split test --only convex:0.5:minmax:100 rrf:60:100
    python scripts/tune_fusion.py --split train --sentence-weights 0 0.2 0.4 0.6   # the rescoring stage

Each query is encoded once and both retrievers are run once; every fusion setting is then
scored from those cached scores (passages fused, then a document scores as its best passage)
with the service's own fusion code (``qa/search/fusion.py``).
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast, get_args

import ir_measures
import numpy as np
from harness import SCIFACT, make_parser, table_head, table_row
from ir_measures import R, nDCG

from qa.config import Settings
from qa.search.fusion import FusionParams, Normalisation, convex, rrf, with_sentences
from qa.service import QAService
from qa.store.segment import late_vectors

if TYPE_CHECKING:
    from qa.evaluation import Dataset
    from qa.store import Collection

Method = Literal["dense", "bm25", "rrf", "convex"]
DEPTH = 300  # dense candidates searched once per query: the deepest setting takes 200
RANKED_DOCUMENTS = 100  # documents ranked per query (Recall@100)
GRID_RRF_K = (10, 30, 60, 100)
GRID_ALPHA = (0.3, 0.4, 0.5, 0.6, 0.7)
GRID_NORMALISATION: tuple[Normalisation, ...] = ("minmax", "zscore", "max")
GRID_CANDIDATES = (50, 100, 200)


def fusion_params(**changes: float | str) -> FusionParams:
    """The service's fusion parameters with ``changes``; no sentence rescoring unless asked."""
    return replace(FusionParams(sentence_weight=0.0), **changes)


@dataclass(frozen=True)
class Setting:
    """One row of the table: a ranking and its fusion parameters (``candidates`` per
    retriever; ``alpha`` for convex, ``rrf_k`` for RRF; the sentence rescoring)."""

    method: Method
    fusion: FusionParams = field(default_factory=lambda: fusion_params())
    normalisation: Normalisation | None = None  # convex only

    @property
    def param(self) -> float:
        if self.method == "convex":
            return self.fusion.alpha
        return self.fusion.rrf_k if self.method == "rrf" else 0.0


@dataclass
class Cache:
    """Every query's vector and scores, computed once: dense top :data:`DEPTH` and BM25
    over all passages."""

    dataset: Dataset
    collection: Collection
    vectors: np.ndarray
    dense_ids: np.ndarray
    dense_scores: np.ndarray
    bm25: list[np.ndarray]
    document_of: dict[int, str]
    qrels: list[ir_measures.Qrel]


def prepare(dataset_dir: Path, split: str) -> Cache:
    """The dataset's collection (built once and cached), its queries encoded and searched."""
    from qa.evaluation import ensure_collection, load_beir

    service = QAService(Settings())
    dataset = load_beir(dataset_dir, split)
    collection = service.collection(ensure_collection(service, dataset).collection)
    passages = collection.passages_of(collection.document_hashes())
    gold = [(q.id, d, g) for q in dataset.questions for d, g in q.gold_documents.items()]
    texts = [q.text for q in dataset.questions]
    started = time.perf_counter()
    vectors = service.embedder.encode_queries(texts)
    dense_ids, dense_scores = collection.dense_search(vectors, DEPTH)
    bm25 = [collection.lexical.scores(t) for t in texts]
    print(f"{len(texts)} queries encoded and searched in {time.perf_counter() - started:.1f} s")
    return Cache(
        dataset,
        collection,
        vectors,
        dense_ids,
        dense_scores,
        bm25,
        {p.id: p.document_id for p in passages},
        [ir_measures.Qrel(*g) for g in gold],
    )


def fused(cache: Cache, qi: int, setting: Setting) -> dict[int, float]:
    """Query ``qi``'s candidates and their scores under ``setting`` (before sentences)."""
    n, lexical = setting.fusion.candidates, cache.collection.lexical
    dense_ids = cache.dense_ids[qi][:n].tolist()
    dense = dict(zip(dense_ids, cache.dense_scores[qi][:n].tolist()))
    bm25_ids, bm25_scores = lexical.top(cache.bm25[qi], n)
    if setting.method == "dense":
        return dense
    if setting.method == "bm25":
        return dict(zip(bm25_ids.tolist(), bm25_scores.tolist()))
    if setting.method == "rrf":
        return rrf([dense_ids, bm25_ids.tolist()], setting.fusion.rrf_k)
    # convex, as the retriever scores it: every candidate of either list with both scores
    union = list(dict.fromkeys(dense_ids + bm25_ids.tolist()))
    missing = [p for p in union if p not in dense]
    if missing:
        stored = cache.collection.vectors(missing) @ cache.vectors[qi]
        dense.update(zip(missing, stored.tolist()))
    d = np.array([dense[p] for p in union], dtype=np.float32)
    b = cache.bm25[qi][lexical.rows(np.array(union))].astype(np.float32)
    scores = convex(d, b, setting.fusion.alpha, setting.normalisation or "max")
    return dict(zip(union, scores.tolist()))


def by_sentences(
    cache: Cache, qi: int, scores: dict[int, float], fusion: FusionParams
) -> dict[int, float]:
    """The head rescored by its best sentences and the tail kept below it, as the retriever
    does (``Retriever._by_sentences``)."""
    order = sorted(scores, key=lambda p: -scores[p])
    head, tail = order[: fusion.sentence_depth], order[fusion.sentence_depth :]
    sentences = cache.collection.sentences(head)
    vector = cache.vectors[qi]
    best = np.array(
        [
            float((late_vectors(sentences[p][1], len(vector)) @ vector).max())
            if p in sentences
            else 0.0
            for p in head
        ]
    )
    head_scores = np.array([scores[p] for p in head])
    final = with_sentences(head_scores, best, fusion.sentence_weight)
    rescored = dict(zip(head, final.tolist()))
    floor = min(rescored.values(), default=0.0)
    keep = 1 - fusion.sentence_weight
    rescored.update({p: min(scores[p] * keep, floor) for p in tail})
    return rescored


def evaluate(cache: Cache, setting: Setting) -> dict[str, float]:
    """nDCG@10 and Recall@100 of ``setting``, a document scoring as its best passage."""
    ranked = []
    for qi, question in enumerate(cache.dataset.questions):
        scores = fused(cache, qi, setting)
        if setting.fusion.sentence_weight > 0:
            scores = by_sentences(cache, qi, scores, setting.fusion)
        best: dict[str, float] = {}
        for pid, score in scores.items():
            doc = cache.document_of[pid]
            best[doc] = max(score, best.get(doc, -1e9))
        top = sorted(best.items(), key=lambda x: -x[1])[:RANKED_DOCUMENTS]
        ranked += [ir_measures.ScoredDoc(question.id, doc, float(s)) for doc, s in top]
    result = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], cache.qrels, ranked)
    return {"ndcg@10": result[nDCG @ 10], "recall@100": result[R @ 100]}


def parse_setting(spec: str) -> Setting:
    """``dense``, ``bm25``, ``rrf:K:CANDIDATES`` or ``convex:ALPHA:NORMALISATION:CANDIDATES``."""
    method, *values = spec.split(":")
    try:
        if method in ("dense", "bm25") and not values:
            single: Method = "dense" if method == "dense" else "bm25"
            return Setting(single, fusion_params(candidates=DEPTH))
        if method == "rrf":
            k, candidates = values
            params = fusion_params(method="rrf", rrf_k=int(k), candidates=int(candidates))
            return Setting("rrf", params)
        if method == "convex":
            alpha, how, candidates = values
            if how in get_args(Normalisation):
                params = fusion_params(alpha=float(alpha), candidates=int(candidates))
                return Setting("convex", params, cast(Normalisation, how))
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"not a fusion setting: {spec!r}")


def grid() -> list[Setting]:
    """The single retrievers, then every RRF and convex setting of the grid."""
    settings = [parse_setting("dense"), parse_setting("bm25")]
    for k, n in itertools.product(GRID_RRF_K, GRID_CANDIDATES):
        settings.append(Setting("rrf", fusion_params(method="rrf", rrf_k=k, candidates=n)))
    for alpha, how, n in itertools.product(GRID_ALPHA, GRID_NORMALISATION, GRID_CANDIDATES):
        settings.append(Setting("convex", fusion_params(alpha=alpha, candidates=n), how))
    return settings


def main() -> None:
    default = FusionParams()
    parser = make_parser(__doc__)
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--split", default="train")
    parser.add_argument(
        "--only",
        nargs="*",
        type=parse_setting,
        help="settings to score, e.g. convex:0.5:minmax:100 rrf:60:100",
    )
    parser.add_argument(
        "--sentence-weights",
        nargs="*",
        type=float,
        help="score the default fusion followed by sentence rescoring of the top "
        f"{default.sentence_depth} at these weights",
    )
    args = parser.parse_args()
    cache = prepare(args.dataset, args.split)
    if args.sentence_weights is not None:
        print("\n".join(table_head(["split", "sentence weight", "nDCG@10", "Recall@100"])))
        for weight in args.sentence_weights:
            setting = Setting("convex", replace(default, sentence_weight=weight), "max")
            m = evaluate(cache, setting)
            row = [args.split, f"{weight:g}", f"{m['ndcg@10']:.4f}", f"{m['recall@100']:.4f}"]
            print(table_row(row), flush=True)
        return
    columns = ["split", "method", "param", "normalisation", "candidates", "nDCG@10", "Recall@100"]
    print("\n".join(table_head(columns)))
    for setting in args.only or grid():
        m = evaluate(cache, setting)
        row = [args.split, setting.method, f"{setting.param:g}", setting.normalisation or "-"]
        row += [setting.fusion.candidates, f"{m['ndcg@10']:.4f}", f"{m['recall@100']:.4f}"]
        print(table_row(row), flush=True)


if __name__ == "__main__":
    main()
