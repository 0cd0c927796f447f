#!/usr/bin/env python
"""Benchmark ``/v1/ask`` of real ``qa serve`` processes against a bare sentence-transformers query.

For each collection (the bundled seed article with its labelled questions, and SciFact
with its 300 test queries) it starts two real ``qa serve`` subprocesses on free loopback
ports, with rate limiting off:

* ``default``:  QA_RETRIEVER=hybrid (BM25 + dense fusion, sentence rescoring: the default);
* ``baseline``: QA_RETRIEVER=dense QA_SENTENCE_WEIGHT=0 (retrieval as before the
  answer-quality issue; issue 6's target is default p50 <= 1.3x baseline p50);

and in ONE run, for ``--rounds`` rounds (medians are reported), measures

* the bare in-process cost of one query as a user of plain sentence-transformers pays it:
  ``SentenceTransformer.encode(question)`` (torch) + FAISS search of the collection's
  ``dense.faiss`` (top 5), sequentially over the same questions;
* ``POST /v1/ask`` latency p50/p95/p99 and throughput at concurrency 1, 8 and 32 with an
  httpx async client (bounded request counts, after a warm-up), for both servers, the two
  servers measured back to back at each level (alternating which goes first);

and reports HTTP p50 / bare p50 at concurrency 1, throughput at 32 / sequential bare
throughput, default p50 / baseline p50, and the server-side stage times (``timings_ms``).

    python scripts/bench_api.py                          # seed + SciFact, 3 rounds
    python scripts/bench_api.py --only seed --rounds 1   # a quick check
    python scripts/bench_api.py --markdown reports/bench-api.md --json > reports/bench-api.json
    python scripts/bench_api.py --profile reports/profiles   # + py-spy of each default server at c=1
    python scripts/bench_api.py --profile reports/profiles --profile-level 32   # ... under load

SciFact: an existing collection ``eval-scifact-*`` in the checkout's ``index/`` (as built
by ``qa eval``) is reused read-only (linked into a temporary index folder); the script
waits up to ``--wait`` seconds for its CURRENT file while another process builds it, and
otherwise builds one into the temporary folder. All traffic goes to 127.0.0.1 only, every
loop is bounded, and the servers are stopped (SIGINT) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench_api_report import (
    BenchResult,
    CollectionResult,
    Profile,
    Round,
    Stats,
    Timings,
    cold_ratios,
    markdown,
    summarise_rounds,
)
from bench_api_runs import COLD_BATCH, Bench, cold_pass, one_round, profile_server, warm_up
from harness import (
    ROOT,
    SCIFACT,
    SEED_CORPUS,
    Machine,
    Server,
    add_report_options,
    copy_models,
    emit,
    jsonl_lines,
    make_parser,
    qa_serve,
    say,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from qa.service import QAService

SEED_QUESTIONS = ROOT / "scripts" / "data" / "songjiang_questions.jsonl"
CONFIGS = {
    "default": {"QA_RETRIEVER": "hybrid"},
    "baseline": {"QA_RETRIEVER": "dense", "QA_SENTENCE_WEIGHT": "0"},
}
SEED_WARMUP = [  # warm-up questions on the seed article that are not in the labelled set
    "What is Songjiang known for?",
    "Where is Songjiang district?",
    "Which companies have factories in Songjiang?",
    "What does the district offer to young researchers?",
    "How do firms get licences in the district?",
    "What is the Yangtze River Delta?",
    "Which universities are mentioned?",
    "What kind of housing is available?",
    "What did the reporter see at the factory?",
    "Who was interviewed for the article?",
]


@dataclass
class Target:
    """A collection to benchmark, the questions measured on it and the warm-up questions."""

    label: str
    collection: str
    questions: list[str]
    warmup: list[str]


def seed_questions(path: Path) -> list[str]:
    """The questions of a labelled question file."""
    return [json.loads(line)["question"] for line in jsonl_lines(path)]


def scifact_questions(folder: Path, split: str = "test") -> list[str]:
    """The queries of a BEIR split."""
    from qa.evaluation import load_beir

    return [q.text for q in load_beir(folder, split).questions]


def find_scifact_collection(index_dir: Path) -> Path | None:
    """A built ``eval-scifact-*`` collection (newest CURRENT), or None."""
    built = [p for p in index_dir.glob("eval-scifact-*") if (p / "CURRENT").is_file()]
    return max(built, key=lambda p: (p / "CURRENT").stat().st_mtime) if built else None


def wait_for_scifact(index_dir: Path, wait_s: float) -> Path | None:
    """That collection, waiting up to ``wait_s`` for another process to finish building it."""
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        found = find_scifact_collection(index_dir)
        if found is not None or time.monotonic() >= deadline:
            return found
        if not announced:
            pending = sorted(p.name for p in index_dir.glob("eval-scifact-*")) or "none"
            say(
                f"waiting up to {wait_s:.0f} s for a SciFact collection in {index_dir} "
                f"(being built: {pending})"
            )
            announced = True
        time.sleep(10)


def git_state() -> str:
    """The commit the servers ran, and the files under qa/ that differed from it."""

    def git(*args: str) -> str:
        run = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
        return run.stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = [
            line[3:] for line in git("status", "--porcelain", "qa").split("\n") if line.strip()
        ]
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (f" + uncommitted {', '.join(changed)}" if changed else "")


def query_backend(server: Server) -> str:
    """Which question encoder the server ended up with, from its log."""
    log = server.log_text()
    if "ONNX query encoder unavailable" in log:
        return "torch (ONNX unavailable)"
    found = re.search(r"questions are encoded with (\S+)", log)
    return found.group(1) if found else "onnx"


@dataclass
class Measured:
    """What the passes on one collection measured."""

    rounds: list[Round]
    cold: dict[str, Stats]
    cold_server_ms: dict[str, Timings]
    profiles: dict[str, Profile]
    query_backend: str


def measure(bench: Bench, target: Target) -> Measured:
    """Warm-up, the cold pass, the rounds and (``--profile``) the profiles."""
    args, label = bench.args, target.label
    say(f"[{label}] servers ready; warming up on {len(target.warmup)} other questions")
    warm_up(bench, target.warmup)
    say(
        f"[{label}] cold pass: each question once, first time, c=1, the servers alternating "
        f"every {COLD_BATCH}"
    )
    cold, cold_ms = cold_pass(bench)
    rounds = [one_round(bench, number, label) for number in range(args.rounds)]
    profiles: dict[str, Profile] = {}
    profiled = ("default", "baseline") if args.profile_baseline else ("default",)
    for name in profiled if args.profile else ():
        level = args.profile_level
        say(f"[{label}] profiling {name} at c={level} with py-spy")
        requests = min(bench.requests, 100) * max(1, level // 8)
        out = f"{label}-{name}-c{level}"
        server = bench.servers[name]
        profiles[name] = profile_server(
            server, bench.questions, requests, args.top_k, args.profile, out, level
        )
    return Measured(rounds, cold, cold_ms, profiles, query_backend(bench.servers["default"]))


def bench_collection(
    target: Target,
    index_dir: Path,
    model: SentenceTransformer,
    args: argparse.Namespace,
    log_dir: Path,
) -> CollectionResult:
    """Both servers started over ``target``'s collection and measured; the medians."""
    from qa.store import Collection

    loaded = Collection.load(index_dir / target.collection)
    counts = loaded.counts
    requests = args.requests or max(150, len(target.questions))
    questions = target.questions[:requests]  # bare and HTTP over the same questions
    say(
        f"[{target.label}] collection {target.collection!r}: {counts['documents']} documents, "
        f"{counts['passages']} passages; {len(questions)} questions, {requests} requests per level"
    )
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(qa_serve(name, index_dir, log_dir, env, target.collection))
            for name, env in CONFIGS.items()
        }
        # one segment: a fresh build, or a format-2 collection converted on load
        index = loaded.segments[0].index
        measured = measure(Bench(servers, model, index, questions, requests, args), target)
    loaded.close()
    medians = summarise_rounds(measured.rounds)
    result = CollectionResult(
        label=target.label,
        collection=target.collection,
        documents=counts["documents"],
        passages=counts["passages"],
        questions=len(questions),
        requests_per_level=requests,
        query_backend=measured.query_backend,
        bare=medians.bare,
        bare_1thread=medians.bare_1thread,
        http=medians.http,
        server_ms=medians.server_ms,
        ratios=medians.ratios,
        rounds=measured.rounds,
        profiles=measured.profiles,
        cold=measured.cold,
        cold_server_ms=measured.cold_server_ms,
        warmup_questions=len(target.warmup),
    )
    result.cold_ratios = cold_ratios(result)
    return result


