#!/usr/bin/env python
"""Local engine against the Ray engine: the same ~10k passages built both ways, in one run.

The corpus is SciFact's 5,183 abstracts (10,818 passages; ``--limit`` takes the first N
abstracts for a quick check), written to one JSONL file. Each engine builds it as a user
does, ``qa index FILE --full --json`` in a fresh process (``--engine ray`` starts a local Ray
runtime with this machine's CPUs, or joins ``RAY_ADDRESS``), into its own collection of one
index folder. Reported per engine: wall seconds (process start, model load and the Ray
runtime included), passages per second and per CPU-hour, and the Ray/local throughput
ratio; then whether the two collections are the same (passage ids, documents, texts and
vectors to 1e-5).

    python scripts/bench_ray.py                 # SciFact, both engines
    python scripts/bench_ray.py --limit 300     # a quick check
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from harness import (
    ROOT,
    SCIFACT,
    add_report_options,
    emit,
    jsonl_lines,
    make_parser,
    say,
    table,
    write_lines,
)


def build(corpus: Path, index_dir: Path, engine: str) -> dict[str, float]:
    """``qa index`` with ``engine`` in a fresh process: its seconds and passages."""
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "qa", "index", str(corpus), "-c", engine]
    command += ["--engine", engine, "--full", "--json"]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"error: qa index --engine {engine} failed:\n{done.stderr[-2000:]}")
    passages = json.loads(done.stdout)["passages"]
    cpus = os.cpu_count() or 1
    say(f"{engine}: {passages:,} passages in {seconds:.1f} s")
    return {
        "engine": engine,
        "passages": passages,
        "seconds": round(seconds, 1),
        "passages_per_s": round(passages / seconds, 2),
        "passages_per_cpu_hour": round(passages / seconds * 3600 / cpus),
    }


def same_collection(index_dir: Path) -> dict[str, object]:
    """Whether the two builds hold the same passages, ids and vectors."""
    from qa.store import Collection

    local, ray = (Collection.load(index_dir / name) for name in ("local", "ray"))
    ids = [int(i) for i in local.live_ids()]
    same_ids = ids == [int(i) for i in ray.live_ids()]
    a, b = local.passages(ids), ray.passages(ids) if same_ids else {}
    same_text = same_ids and all(
        (a[i].document_id, a[i].ordinal, a[i].text) == (b[i].document_id, b[i].ordinal, b[i].text)
        for i in ids
    )
    gap = float(np.abs(local.vectors(ids) - ray.vectors(ids)).max()) if same_ids else float("nan")
    return {"same_ids": same_ids, "same_passages": same_text, "max_vector_difference": gap}


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--limit", type=int, default=None, help="the first N abstracts only")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-ray"))
    add_report_options(parser)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = args.work / "corpus.jsonl"
    write_lines(jsonl_lines(SCIFACT / "corpus.jsonl", args.limit), corpus)
    index_dir = args.work / "index"
    shutil.rmtree(index_dir, ignore_errors=True)  # fresh ids: --full keeps counting on
    rows = [build(corpus, index_dir, engine) for engine in ("local", "ray")]
    ratio = round(rows[1]["passages_per_s"] / rows[0]["passages_per_s"], 3)
    check = same_collection(index_dir)
    columns = list(rows[0])
    lines = table(columns, [[r[c] for c in columns] for r in rows])
    lines += ["", f"Ray / local throughput: **{ratio}×**; same collection: {check}"]
    emit(
        {"rows": rows, "ray_over_local": ratio, **check}, "\n".join(lines), args.json, args.markdown
    )


if __name__ == "__main__":
    main()
