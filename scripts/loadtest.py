#!/usr/bin/env python
"""Load test: N concurrent clients drive /v1/ask and /v1/search for D seconds, with a
collection update (a document added through the write API) in the middle.

    python scripts/loadtest.py                       # starts `qa serve` itself: 32 clients, 60 s
    python scripts/loadtest.py --clients 8 --duration 10 --json
    python scripts/loadtest.py --url http://127.0.0.1:8000 --api-key KEY

Without ``--url`` it starts its own ``qa serve`` on a free loopback port, over a temporary
copy of the index (``--index-dir``; default: built from the bundled corpus), with rate
limiting off (QA_RATE_LIMIT_PER_MINUTE=0) and a random QA_API_KEY for the update, and
stops it with SIGINT afterwards. With ``--url`` it targets a running server (loopback
only); the update then needs that server's API key (``--api-key`` or QA_API_KEY).

The run is bounded: at most ``--max-requests`` requests, and ``--duration`` seconds plus
the time for the update to finish and an answer from the new generation to be seen, but
never more than ``--max-duration`` (default: twice ``--duration``). Reports requests/s, p50/p95/p99 latency and errors per endpoint
(and ``--json`` for machines); the exit status is 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "How many cities does the G60 corridor connect?",
    "What brand is the Haier factory in Songjiang for?",
    "How does Songjiang help talents with housing?",
    "What did scientists in Songjiang achieve recently?",
    "How much rent do talents pay?",
    "Which industries does the corridor focus on?",
    "What is the Casarte brand?",
    "How many service windows offer inter-provincial services?",
]
SEARCHES = ["Casarte brand", "G60 corridor nine cities", "talent apartments rent", "industrial internet", "satellite"]
UPDATE_DOCUMENT = {
    "id": "loadtest/lighthouse-keepers.txt",
    "title": "Lighthouse keepers of the Zhoushan islands",
    "text": (
        "The lighthouse on Huaniao island has guided ships into the Yangtze estuary since 1870. "
        "Its keepers rotate every fortnight and log the weather every three hours.\n\n"
        "In 2019 the lamp was replaced with an LED array that can be seen from 24 nautical miles away, "
        "and the keepers now monitor the fog signal remotely."
    ),
}
UPDATE_QUERY = "Huaniao lighthouse LED lamp nautical miles"


# --------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    endpoint: str
    status: int  # 0 when the request failed without a response
    seconds: float
    at: float  # since the start of the run
    generation: str | None = None
    error: str | None = None


@dataclass
class UpdateResult:
    started_at: float
    seconds: float
    status: int
    generation: str | None
    detail: str = ""


@dataclass
class Report:
    clients: int
    duration_s: float
    requests: int
    errors: int
    requests_per_s: float
    endpoints: dict[str, dict[str, float]]
    generations: dict[str, int]
    update: dict[str, Any] | None
    update_visible: bool | None
    error_samples: list[str] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        update_ok = self.update is None or (200 <= int(self.update["status"]) < 300 and bool(self.update_visible))
        return self.errors == 0 and self.requests > 0 and update_ok


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(samples: list[Sample], seconds: float) -> dict[str, float]:
    latencies = [s.seconds * 1000 for s in samples]
    return {
        "requests": len(samples),
        "errors": sum(1 for s in samples if s.error),
        "requests_per_s": round(len(samples) / seconds, 2) if seconds else 0.0,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1) if latencies else float("nan"),
    }


# --------------------------------------------------------------------------- driving


Update = Callable[[httpx.AsyncClient], Awaitable[UpdateResult]]


def write_api_update(api_key: str, collection: str = "default", document: dict[str, str] | None = None) -> Update:
    """An update that adds (or replaces) one document through the write API."""

    async def update(client: httpx.AsyncClient) -> UpdateResult:
        started = time.perf_counter()
        response = await client.post(
            f"/v1/collections/{collection}/documents",
            json=document or UPDATE_DOCUMENT,
            headers={"Authorization": f"Bearer {api_key}"},
        )
        seconds = time.perf_counter() - started
        generation = response.json().get("generation") if response.status_code < 300 else None
        return UpdateResult(0.0, seconds, response.status_code, generation, "" if generation else response.text[:300])

    return update


async def _client_loop(
    base_url: str,
    number: int,
    samples: list[Sample],
    t0: float,
    keep_going: Callable[[], bool],
    timeout: float,
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        turn = number
        while keep_going():
            turn += 1
            if turn % 2:
                endpoint = "/v1/ask"
                request = client.post(endpoint, json={"question": QUESTIONS[turn % len(QUESTIONS)], "top_k": 5})
            else:
                endpoint = "/v1/search"
                request = client.get(endpoint, params={"q": SEARCHES[turn % len(SEARCHES)], "top_k": 5})
            started = time.perf_counter()
            try:
                response = await request
            except httpx.HTTPError as exc:
                now = time.perf_counter()
                samples.append(Sample(endpoint, 0, now - started, now - t0, error=f"{type(exc).__name__}: {exc}"))
                continue
            now = time.perf_counter()
            sample = Sample(endpoint, response.status_code, now - started, now - t0)
            if response.status_code != 200:
                sample.error = f"HTTP {response.status_code}: {response.text[:200]}"
            else:
                try:
                    sample.generation = response.json()["generation"]
                except (ValueError, KeyError) as exc:
                    sample.error = f"bad body: {exc!r}"
            samples.append(sample)


async def drive(
    base_url: str,
    clients: int = 32,
    duration: float = 60.0,
    max_requests: int = 1_000_000,
    update: Update | None = None,
    update_at: float = 0.5,
    timeout: float = 60.0,
    max_duration: float | None = None,
) -> Report:
    """Run the load and return the report (the server must already be running).

    Clients stop at ``duration``, or once the update has finished and been observed for a
    moment if it ends later, but never after ``max_duration`` (default: twice ``duration``).
    """
    samples: list[Sample] = []
    t0 = time.perf_counter()
    end = t0 + duration
    hard_end = t0 + (max_duration or 2 * duration)
    update_done = asyncio.Event()
    if update is None:
        update_done.set()
    grace = max(1.0, 0.1 * duration)  # load continues this long after the update, to observe the switch
    updated_at = [t0]

    def keep_going() -> bool:
        now = time.perf_counter()
        if len(samples) >= max_requests or now >= hard_end:
            return False
        if now < end or not update_done.is_set() or now < updated_at[0] + grace:
            return True
        # past the end: go on only until an answer from the new generation has been seen
        new = result.generation if result is not None else None
        return bool(new) and not any(sample.generation == new for sample in samples)

    result: UpdateResult | None = None

    async def run_update() -> None:
        nonlocal result
        assert update is not None
        await asyncio.sleep(duration * update_at)
        started = time.perf_counter() - t0
        async with httpx.AsyncClient(base_url=base_url, timeout=max(timeout, 300.0)) as client:
            try:
                result = await update(client)
            except httpx.HTTPError as exc:
                result = UpdateResult(0.0, time.perf_counter() - t0 - started, 0, None, f"{type(exc).__name__}: {exc}")
        result.started_at = started
        updated_at[0] = time.perf_counter()
        update_done.set()

    tasks = [asyncio.create_task(_client_loop(base_url, i, samples, t0, keep_going, timeout)) for i in range(clients)]
    if update is not None:
        tasks.append(asyncio.create_task(run_update()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0

    visible = None
    if result is not None and result.generation:
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
            found = (await client.get("/v1/search", params={"q": UPDATE_QUERY, "top_k": 3})).json()
        visible = any(p["citation"]["document_id"] == UPDATE_DOCUMENT["id"] for p in found.get("passages", []))

    by_endpoint = {name: summarise([s for s in samples if s.endpoint == name], elapsed) for name in ("/v1/ask", "/v1/search")}
    by_endpoint["all"] = summarise(samples, elapsed)
    errors = [s for s in samples if s.error]
    return Report(
        clients=clients,
        duration_s=round(elapsed, 2),
        requests=len(samples),
        errors=len(errors),
        requests_per_s=by_endpoint["all"]["requests_per_s"],
        endpoints=by_endpoint,
        generations=dict(sorted(Counter(s.generation for s in samples if s.generation).items())),
        update=asdict(result) if result else None,
        update_visible=visible,
        error_samples=[f"{s.endpoint} at {s.at:.1f}s: {s.error}" for s in errors[:10]],
    )


def format_report(report: Report) -> str:
    lines = [
        (
            f"{report.clients} clients, {report.duration_s:.1f} s, {report.requests} requests, "
            f"{report.errors} errors"
        ),
        "",
        f"{'endpoint':<12} {'requests':>9} {'req/s':>8} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'max ms':>9} {'errors':>7}",
    ]
    for name, row in report.endpoints.items():
        lines.append(
            f"{name:<12} {row['requests']:>9} {row['requests_per_s']:>8.1f} {row['p50_ms']:>9.1f} "
            f"{row['p95_ms']:>9.1f} {row['p99_ms']:>9.1f} {row['max_ms']:>9.1f} {row['errors']:>7}"
        )
    lines.append("")
    if report.update:
        u = report.update
        lines.append(
            f"update: HTTP {u['status']} at {u['started_at']:.1f} s, took {u['seconds']:.2f} s under load, "
            f"new generation {u['generation']}; new document found by search afterwards: {report.update_visible}"
            + (f" ({u['detail']})" if u["detail"] else "")
        )
    lines.append("answers by generation: " + ", ".join(f"{g}: {n}" for g, n in report.generations.items()))
    for sample in report.error_samples:
        lines.append(f"error: {sample}")
    for key, value in report.server.items():
        lines.append(f"server {key}: {value}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the server


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"error: {url} is not a loopback address; this load test only targets this machine")


@contextlib.contextmanager
def own_server(index_dir: Path | None, extra_env: dict[str, str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``qa serve`` on a free loopback port over a temporary copy of the index.

    Yields ``(base_url, api_key, info)``; ``info`` receives the exit code afterwards.
    """
    api_key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="qa-loadtest-") as scratch:
        work_index = Path(scratch) / "index"
        if index_dir is not None:
            source = index_dir / "default"
            if not (source / "CURRENT").exists():
                raise SystemExit(f"error: {source} has no index (no CURRENT file)")
            work_index.mkdir()
            shutil.copytree(source, work_index / "default", ignore=shutil.ignore_patterns(".lock"))
            models = index_dir / ".models"
            if models.is_dir():
                shutil.copytree(models, work_index / ".models")
        env = {
            **os.environ,
            "QA_INDEX_DIR": str(work_index),
            "QA_API_KEY": api_key,
            "QA_RATE_LIMIT_PER_MINUTE": "0",
            "QA_HOST": "127.0.0.1",
            "QA_PORT": "0",
            "QA_COLLECTION": "default",
            **extra_env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "qa", "serve"], cwd=ROOT, env=env, text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        tail: deque[str] = deque(maxlen=50)
        found: list[str] = []
        ready = threading.Event()

        def read_log() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                tail.append(line.rstrip())
                match = re.search(r"open (http://127\.0\.0\.1:\d+)/ in a browser", line)
                if match and not found:
                    found.append(match.group(1))
                    ready.set()
            ready.set()

        reader = threading.Thread(target=read_log, daemon=True)
        reader.start()
        info: dict[str, Any] = {}
        try:
            if not ready.wait(timeout=600) or not found:
                raise SystemExit("error: qa serve did not start:\n" + "\n".join(tail))
            yield found[0], api_key, info
        finally:
            stop_server(process)
            reader.join(timeout=5)
            info["exit_code"] = process.returncode
            info["log_lines_with_error"] = sum(1 for line in tail if "Traceback" in line or "ERROR" in line)


