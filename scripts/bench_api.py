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

SciFact: an existing collection ``eval-scifact-*`` in the checkout's ``index/`` (as built
by ``qa eval``) is reused read-only (linked into a temporary index folder); the script
waits up to ``--wait`` seconds for its CURRENT file while another process builds it, and
otherwise builds one into the temporary folder. All traffic goes to 127.0.0.1 only, every
loop is bounded, and the servers are stopped (SIGINT) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import httpx
from loadtest import percentile, stop_server  # scripts/loadtest.py: shared with the load test

SHARED = Path(os.environ.get("QA_SHARED_DIR", ROOT.parent / "shared"))
SCIFACT = SHARED / "datasets" / "scifact"
SEED_QUESTIONS = ROOT / "scripts" / "data" / "songjiang_questions.jsonl"
CONFIGS = {
    "default": {"QA_RETRIEVER": "hybrid"},
    "baseline": {"QA_RETRIEVER": "dense", "QA_SENTENCE_WEIGHT": "0"},
}
TARGET_CONFIG_RATIO = 1.3
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


# --------------------------------------------------------------------------- statistics


def latency_stats(latencies_ms: list[float], wall_s: float, errors: int = 0) -> dict[str, float]:
    return {
        "requests": len(latencies_ms),
        "errors": errors,
        "p50_ms": round(percentile(latencies_ms, 50), 2),
        "p95_ms": round(percentile(latencies_ms, 95), 2),
        "p99_ms": round(percentile(latencies_ms, 99), 2),
        "per_s": round(len(latencies_ms) / wall_s, 2) if wall_s else 0.0,
    }


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    keys = rounds[0].keys()
    return {k: round(statistics.median(r[k] for r in rounds), 2) for k in keys}


# --------------------------------------------------------------------------- questions and collections


def seed_questions(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line)["question"])
    return out


def scifact_questions(folder: Path, split: str = "test") -> list[str]:
    from qa.evaluation import load_beir

    return [q.text for q in load_beir(folder, split).questions]


def find_scifact_collection(index_dir: Path) -> Path | None:
    """A built ``eval-scifact-*`` collection (newest CURRENT), or None."""
    built = [p for p in index_dir.glob("eval-scifact-*") if (p / "CURRENT").is_file()]
    return max(built, key=lambda p: (p / "CURRENT").stat().st_mtime) if built else None


def wait_for_scifact(index_dir: Path, wait_s: float) -> Path | None:
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        found = find_scifact_collection(index_dir)
        if found is not None or time.monotonic() >= deadline:
            return found
        if not announced:
            pending = sorted(p.name for p in index_dir.glob("eval-scifact-*"))
            say(f"waiting up to {wait_s:.0f} s for a SciFact collection in {index_dir} (being built: {pending or 'none'})")
            announced = True
        time.sleep(10)


def git_state() -> str:
    """The commit the servers ran, and the files under qa/ that differed from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "qa"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False).stdout.split("\n")
        changed = [line[3:] for line in dirty if line.strip()]
        return head + (f" + uncommitted {', '.join(changed)}" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    base: str
    process: subprocess.Popen
    log: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def serve(name: str, index_dir: Path, collection: str, extra_env: dict[str, str], log_dir: Path) -> Iterator[Server]:
    """A real ``qa serve`` subprocess on a free loopback port; stopped with SIGINT afterwards."""
    port = free_port()
    config_env = {
        "QA_INDEX_DIR": str(index_dir),
        "QA_RATE_LIMIT_PER_MINUTE": "0",
        **extra_env,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(config_env)
    log = log_dir / f"serve-{collection}-{name}.log"
    handle = log.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", str(port), "--collection", collection],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=handle,
    )
    server = Server(name, f"http://127.0.0.1:{port}", process, log, config_env)
    try:
        deadline = time.monotonic() + 900
        while True:
            if process.poll() is not None:
                raise SystemExit(f"error: qa serve ({name}) exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{server.base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"error: qa serve ({name}) not ready after 900 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield server
    finally:
        stop_server(process)
        handle.close()


# --------------------------------------------------------------------------- driving


@dataclass
class LevelResult:
    concurrency: int
    latencies_ms: list[float]
    wall_s: float
    statuses: Counter
    bodies: list[bytes] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    def stats(self) -> dict[str, float]:
        return latency_stats(self.latencies_ms, self.wall_s, self.errors)

    def server_timings(self) -> dict[str, float]:
        """Medians of the server's own ``timings_ms`` over the successful answers."""
        stages: dict[str, list[float]] = defaultdict(list)
        for body in self.bodies:
            try:
                for key, value in (json.loads(body).get("timings_ms") or {}).items():
                    stages[key].append(float(value))
            except ValueError:
                continue
        return {k: round(statistics.median(v), 2) for k, v in stages.items() if v}


