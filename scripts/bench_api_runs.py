"""The passes of ``scripts/bench_api.py``: POST /v1/ask at a concurrency level, the bare
in-process encode + FAISS query, the warm-up, cold and measured rounds, and a py-spy profile
of a server."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
from bench_api_report import Profile, Round, Stats, Timings
from harness import Latency, Server, per_second, say

if TYPE_CHECKING:
    import faiss
    from sentence_transformers import SentenceTransformer

COLD_BATCH = 25  # the cold pass alternates between the servers every this many questions
PROFILED_LIBRARIES = (
    "(qa/",
    "onnxruntime",
    "faiss",
    "bm25s",
    "json",
    "pydantic",
    "starlette",
    "fastapi",
    "anyio",
)


def latency_stats(latencies_ms: list[float], wall_s: float, errors: int = 0) -> Stats:
    """Requests, errors, p50/p95/p99 ms and requests per second of one pass."""
    latency = Latency.of(latencies_ms, digits=2)
    return {
        "requests": len(latencies_ms),
        "errors": errors,
        "p50_ms": latency.p50,
        "p95_ms": latency.p95,
        "p99_ms": latency.p99,
        "per_s": per_second(len(latencies_ms), wall_s),
    }


@dataclass
class LevelResult:
    """One pass of requests at one concurrency level."""

    concurrency: int
    latencies_ms: list[float]
    wall_s: float
    statuses: Counter[int]
    bodies: list[bytes] = field(default_factory=list)

    @classmethod
    def merged(cls, pieces: list[LevelResult]) -> LevelResult:
        """Passes run one after another, as one sequential pass."""
        return cls(
            1,
            [x for r in pieces for x in r.latencies_ms],
            sum(r.wall_s for r in pieces),
            sum((r.statuses for r in pieces), Counter()),
            [b for r in pieces for b in r.bodies],
        )

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    def stats(self) -> Stats:
        return latency_stats(self.latencies_ms, self.wall_s, self.errors)

    def server_timings(self) -> Timings:
        """Medians of the server's own ``timings_ms`` over the successful answers."""
        stages: dict[str, list[float]] = defaultdict(list)
        for body in self.bodies:
            try:
                for key, value in (json.loads(body).get("timings_ms") or {}).items():
                    stages[key].append(float(value))
            except ValueError:
                continue
        return {k: round(statistics.median(v), 2) for k, v in stages.items() if v}


async def drive(
    base: str, questions: list[str], concurrency: int, requests: int, top_k: int, offset: int = 0
) -> LevelResult:
    """``requests`` POST /v1/ask calls from ``concurrency`` workers; bounded in count and time.

    The client is aiohttp (``pip install -e '.[bench]'``): httpx's async client tops out
    near 110 requests/s at 32 connections on this machine, against a server that does nothing
    (4,300 requests/s with aiohttp), so it would measure itself. httpx stands in without it.
    """
    result = LevelResult(concurrency, [], 0.0, Counter())
    next_index = 0
    async with _poster(base, concurrency) as post:

        async def worker() -> None:
            nonlocal next_index
            while next_index < requests:
                i = next_index
                next_index += 1
                question = questions[(offset + i) % len(questions)]
                started = time.perf_counter()
                status, content = await post({"question": question, "top_k": top_k})
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] += 1
                if status == 200:
                    result.bodies.append(content)

        started = time.perf_counter()
        workers = asyncio.gather(*(worker() for _ in range(concurrency)))
        await asyncio.wait_for(workers, timeout=max(120, requests * 5))
        result.wall_s = time.perf_counter() - started
    return result


Post = Callable[[dict[str, object]], Awaitable[tuple[int, bytes]]]


@asynccontextmanager
async def _poster(base: str, concurrency: int) -> AsyncIterator[Post]:
    """``post(body) -> (status, content)`` on ``/v1/ask`` over ``concurrency`` connections
    (aiohttp when installed, else httpx), the client closed on leaving."""
    try:
        import aiohttp
    except ImportError:
        aiohttp = None
    if aiohttp is not None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:

            async def post(body: dict[str, object]) -> tuple[int, bytes]:
                try:
                    async with session.post("/v1/ask", json=body) as response:
                        return response.status, await response.read()
                except aiohttp.ClientError as exc:
                    return 0, str(exc).encode()

            yield post
        return
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as client:

        async def post_httpx(body: dict[str, object]) -> tuple[int, bytes]:
            try:
                response = await client.post("/v1/ask", json=body)
                return response.status_code, response.content
            except httpx.HTTPError as exc:
                return 0, str(exc).encode()

        yield post_httpx


def run_level(
    base: str, questions: list[str], concurrency: int, requests: int, top_k: int, offset: int = 0
) -> LevelResult:
    """:func:`drive`, from synchronous code."""
    return asyncio.run(drive(base, questions, concurrency, requests, top_k, offset))


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