def stop_server(process: subprocess.Popen[Any]) -> None:
    """Stop a ``qa serve`` child like Ctrl+C does (in-flight requests finish); kill it after 60 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="target a running server (loopback only) instead of starting one")
    parser.add_argument("--api-key", default=os.environ.get("QA_API_KEY"), help="the target's QA_API_KEY (with --url)")
    parser.add_argument("--index-dir", type=Path, help="copy this index folder's default collection (own server only)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="stop after this many requests")
    parser.add_argument(
        "--max-duration", type=float, help="hard stop in seconds, even if the update is unfinished (default 2 x --duration)"
    )
    parser.add_argument("--update-at", type=float, default=0.5, help="when to update, as a fraction of --duration")
    parser.add_argument("--no-update", action="store_true", help="no collection update during the run")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH", help="also write the report as JSON (to stdout: -)")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or not 0 <= args.update_at < 1:
        parser.error("--clients must be >= 1, --duration > 0 and 0 <= --update-at < 1")

    def run(base: str, key: str | None) -> Report:
        update = None
        if not args.no_update:
            if not key:
                raise SystemExit("error: the update needs the server's API key: --api-key or QA_API_KEY (or --no-update)")
            update = write_api_update(key)
        return asyncio.run(
            drive(base, args.clients, args.duration, args.max_requests, update, args.update_at, args.timeout, args.max_duration)
        )

    load_before = os.getloadavg()
    if args.url:
        require_loopback(args.url)
        report = run(args.url.rstrip("/"), args.api_key)
    else:
        with own_server(args.index_dir, {}) as (base, key, info):
            httpx.post(f"{base}/v1/ask", json={"question": QUESTIONS[0]}, timeout=120)  # warm up
            report = run(base, key)
        report.server.update(info)
        if info.get("exit_code") != 0:
            report.error_samples.append(f"server exited with {info.get('exit_code')}")
    report.server["load_average_before"] = " ".join(f"{x:.2f}" for x in load_before)
    report.server["cpus"] = os.cpu_count()
    print(format_report(report))
    if args.json:
        text = json.dumps(asdict(report), indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0 if report.ok and report.server.get("exit_code", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