async def drive(base: str, questions: list[str], concurrency: int, requests: int, top_k: int, offset: int = 0) -> LevelResult:
    """``requests`` POST /v1/ask calls from ``concurrency`` workers; bounded in count and time."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    bodies: list[bytes] = []
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(60.0)) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < requests:
                i = next_index
                next_index += 1
                payload = {"question": questions[(offset + i) % len(questions)], "top_k": top_k}
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/ask", json=payload)
                    content = response.content
                    status = response.status_code
                except httpx.HTTPError as exc:
                    content, status = str(exc).encode(), 0
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] += 1
                if status == 200:
                    bodies.append(content)

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=max(120, requests * 5))
        wall = time.perf_counter() - started
    return LevelResult(concurrency, latencies, wall, statuses, bodies)


@contextmanager
def single_threaded() -> Iterator[None]:
    """torch and FAISS on one thread each (then restored): the contention-robust bare figure."""
    import faiss
    import torch

    threads, omp = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(omp)


def bare_pass(model: Any, index: Any, questions: list[str], top_k: int) -> tuple[list[float], float]:
    """Per-question ms of ``SentenceTransformer.encode(question)`` + FAISS top-k search."""
    import numpy as np

    latencies = []
    wall = time.perf_counter()
    for question in questions:
        started = time.perf_counter()
        vector = model.encode(question, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        index.search(np.asarray(vector, dtype=np.float32)[None, :], top_k)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, time.perf_counter() - wall


# --------------------------------------------------------------------------- profiling


def profile_server(server: Server, questions: list[str], requests: int, top_k: int, out_dir: Path, label: str) -> dict[str, Any]:
    """py-spy (collapsed stacks) of the server during a concurrency-1 pass; a summary of where time goes."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{label}.collapsed.txt"
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(server.pid), "--rate", "250", "--format", "raw", "--output", str(raw), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(2)  # attach
    result = asyncio.run(drive(server.base, questions, 1, requests, top_k))
    spy.send_signal(signal.SIGINT)
    try:
        _, err = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if not raw.exists():
        return {"error": f"py-spy wrote nothing: {err[-500:]}"}
    return {"file": str(raw), "requests": len(result.latencies_ms), **summarise_collapsed(raw)}


