"""Choose the hybrid fusion (method and parameters) on SciFact's train split; report on test.

    python scripts/tune_fusion.py --split train          # grid search, prints the table
    python scripts/tune_fusion.py --split test --only convex:0.5:minmax:100 rrf:60:100
    python scripts/tune_fusion.py --split train --sentence-weights 0 0.2 0.4 0.6   # the rescoring stage

Each query is encoded once and both retrievers are run once; every fusion setting is then
scored from those cached scores (passages fused, then a document scores as its best passage).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import ir_measures
import numpy as np
from ir_measures import R, nDCG

from qa.config import Settings
from qa.evaluation import ensure_collection, load_beir
from qa.service import QAService

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"


def normalise(values: np.ndarray, how: str) -> np.ndarray:
    if how == "minmax":
        low, high = values.min(), values.max()
        return (values - low) / (high - low) if high > low else np.zeros_like(values)
    if how == "zscore":
        std = values.std()
        return (values - values.mean()) / std if std > 0 else np.zeros_like(values)
    if how == "max":
        high = values.max()
        return values / high if high > 0 else np.zeros_like(values)
    raise ValueError(how)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--split", default="train")
    parser.add_argument("--only", nargs="*", help="settings to score, e.g. convex:0.5:minmax:100 rrf:60:100")
    parser.add_argument(
        "--sentence-weights", nargs="*", type=float,
        help="score the default fusion followed by sentence rescoring of the top 20 at these weights",
    )
    args = parser.parse_args()

    service = QAService(Settings())
    dataset = load_beir(args.dataset, args.split)
    prepared = ensure_collection(service, dataset)
    collection = service.collection(prepared.collection)
    doc_of = dict(collection._query("SELECT id, document_id FROM passages"))
    qrels = [ir_measures.Qrel(q.id, d, g) for q in dataset.questions for d, g in q.gold_documents.items()]
    texts = [q.text for q in dataset.questions]
    started = time.perf_counter()
    vectors = service.embedder.encode_queries(texts)
    depth = 300
    dense_ids, dense_scores = collection.dense_search(vectors, depth)
    lexical = collection.lexical
    bm25 = [lexical.scores(t) for t in texts]
    print(f"{len(texts)} queries encoded and searched in {time.perf_counter() - started:.1f} s")

    def run(
        method: str, param: float, norm: str, candidates: int, sentence_weight: float = 0.0, depth: int = 20
    ) -> dict[str, float]:
        scored = []
        for qi, question in enumerate(dataset.questions):
            d_ids = dense_ids[qi][:candidates]
            d_map = dict(zip(d_ids.tolist(), dense_scores[qi][:candidates].tolist()))
            b_all = bm25[qi]
            b_top, b_scores = lexical.top(b_all, candidates)
            if method == "dense":
                fused = d_map
            elif method == "bm25":
                fused = dict(zip(b_top.tolist(), b_scores.tolist()))
            elif method == "rrf":
                fused = {}
                for rank, pid in enumerate(d_ids.tolist()):
                    fused[pid] = fused.get(pid, 0) + 1 / (param + rank + 1)
                for rank, pid in enumerate(b_top.tolist()):
                    fused[pid] = fused.get(pid, 0) + 1 / (param + rank + 1)
            else:
                union = list(dict.fromkeys(d_ids.tolist() + b_top.tolist()))
                missing = [p for p in union if p not in d_map]
                if missing:
                    d_map.update(zip(missing, (collection.vectors(missing) @ vectors[qi]).tolist()))
                d = np.array([d_map[p] for p in union])
                b = b_all[lexical.rows(np.array(union))]
                f = param * normalise(d, norm) + (1 - param) * normalise(b, norm)
                fused = dict(zip(union, f.tolist()))
            if sentence_weight > 0:
                head = sorted(fused, key=lambda p: -fused[p])[:depth]
                sentences = collection.sentences(head)
                top = max(fused[p] for p in head)
                best_sentence = {p: float((sentences[p][1] @ vectors[qi]).max()) for p in head}
                scale = max(best_sentence.values())
                floor = min((1 - sentence_weight) * fused[p] / top + sentence_weight * best_sentence[p] / scale for p in head)
                rescored = {p: min(fused[p] / top * (1 - sentence_weight), floor) for p in fused}
                rescored.update(
                    {p: (1 - sentence_weight) * fused[p] / top + sentence_weight * best_sentence[p] / scale for p in head}
                )
                fused = rescored
            best: dict[str, float] = {}
            for pid, score in fused.items():
                doc = doc_of[pid]
                if score > best.get(doc, -1e9):
                    best[doc] = score
            for doc, score in sorted(best.items(), key=lambda x: -x[1])[:100]:
                scored.append(ir_measures.ScoredDoc(question.id, doc, float(score)))
        result = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], qrels, scored)
        return {"ndcg@10": result[nDCG @ 10], "recall@100": result[R @ 100]}

    if args.sentence_weights is not None:
        print("| split | sentence weight | nDCG@10 | Recall@100 |")
        print("|---|---|---|---|")
        for weight in args.sentence_weights:
            metrics = run("convex", 0.5, "max", 100, weight)
            print(f"| {args.split} | {weight:g} | {metrics['ndcg@10']:.4f} | {metrics['recall@100']:.4f} |", flush=True)
        return
    if args.only:
        settings = []
        for spec in args.only:
            parts = spec.split(":")
            if parts[0] in {"dense", "bm25"}:
                settings.append((parts[0], 0.0, "-", depth))
            elif parts[0] == "rrf":
                settings.append(("rrf", float(parts[1]), "-", int(parts[2])))
            else:
                settings.append(("convex", float(parts[1]), parts[2], int(parts[3])))
    else:
        settings = [("dense", 0.0, "-", depth), ("bm25", 0.0, "-", depth)]
        settings += [("rrf", k, "-", c) for k, c in itertools.product([10, 30, 60, 100], [50, 100, 200])]
        settings += [
            ("convex", a, n, c)
            for a, n, c in itertools.product([0.3, 0.4, 0.5, 0.6, 0.7], ["minmax", "zscore", "max"], [50, 100, 200])
        ]
    print("| split | method | param | normalisation | candidates | nDCG@10 | Recall@100 |")
    print("|---|---|---|---|---|---|---|")
    for method, param, norm, candidates in settings:
        metrics = run(method, param, norm, candidates)
        print(
            f"| {args.split} | {method} | {param:g} | {norm} | {candidates} | "
            f"{metrics['ndcg@10']:.4f} | {metrics['recall@100']:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