def bare_pass(
    model: SentenceTransformer, index: faiss.Index, questions: list[str], top_k: int
) -> tuple[list[float], float]:
    """Per-question ms of ``SentenceTransformer.encode(question)`` + FAISS top-k search, and
    the pass's wall seconds."""
    latencies = []
    wall = time.perf_counter()
    for question in questions:
        started = time.perf_counter()
        vector = model.encode(
            question, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        index.search(np.asarray(vector, dtype=np.float32)[None, :], top_k)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, time.perf_counter() - wall


@dataclass
class Bench:
    """What every pass on one collection uses."""

    servers: dict[str, Server]
    model: SentenceTransformer
    index: faiss.Index
    questions: list[str]
    requests: int
    args: argparse.Namespace


def warm_up(bench: Bench, warmup: list[str]) -> None:
    """Lazy loads, thread pools and connections warmed on OTHER questions, so that the cold
    pass sees each measured question for the first time (answer-sentence cache cold)."""
    args = bench.args
    top = max(args.levels)
    for server in bench.servers.values():
        run_level(server.base, warmup, 1, min(len(warmup), args.warmup), args.top_k)
        run_level(server.base, warmup, top, top, args.top_k)
    bare_pass(bench.model, bench.index, warmup[:20], args.top_k)  # warm up torch


def cold_pass(bench: Bench) -> tuple[dict[str, Stats], dict[str, Timings]]:
    """Each question once, for the first time, at c=1, the servers alternating every
    :data:`COLD_BATCH` questions: per server, its figures and its server-side timings."""
    questions, top_k = bench.questions, bench.args.top_k
    parts: dict[str, list[LevelResult]] = {name: [] for name in bench.servers}
    for start in range(0, len(questions), COLD_BATCH):
        count = min(COLD_BATCH, len(questions) - start)
        for name, server in bench.servers.items():
            parts[name].append(run_level(server.base, questions, 1, count, top_k, offset=start))
    merged = {name: LevelResult.merged(pieces) for name, pieces in parts.items()}
    cold = {name: result.stats() for name, result in merged.items()}
    return cold, {name: result.server_timings() for name, result in merged.items()}


def one_round(bench: Bench, number: int, label: str) -> Round:
    """The bare passes (default threads, then 1 thread), then every server at every level,
    the servers taking turns to go first."""
    args, questions = bench.args, bench.questions
    say(f"[{label}] round {number + 1}/{args.rounds}: bare")
    bare = latency_stats(*bare_pass(bench.model, bench.index, questions, args.top_k))
    with single_threaded():
        bare_1thread = latency_stats(*bare_pass(bench.model, bench.index, questions, args.top_k))
    this = Round(bare, {n: {} for n in bench.servers}, {n: {} for n in bench.servers}, bare_1thread)
    for level in args.levels:
        order = list(bench.servers) if number % 2 == 0 else list(reversed(bench.servers))
        for name in order:
            say(f"[{label}] round {number + 1}/{args.rounds}: {name} c={level}")
            base = bench.servers[name].base
            result = run_level(base, questions, level, bench.requests, args.top_k, offset=number)
            this.http[name][level] = result.stats()
            this.server_ms[name][level] = result.server_timings()
            if result.errors:
                say(f"[{label}] {name} c={level}: {result.errors} errors: {dict(result.statuses)}")
    return this


def profile_server(
    server: Server,
    questions: list[str],
    requests: int,
    top_k: int,
    out_dir: Path,
    label: str,
    level: int = 1,
) -> Profile:
    """py-spy (collapsed stacks) of the server during a pass at concurrency ``level``; a
    summary of where the time goes."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{label}.collapsed.txt"
    record = ["record", "--pid", str(server.pid), "--rate", "250", "--format", "raw"]
    spy = subprocess.Popen(
        [py_spy, *record, "--output", str(raw), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)  # attach
    result = run_level(server.base, questions, level, requests, top_k)
    spy.send_signal(signal.SIGINT)
    try:
        _, err = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if not raw.exists():
        return {"error": f"py-spy wrote nothing: {err[-500:]}"}
    summary = summarise_collapsed(raw)
    return {"file": str(raw), "level": level, "requests": len(result.latencies_ms), **summary}


def _frame_name(frame: str) -> str:
    """``function (path:line)`` -> ``function (short path)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


def summarise_collapsed(path: Path, top: int = 25) -> Profile:
    """The functions taking the largest share of samples, inclusive (project and library
    frames) and by self time."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";")]
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n

    def share(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    interesting = [
        (k, v)
        for k, v in inclusive.most_common()
        if any(marker in k for marker in PROFILED_LIBRARIES) or "sqlite" in k.lower()
    ]
    return {
        "samples": total,
        "top_inclusive": [(k, share(v)) for k, v in interesting[:top]],
        "top_self": [(k, share(v)) for k, v in own.most_common(top)],
    }
