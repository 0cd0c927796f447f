"""Peak memory of ``qa index`` at ~10k and ~100k passages: does it grow with the corpus?

The corpus is SciFact's 5,183 abstracts (10,818 passages) written ``--copies`` times into
one JSONL file, each copy's documents with their own ids and a copy number in front of each
text (so every passage is embedded, none shared). Embedding 100k passages with
all-MiniLM-L6-v2 takes ~45 min on 2 cores, so the model is a one-layer BERT of the same
width (384), window (256) and tokenizer, randomly initialised and built locally: the same
documents, passages, batches and vector sizes flow through parse -> split -> embed -> write,
only the transformer is cheaper. Peak RSS is ``ru_maxrss`` of the ``qa index`` process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import ROOT, SCIFACT, add_report_options, emit, make_parser, say, table


def one_layer_model(folder: Path) -> Path:
    """A one-layer, 384-wide sentence-transformers model with MiniLM's tokenizer."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from qa.encoding.model import resolve_model_path

    target = folder / "model"
    if target.exists():
        return target
    tokenizer = BertTokenizerFast.from_pretrained(str(resolve_model_path(None)))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=384,
        num_hidden_layers=1,
        num_attention_heads=6,
        intermediate_size=1536,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    word = models.Transformer(str(folder / "bert"), max_seq_length=256)
    pooling = models.Pooling(384, pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(target))
    return target


def corpus(folder: Path, copies: int) -> Path:
    """SciFact written ``copies`` times (distinct ids and texts) as one JSONL file."""
    target = folder / f"scifact-x{copies}" / "corpus.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    with target.open("w", encoding="utf-8") as out:
        for copy in range(copies):
            for line in lines:
                record = json.loads(line)
                record["_id"] = f"{record['_id']}-{copy}"
                record["text"] = f"Copy {copy}. {record['text']}"
                out.write(json.dumps(record) + "\n")
    return target


def index(path: Path, model: Path, index_dir: Path) -> dict[str, float]:
    """Run ``qa index`` under ``/usr/bin/time``; its seconds, passages and peak RSS (MB)."""
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir), "PYTHONPATH": str(ROOT)}
    peak_file = index_dir.parent / f"{index_dir.name}.maxrss"
    command = ["/usr/bin/time", "-f", "%M", "-o", str(peak_file), sys.executable, "-m", "qa"]
    command += ["index", str(path), "-c", "mem", "--model", str(model), "--json", "--full"]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - began
    peak = int(peak_file.read_text().split()[-1])  # kB
    report = json.loads(done.stdout)
    say(f"{report['passages']:,} passages: {seconds:.0f} s, peak {peak / 1024:.0f} MB")
    return {
        "passages": report["passages"],
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak / 1024, 1),
    }


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-index-memory"))
    add_report_options(parser)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    model = one_layer_model(args.work)
    rows = []
    for copies in sorted(args.copies):
        rows.append(index(corpus(args.work, copies), model, args.work / f"index-{copies}"))
    columns = list(rows[0])
    markdown = "\n".join(table(columns, [[r[c] for c in columns] for r in rows]))
    emit({"rows": rows}, markdown, args.json, args.markdown)


if __name__ == "__main__":
    main()
