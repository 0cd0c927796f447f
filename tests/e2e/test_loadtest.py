"""A short run of scripts/loadtest.py in CI: 8 clients for 8 s with a collection update
in the middle, against a real uvicorn server; the bar is zero errors.

The full run (32 clients, 60 s) is ``python scripts/loadtest.py``; its figures are in the
README's reliability section.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from qa.encoding import Embedder
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import ROOT, serve_in_thread

KEY = "load-test-key-0123456789"
SCRIPTS = ROOT / "scripts"


def load_script(name: str) -> ModuleType:
    """A module of scripts/, imported as the scripts import each other (by name)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def loadtest() -> ModuleType:
    return load_script("loadtest")


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    return load_script("harness")


def test_short_load_with_an_update_has_no_errors(
    loadtest: ModuleType, tmp_path: Path, seed_index_dir: Path, embedder: Embedder
) -> None:
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    settings = make_settings(index, api_key=KEY)
    assert settings.rate_limit_per_minute == 0
    with serve_in_thread(create_app(settings, QAService(settings, embedder))) as base:
        # load the collection once
        httpx.get(f"{base}/v1/search", params={"q": "warm up"}, timeout=120)
        report = asyncio.run(
            loadtest.drive(
                base,
                clients=8,
                duration=8,
                update=loadtest.write_api_update(KEY),
                update_at=0.4,
                max_duration=90,  # a slow update on a busy machine still gets its answers observed
            )
        )
    print("\n" + loadtest.format_report(report))
    assert report.errors == 0, report.error_samples
    assert report.requests >= 8
    assert (
        report.endpoints["/v1/ask"]["requests"] > 0
        and report.endpoints["/v1/search"]["requests"] > 0
    )
    # the update went through while the load ran, and answers came from both generations
    assert report.update["status"] == 201, report.update
    new = report.update["generation"]
    assert new in report.generations and len(report.generations) == 2, report.generations
    assert report.update_visible
    assert report.ok


def test_the_script_starts_its_own_server_and_stops_it(
    tmp_path: Path, seed_index_dir: Path, embedder: Embedder
) -> None:
    """`python scripts/loadtest.py` end to end: its own `qa serve`, an update, a JSON report, exit 0."""
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    if embedder.cache_dir is not None and Path(embedder.cache_dir).is_dir():
        # the exported ONNX query encoder (the seed index may already hold it)
        shutil.copytree(embedder.cache_dir, index / ".models", dirs_exist_ok=True)
    out = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "loadtest.py"),
            "--clients",
            "2",
            "--duration",
            "3",
            "--max-duration",
            "120",
            "--index-dir",
            str(index),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "p50 ms" in result.stdout and "update: HTTP 201" in result.stdout
    report = json.loads(out.read_text())
    assert report["errors"] == 0 and report["requests"] > 0
    assert report["update"]["status"] == 201 and report["update_visible"]
    assert report["server"]["exit_code"] == 0  # stopped cleanly with SIGINT
    assert len(report["generations"]) == 2


def test_percentiles_and_bounds(loadtest: ModuleType, harness: ModuleType) -> None:
    assert harness.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert harness.percentile([5.0], 99) == 5.0
    assert harness.percentile(list(map(float, range(101))), 95) == 95.0
    loadtest.require_loopback("http://127.0.0.1:8000")
    loadtest.require_loopback("http://[::1]:8000")
    loadtest.require_loopback("http://localhost:8000")
    with pytest.raises(SystemExit, match="not a loopback address"):
        loadtest.require_loopback("http://example.com:8000")


def test_harness_statistics_and_tables(harness: ModuleType) -> None:
    """The figures every benchmark reports, and the Markdown tables they print."""
    import math

    latency = harness.Latency.of([1.0, 2.0, 3.0, 4.0], digits=1)
    assert (latency.p50, latency.p95, latency.p99, latency.max) == (2.5, 3.8, 4.0, 4.0)
    assert all(math.isnan(x) for x in vars(harness.Latency.of([], digits=1)).values())
    assert harness.per_second(30, 2.0) == 15.0 and harness.per_second(3, 0.0) == 0.0
    rounds = [
        {"p50_ms": 1.0, "per_s": 9.0},
        {"p50_ms": 3.0, "per_s": 7.0},
        {"p50_ms": 2.0, "per_s": 8.0},
    ]
    assert harness.median_by_key(rounds) == {"p50_ms": 2.0, "per_s": 8.0}
    assert harness.table(["run", "seconds"], [("first", 1.5)], "lr") == [
        "| run | seconds |",
        "| --- | ---: |",
        "| first | 1.5 |",
    ]


def test_max_requests_bounds_the_run(loadtest: ModuleType, live_server: str) -> None:
    report = asyncio.run(loadtest.drive(live_server, clients=4, duration=30, max_requests=20))
    # each of the 4 clients may have one request in flight when the bound is reached
    assert 20 <= report.requests <= 24 and report.errors == 0
    assert report.update is None and report.ok
    assert httpx.get(f"{live_server}/healthz").status_code == 200


def test_query_batcher_does_not_hold_a_caller_under_steady_load() -> None:
    """The load test's one failure: the caller that happened to lead the query-encoding batches
    kept encoding for newer callers for as long as they kept arriving (30 s, then a 504).
    Here a new caller arrives during every encode; the first caller must return after its own
    batch, and every later caller still gets its own vectors."""
    import threading

    import numpy as np

    from qa.encoding.batcher import MicroBatcher

    arrivals = 30
    calls: list[list[str]] = []
    results: dict[str, np.ndarray] = {}
    threads: list[threading.Thread] = []

    def caller(text: str) -> None:
        results[text] = batcher.submit([text])

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        if len(calls) <= arrivals:  # someone new arrives while this batch is encoded
            before = len(batcher._pending)
            thread = threading.Thread(target=caller, args=(f"t{len(calls)}",))
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 30
            while len(batcher._pending) == before and time.monotonic() < deadline:
                time.sleep(0.001)
        return np.asarray([[float(t[1:] or 0)] for t in texts], dtype=np.float32)

    batcher = MicroBatcher(encode)
    first = batcher.submit(["t0"])
    calls_when_first_returned = len(calls)
    for thread in threads:
        thread.join(timeout=60)
    assert first.tolist() == [[0.0]]
    assert calls_when_first_returned == 1  # not 31: it did not serve the newcomers
    assert len(results) == arrivals and all(
        results[f"t{i}"].tolist() == [[float(i)]] for i in range(1, arrivals + 1)
    )