def _frame_name(frame: str) -> str:
    """``function (path:line)`` -> ``function (short path)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


def summarise_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";")]
        # drop the thread/process header py-spy puts first when it is not a Python frame
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    def pct(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    interesting = [(k, v) for k, v in inclusive.most_common() if "(qa/" in k or "onnxruntime" in k or "faiss" in k
                   or "bm25s" in k or "sqlite" in k.lower() or "json" in k or "pydantic" in k or "starlette" in k
                   or "fastapi" in k or "anyio" in k]
    return {
        "samples": total,
        "top_inclusive": [(k, pct(v)) for k, v in interesting[:top]],
        "top_self": [(k, pct(v)) for k, v in own.most_common(top)],
    }


# --------------------------------------------------------------------------- one collection


def bench_collection(
    label: str,
    collection: str,
    index_dir: Path,
    questions: list[str],
    warmup_questions: list[str],
    bare_model: Any,
    args: argparse.Namespace,
    log_dir: Path,
) -> dict[str, Any]:
    from qa.store.collection import Collection

    loaded = Collection.load(index_dir / collection)
    counts = loaded.counts
    dense = loaded.dense
    requests = args.requests or max(150, len(questions))
    if requests < len(questions):  # bare and HTTP over the same questions
        questions = questions[:requests]
    say(f"[{label}] collection {collection!r}: {counts['documents']} documents, {counts['passages']} passages; "
        f"{len(questions)} questions, {requests} requests per level")
    rounds: list[dict[str, Any]] = []
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(serve(name, index_dir, collection, env, log_dir))
            for name, env in CONFIGS.items()
        }
        # warm-up on OTHER questions (lazy loads, thread pools, connections), so that the cold
        # pass below sees each measured question for the first time (answer-sentence cache cold)
        say(f"[{label}] servers ready; warming up on {len(warmup_questions)} other questions")
        for server in servers.values():
            asyncio.run(drive(server.base, warmup_questions, 1, min(len(warmup_questions), args.warmup), args.top_k))
            asyncio.run(drive(server.base, warmup_questions, max(args.levels), max(args.levels), args.top_k))
        bare_pass(bare_model, dense, warmup_questions[:20], args.top_k)  # warm up torch
        say(f"[{label}] cold pass: each question once, first time, c=1, the servers alternating every 25")
        parts: dict[str, list[LevelResult]] = {name: [] for name in servers}
        for start in range(0, len(questions), 25):
            count = min(25, len(questions) - start)
            for name, server in servers.items():
                parts[name].append(asyncio.run(drive(server.base, questions, 1, count, args.top_k, offset=start)))
        cold: dict[str, Any] = {}
        cold_ms: dict[str, Any] = {}
        for name, pieces in parts.items():
            merged = LevelResult(
                1, [x for r in pieces for x in r.latencies_ms], sum(r.wall_s for r in pieces),
                sum((r.statuses for r in pieces), Counter()), [b for r in pieces for b in r.bodies],
            )
            cold[name] = merged.stats()
            cold_ms[name] = merged.server_timings()
        for number in range(args.rounds):
            say(f"[{label}] round {number + 1}/{args.rounds}: bare")
            latencies, wall = bare_pass(bare_model, dense, questions, args.top_k)
            this: dict[str, Any] = {"bare": latency_stats(latencies, wall), "http": {n: {} for n in servers}, "server_ms": {n: {} for n in servers}}
            with single_threaded():
                latencies, wall = bare_pass(bare_model, dense, questions, args.top_k)
            this["bare_1thread"] = latency_stats(latencies, wall)
            for level in args.levels:
                order = list(servers) if number % 2 == 0 else list(reversed(servers))
                for name in order:
                    say(f"[{label}] round {number + 1}/{args.rounds}: {name} c={level}")
                    result = asyncio.run(drive(servers[name].base, questions, level, requests, args.top_k, offset=number))
                    this["http"][name][level] = result.stats()
                    this["server_ms"][name][level] = result.server_timings()
                    if result.errors:
                        say(f"[{label}] {name} c={level}: {result.errors} errors: {dict(result.statuses)}")
            rounds.append(this)
        profiles = {}
        if args.profile:
            for name in ("default", "baseline") if args.profile_baseline else ("default",):
                say(f"[{label}] profiling {name} at c=1 with py-spy")
                profiles[name] = profile_server(
                    servers[name], questions, min(requests, 100), args.top_k, args.profile, f"{label}-{name}-c1"
                )
        backend = _backend(servers["default"].log)
    loaded.close()
    summary = summarise_rounds(label, collection, counts, len(questions), requests, rounds, profiles, backend)
    summary["cold"] = cold
    summary["cold_server_ms"] = cold_ms
    summary["warmup_questions"] = len(warmup_questions)
    bare_p50 = summary["bare"]["p50_ms"]
    summary["cold_ratios"] = {
        "default_over_baseline_p50": round(cold["default"]["p50_ms"] / cold["baseline"]["p50_ms"], 3),
        "default_over_bare_p50": round(cold["default"]["p50_ms"] / bare_p50, 3),
        "default_over_bare_1thread_p50": round(cold["default"]["p50_ms"] / summary["bare_1thread"]["p50_ms"], 3),
    }
    return summary


def _backend(log: Path) -> str | None:
    text = log.read_text(encoding="utf-8", errors="replace")
    return "torch (ONNX unavailable)" if "ONNX query encoder unavailable" in text else "onnx (auto)"


def summarise_rounds(
    label: str, collection: str, counts: dict[str, int], questions: int, requests: int,
    rounds: list[dict[str, Any]], profiles: dict[str, Any], backend: str | None,
) -> dict[str, Any]:
    configs = list(rounds[0]["http"])
    levels = list(rounds[0]["http"][configs[0]])
    bare = median_of([r["bare"] for r in rounds])
    bare_1thread = median_of([r["bare_1thread"] for r in rounds])
    http = {c: {lvl: median_of([r["http"][c][lvl] for r in rounds]) for lvl in levels} for c in configs}
    server_ms = {
        c: {lvl: median_of([r["server_ms"][c][lvl] for r in rounds if r["server_ms"][c][lvl]])
            for lvl in levels if any(r["server_ms"][c][lvl] for r in rounds)}
        for c in configs
    }
    # ratios per round (paired in time), then their median
    def per_round(fn: Any) -> list[float]:
        return [round(fn(r), 3) for r in rounds]

    ratios: dict[str, Any] = {}
    for c in configs:
        ratios[f"{c}_http_p50_over_bare_p50_c1"] = per_round(lambda r, c=c: r["http"][c][1]["p50_ms"] / r["bare"]["p50_ms"])
        ratios[f"{c}_http_p50_over_bare_1thread_p50_c1"] = per_round(
            lambda r, c=c: r["http"][c][1]["p50_ms"] / r["bare_1thread"]["p50_ms"]
        )
        top = max(levels)
        ratios[f"{c}_throughput_c{top}_over_bare_sequential"] = per_round(
            lambda r, c=c, top=top: r["http"][c][top]["per_s"] / r["bare"]["per_s"]
        )
    for lvl in levels:
        ratios[f"default_over_baseline_p50_c{lvl}"] = per_round(
            lambda r, lvl=lvl: r["http"]["default"][lvl]["p50_ms"] / r["http"]["baseline"][lvl]["p50_ms"]
        )
    return {
        "label": label,
        "collection": collection,
        "documents": counts["documents"],
        "passages": counts["passages"],
        "questions": questions,
        "requests_per_level": requests,
        "query_backend": backend,
        "bare": bare,
        "bare_1thread": bare_1thread,
        "http": http,
        "server_ms": server_ms,
        "ratios": {k: {"median": round(statistics.median(v), 3), "rounds": v} for k, v in ratios.items()},
        "rounds": rounds,
        "profiles": profiles,
    }


# --------------------------------------------------------------------------- report


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# /v1/ask benchmark (scripts/bench_api.py)",
        "",
        (f"{m['cpus']} CPUs shared with other jobs (load average {m['load_avg_start'][0]} at start, "
        f"{m['load_avg_end'][0]} at end); Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads), "
        f"sentence-transformers {m['sentence_transformers']}, faiss {m['faiss']}. "
        f"{result['rounds']} rounds; every figure is the median over rounds (ratios: median of the per-round ratios). "
        f"Servers: real `qa serve` subprocesses, QA_RATE_LIMIT_PER_MINUTE=0, top_k {result['top_k']}, question only "
        "(no history). Bare = in-process `SentenceTransformer.encode(question)` (torch) + FAISS search of the "
        "collection's `dense.faiss`, sequential, with torch's and FAISS's default threads (as a plain user runs it); "
        "a second bare row pins both to 1 thread, which is far less sensitive to other jobs on the machine."),
        "",
        ("Configurations: **default** = QA_RETRIEVER=hybrid (fusion + sentence rescoring, QA_SENTENCE_WEIGHT default 0.6); "
        "**baseline** = QA_RETRIEVER=dense QA_SENTENCE_WEIGHT=0 (before the answer-quality issue). "
        "Both still choose an answer sentence (shortlisted sentences re-embedded, through the server's sentence-vector cache)."),
        "",
        f"Code under test: `{result.get('code', 'unknown')}`.",
        "",
        "## Summary",
        "",
        ("Warm = the repeated rounds (each server has answered these questions before, so its answer-sentence "
        "cache is warm); cold = the first time each question is asked (after a warm-up on other questions)."),
        "",
        ("| collection | bare p50 ms (default threads / 1 thread) | default c=1 p50 ms (warm / cold) | "
        "baseline c=1 p50 ms (warm / cold) | HTTP default p50 / bare p50 (default threads / 1 thread), warm | "
        "default / baseline p50 (target <= 1.3): warm / cold | default throughput at top concurrency / bare sequential |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in result["collections"]:
        r = c["ratios"]
        top = max(int(k) for k in c["http"]["default"])
        warm = r["default_over_baseline_p50_c1"]["median"]
        cold = c["cold_ratios"]["default_over_baseline_p50"]
        verdict = "meets" if max(warm, cold) <= TARGET_CONFIG_RATIO else "misses"
        lines.append(
            f"| {c['label']} | {c['bare']['p50_ms']} / {c['bare_1thread']['p50_ms']} | "
            f"{c['http']['default'][1]['p50_ms']} / {c['cold']['default']['p50_ms']} | "
            f"{c['http']['baseline'][1]['p50_ms']} / {c['cold']['baseline']['p50_ms']} | "
            f"{r['default_http_p50_over_bare_p50_c1']['median']}x / {r['default_http_p50_over_bare_1thread_p50_c1']['median']}x | "
            f"{warm}x / {cold}x ({verdict}) | "
            f"{r[f'default_throughput_c{top}_over_bare_sequential']['median']}x (c={top}) |"
        )
    for c in result["collections"]:
        lines += [
            "",
            f"## {c['label']}: collection `{c['collection']}` ({c['documents']:,} documents, {c['passages']:,} passages)",
            "",
            (f"{c['questions']} questions; {c['requests_per_level']} requests per level and server; "
            f"server query encoder: {c['query_backend']}."),
            "",
            "| run | concurrency | requests | errors | p50 ms | p95 ms | p99 ms | req/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        b = c["bare"]
        lines.append(f"| bare encode + FAISS (in-process) | 1 | {b['requests']:.0f} | - | {b['p50_ms']} | {b['p95_ms']} | {b['p99_ms']} | {b['per_s']} |")
        b = c["bare_1thread"]
        lines.append(f"| bare, torch and FAISS on 1 thread | 1 | {b['requests']:.0f} | - | {b['p50_ms']} | {b['p95_ms']} | {b['p99_ms']} | {b['per_s']} |")
        for name, st in c["cold"].items():
            lines.append(
                f"| HTTP {name}, cold (each question once, first time) | 1 | {st['requests']:.0f} | {st['errors']:.0f} | "
                f"{st['p50_ms']} | {st['p95_ms']} | {st['p99_ms']} | {st['per_s']} |"
            )
        for name, levels in c["http"].items():
            for level, s in levels.items():
                lines.append(
                    f"| HTTP {name} | {level} | {s['requests']:.0f} | {s['errors']:.0f} | {s['p50_ms']} | "
                    f"{s['p95_ms']} | {s['p99_ms']} | {s['per_s']} |"
                )
        lines += [
            "",
            "Ratios (median of per-round ratios; per-round values in brackets):",
            "",
            "| ratio | value | rounds |",
            "| --- | ---: | --- |",
        ]
        for key, value in c["ratios"].items():
            lines.append(f"| {key} | {value['median']}x | {', '.join(str(v) for v in value['rounds'])} |")
        for key, value in c["cold_ratios"].items():
            lines.append(f"| cold: {key} | {value}x | (one pass) |")
        lines += [
            "",
            "Server-side time per request (`timings_ms`, median over answers, then over rounds) and what HTTP adds at c=1:",
            "",
            "| server | concurrency | embed ms | search ms | answer ms | total ms | HTTP p50 - server total p50 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, t in c["cold_server_ms"].items():
            extra = round(c["cold"][name]["p50_ms"] - t.get("total", float("nan")), 2)
            lines.append(
                f"| {name}, cold | 1 | {t.get('embed', '')} | {t.get('search', '')} | {t.get('answer', '')} | "
                f"{t.get('total', '')} | {extra} |"
            )
        for name, levels in c["server_ms"].items():
            for level, t in levels.items():
                extra = round(c["http"][name][level]["p50_ms"] - t.get("total", float("nan")), 2) if level == 1 else ""
                lines.append(
                    f"| {name} | {level} | {t.get('embed', '')} | {t.get('search', '')} | {t.get('answer', '')} | "
                    f"{t.get('total', '')} | {extra} |"
                )
        for name, profile in c.get("profiles", {}).items():
            lines += ["", f"py-spy profile of the {name} server at c=1 ({profile.get('samples', 0)} samples; {profile.get('file', profile.get('error'))}):", ""]
            if "top_inclusive" in profile:
                lines += ["| function (inclusive, project/library frames) | % of samples |", "| --- | ---: |"]
                lines += [f"| `{k}` | {v} |" for k, v in profile["top_inclusive"]]
                lines += ["", "| function (self time) | % of samples |", "| --- | ---: |"]
                lines += [f"| `{k}` | {v} |" for k, v in profile["top_self"][:15]]
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["seed", "scifact"], help="benchmark one collection")
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels (comma-separated; must include 1)")
    parser.add_argument("--requests", type=int, default=0,
                        help="requests per level and server (default: max(150, questions)); fewer than the "
                        "questions: only the first N questions are used, for bare and HTTP alike")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--warmup", type=int, default=30, help="sequential warm-up requests per server")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--seed-questions", type=Path, default=SEED_QUESTIONS)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus", help="the seed documents")
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help="the SciFact BEIR folder")
    parser.add_argument("--scifact-index-dir", type=Path, default=ROOT / "index",
                        help="where to look for an existing eval-scifact-* collection")
    parser.add_argument("--wait", type=float, default=3600, help="seconds to wait for that collection's CURRENT")
    parser.add_argument("--profile", type=Path, help="also py-spy the default server at c=1; collapsed stacks go here")
    parser.add_argument("--profile-baseline", action="store_true", help="with --profile, the baseline server too")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    args.levels = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    if 1 not in args.levels:
        parser.error("--levels must include 1")

    import faiss
    import torch

    from qa.config import Settings
    from qa.service import QAService

    scratch = Path(tempfile.mkdtemp(prefix="qa-bench-api-"))
    load_avg_start = os.getloadavg()
    try:
        index_dir = scratch / "index"
        index_dir.mkdir()
        models = ROOT / "index" / ".models"
        if models.is_dir():  # the ONNX export cache: saves the servers an export
            shutil.copytree(models, index_dir / ".models")
        service = QAService(Settings(index_dir=index_dir))
        say("loading the model (torch)")
        bare_model = service.embedder.model  # a plain SentenceTransformer(folder, device="cpu")
        collections = []
        if args.only in (None, "seed"):
            say(f"indexing the seed corpus {args.corpus}")
            service.index([args.corpus], "seed")
            asked = seed_questions(args.seed_questions)
            collections.append(("seed", "seed", asked, SEED_WARMUP))
        if args.only in (None, "scifact"):
            found = wait_for_scifact(args.scifact_index_dir, args.wait)
            if found is not None:
                say(f"reusing {found} (read-only, linked)")
                (index_dir / found.name).symlink_to(found.resolve(), target_is_directory=True)
                name = found.name
            else:
                say("no SciFact collection found: building one into the temporary folder (slow)")
                service.index([args.scifact / "corpus.jsonl"], "scifact", progress=True)
                name = "scifact"
            collections.append(("scifact", name, scifact_questions(args.scifact), scifact_questions(args.scifact, "train")[:50]))
        results = [
            bench_collection(label, name, index_dir, questions, warmup, bare_model, args, scratch)
            for label, name, questions, warmup in collections
        ]
        result = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
                "sentence_transformers": __import__("sentence_transformers").__version__,
                "faiss": faiss.__version__,
                "load_avg_start": [round(x, 2) for x in load_avg_start],
                "load_avg_end": [round(x, 2) for x in os.getloadavg()],
            },
            "code": git_state(),
            "rounds": args.rounds,
            "top_k": args.top_k,
            "levels": args.levels,
            "configs": CONFIGS,
            "collections": results,
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = markdown(result)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    print(json.dumps(result, indent=2) if args.json else text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