def targets(service: QAService, index_dir: Path, args: argparse.Namespace) -> list[Target]:
    """The collections asked for, indexed (seed) or found and linked (SciFact) in ``index_dir``."""
    found: list[Target] = []
    if args.only in (None, "seed"):
        say(f"indexing the seed corpus {args.corpus}")
        service.index([args.corpus], "seed")
        found.append(Target("seed", "seed", seed_questions(args.seed_questions), SEED_WARMUP))
    if args.only in (None, "scifact"):
        built = wait_for_scifact(args.scifact_index_dir, args.wait)
        if built is not None:
            say(f"reusing {built} (read-only, linked)")
            (index_dir / built.name).symlink_to(built.resolve(), target_is_directory=True)
            name = built.name
        else:
            say("no SciFact collection found: building one into the temporary folder (slow)")
            service.index([args.scifact / "corpus.jsonl"], "scifact", progress=True)
            name = "scifact"
        warmup = scifact_questions(args.scifact, "train")[:50]
        found.append(Target("scifact", name, scifact_questions(args.scifact), warmup))
    return found


def run(args: argparse.Namespace) -> BenchResult:
    """Every asked collection benchmarked from a temporary index folder (removed afterwards)."""
    from qa.config import Settings
    from qa.service import QAService

    scratch = Path(tempfile.mkdtemp(prefix="qa-bench-api-"))
    load_avg_start = os.getloadavg()
    try:
        index_dir = scratch / "index"
        index_dir.mkdir()
        copy_models(ROOT / "index", index_dir)
        service = QAService(Settings(index_dir=index_dir))
        say("loading the model (torch)")
        model = service.embedder.model  # a plain SentenceTransformer(folder, device="cpu")
        results = [
            bench_collection(target, index_dir, model, args, scratch)
            for target in targets(service, index_dir, args)
        ]
        return BenchResult(
            machine=Machine.now(load_avg_start),
            code=git_state(),
            rounds=args.rounds,
            top_k=args.top_k,
            levels=args.levels,
            configs=CONFIGS,
            collections=results,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    add = parser.add_argument
    add("--only", choices=["seed", "scifact"], help="benchmark one collection")
    add("--levels", default="1,8,32", help="concurrency levels (comma-separated; must include 1)")
    add(
        "--requests",
        type=int,
        default=0,
        help="requests per level and server (default: max(150, questions)); fewer than the "
        "questions: only the first N questions are used, for bare and HTTP alike",
    )
    add("--rounds", type=int, default=3, help="repetitions; medians are reported")
    add("--warmup", type=int, default=30, help="sequential warm-up requests per server")
    add("--top-k", type=int, default=5)
    add("--seed-questions", type=Path, default=SEED_QUESTIONS)
    add("--corpus", type=Path, default=SEED_CORPUS, help="the seed documents")
    add("--scifact", type=Path, default=SCIFACT, help="the SciFact BEIR folder")
    add(
        "--scifact-index-dir",
        type=Path,
        default=ROOT / "index",
        help="where to look for an existing eval-scifact-* collection",
    )
    add("--wait", type=float, default=3600, help="seconds to wait for that collection's CURRENT")
    add(
        "--profile",
        type=Path,
        help="also py-spy the default server (at --profile-level); collapsed stacks go here",
    )
    add("--profile-baseline", action="store_true", help="with --profile, the baseline server too")
    add(
        "--profile-level",
        type=int,
        default=1,
        help="with --profile, the concurrency profiled (32: where the time goes under load)",
    )
    backends = ["auto", "onnx", "onnx-int8", "torch"]
    add(
        "--query-backend",
        choices=backends,
        help="both servers' QA_QUERY_BACKEND (default: the servers' own, auto)",
    )
    add(
        "--baseline-env",
        nargs="+",
        metavar="QA_NAME=VALUE",
        help="compare one setting instead: the baseline server runs the default configuration "
        "with these settings (e.g. --query-backend onnx-int8 --baseline-env QA_QUERY_BACKEND=onnx)",
    )
    add(
        "--no-reply-cache",
        action="store_true",
        help="servers with QA_REPLY_CACHE=0: repeated questions are encoded and searched again",
    )
    add_report_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.levels = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    if args.no_reply_cache:
        for env in CONFIGS.values():
            env["QA_REPLY_CACHE"] = "0"
    if args.query_backend:
        for env in CONFIGS.values():
            env["QA_QUERY_BACKEND"] = args.query_backend
    if args.baseline_env:
        pairs = [item.partition("=") for item in args.baseline_env]
        if any(not name.startswith("QA_") or not sep for name, sep, _ in pairs):
            parser.error("--baseline-env takes QA_NAME=VALUE pairs")
        CONFIGS["baseline"] = {**CONFIGS["default"], **{n: v for n, _, v in pairs}}
    if 1 not in args.levels:
        parser.error("--levels must include 1")
    result = run(args)
    emit(asdict(result), markdown(result), args.json, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
