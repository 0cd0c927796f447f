#!/usr/bin/env python
"""Cross-check `qa eval` against MTEB's protocol on a BEIR dataset (e.g. SciFact).

MTEB embeds one vector per document ("title text", truncated at the model's 256 word
pieces) and ranks by exact cosine; `qa eval` ranks documents by their best passage (the
indexer splits long documents at sentence boundaries instead of truncating). This script
runs MTEB's protocol with the same model and the same metric code (qa.evaluation), so a
difference between the two figures is down to passages vs truncation, nothing else.

    python scripts/mteb_protocol_check.py ../shared/datasets/scifact --split test
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from harness import jsonl_lines, make_parser

from qa.encoding import Embedder
from qa.evaluation import compute_metrics, load_dataset


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("dataset", type=Path, help="a BEIR folder")
    parser.add_argument("--split", action="append", help="qrels split(s) (default: test)")
    parser.add_argument("--vectors", type=Path, help="cache the document vectors in this .npy file")
    parser.add_argument(
        "--model", help="sentence-transformers model folder (default: bundled MiniLM)"
    )
    args = parser.parse_args()

    docs = [json.loads(line) for line in jsonl_lines(args.dataset / "corpus.jsonl")]
    ids = [str(d["_id"]) for d in docs]
    texts = [
        (str(d.get("title") or "") + " " + str(d.get("text") or "")).strip() for d in docs
    ]  # BEIR/MTEB join
    embedder = Embedder(args.model)
    model = embedder.model
    counts = embedder.count_tokens(texts)
    window = model.max_seq_length - 2
    print(
        f"{len(docs)} documents; {sum(c > window for c in counts)} are truncated at {model.max_seq_length} word pieces"
    )
    if args.vectors and args.vectors.exists():
        vectors = np.load(args.vectors)
    else:
        started = time.perf_counter()
        vectors = model.encode(
            texts,
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=True,
        )
        print(f"embedded in {time.perf_counter() - started:.0f} s")
        if args.vectors:
            np.save(args.vectors, vectors)
    for split in args.split or ["test"]:
        dataset = load_dataset(args.dataset, split)
        queries = model.encode(
            [q.text for q in dataset.questions], normalize_embeddings=True, convert_to_numpy=True
        )
        scores = queries @ vectors.T
        run = {
            q.id: [ids[j] for j in np.argsort(-scores[i], kind="stable")[:1000]]
            for i, q in enumerate(dataset.questions)
        }
        totals, _ = compute_metrics({q.id: q.gold_documents for q in dataset.questions}, run)
        print(f"{split}: " + "  ".join(f"{k} {v:.4f}" for k, v in totals.items()))


if __name__ == "__main__":
    main()
