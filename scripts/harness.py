"""What the benchmark scripts and the load test share: real ``qa serve`` processes, latency
statistics, Markdown tables, reports and the common command-line bits.

Importing it puts the checkout first on ``sys.path``, so every script runs from a checkout
without installing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing
SHARED = Path(os.environ.get("QA_SHARED_DIR", ROOT.parent / "shared"))
SCIFACT = SHARED / "datasets" / "scifact"
SEED_CORPUS = ROOT / "corpus"
PERCENTILES = (50, 95, 99)

T = TypeVar("T")


def say(message: str) -> None:
    """Progress for the person running the script (stderr, so stdout stays the report)."""
    print(message, file=sys.stderr, flush=True)


def timed(call: Callable[[], T]) -> tuple[T, float]:
    """``call()``'s result and the wall seconds it took."""
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def cpu_seconds() -> float:
    """User plus system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Spent:
    """Wall and process CPU seconds of one step."""

    seconds: float
    cpu: float


def timed_cpu(call: Callable[[], T]) -> tuple[T, Spent]:
    """``call()``'s result, and the wall and CPU seconds it took."""
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    result = call()
    return result, Spent(time.perf_counter() - wall0, cpu_seconds() - cpu0)


@dataclass(frozen=True)
class Latency:
    """Percentiles (and the worst) of request latencies in ms."""

    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, latencies_ms: Sequence[float], digits: int) -> Latency:
        """The figures of ``latencies_ms``, rounded to ``digits`` decimals (NaN when empty)."""
        p50, p95, p99 = (round(percentile(latencies_ms, q), digits) for q in PERCENTILES)
        worst = round(max(latencies_ms), digits) if latencies_ms else float("nan")
        return cls(p50, p95, p99, worst)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (numpy's); NaN when empty."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def per_second(count: int, seconds: float) -> float:
    """``count`` per second of ``seconds``, to 2 decimals (0 for an empty interval)."""
    return round(count / seconds, 2) if seconds else 0.0


def median_by_key(rounds: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds (the first round's keys), to 2 decimals."""
    return {key: round(statistics.median(r[key] for r in rounds), 2) for key in rounds[0]}


# Servers


ANNOUNCED = re.compile(r"open (http://127\.0\.0\.1:\d+)/ in a browser")


@dataclass
class Server:
    """A running ``qa serve`` child: its address, process and log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    settings: dict[str, str]  # the QA_* variables it was started with, on top of the user's
    base: str = ""
    exit_code: int | None = None
    tail: list[str] = field(default_factory=list)  # the log's last lines, kept when it stops

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 50) -> list[str]:
        return self.log_text().splitlines()[-lines:]


@contextmanager
def qa_serve(
    name: str,
    index_dir: Path,
    log_dir: Path,
    settings: Mapping[str, str] | None = None,
    collection: str = "default",
    keep_user_settings: bool = False,
    ready_s: float = 900.0,
) -> Iterator[Server]:
    """A real ``qa serve`` over ``index_dir`` on a loopback port the system picks, rate
    limiting off and ``settings`` (QA_* variables) applied; yielded once ``/readyz`` says
    ready, stopped like Ctrl+C afterwards (its exit code and log tail are kept).

    The child inherits the environment without the user's QA_* variables, so a benchmark
    runs the configuration it names (``keep_user_settings`` keeps them, under ours).
    """
    config = {"QA_INDEX_DIR": str(index_dir), "QA_RATE_LIMIT_PER_MINUTE": "0", **(settings or {})}
    inherited = {
        k: v for k, v in os.environ.items() if keep_user_settings or not k.startswith("QA_")
    }
    log = log_dir / f"serve-{collection}-{name}.log"
    command = [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", "0"]
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            [*command, "--collection", collection],
            cwd=ROOT,
            env={**inherited, **config},
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )
    server = Server(name, process, log, config)
    try:
        server.base = wait_ready(server, ready_s)
        yield server
    finally:
        server.exit_code = stop_server(process)
        server.tail = server.log_tail()


def wait_ready(server: Server, timeout_s: float) -> str:
    """The server's base URL, once it has announced it and ``/readyz`` answers 200."""
    deadline = time.monotonic() + timeout_s
    base = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise SystemExit(
                f"error: qa serve ({server.name}) exited with {code}:\n{_tail(server)}"
            )
        if not base and (found := ANNOUNCED.search(server.log_text())):
            base = found.group(1)
        if base and _is_ready(base):
            return base
        time.sleep(0.2)
    raise SystemExit(
        f"error: qa serve ({server.name}) not ready after {timeout_s:.0f} s:\n{_tail(server)}"
    )


def _is_ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(server: Server) -> str:
    return "\n".join(server.log_tail())


def stop_server(process: subprocess.Popen[bytes]) -> int:
    """Stop a ``qa serve`` child like Ctrl+C does (in-flight requests finish); kill it after
    60 s. Returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def copy_models(from_index: Path, to_index: Path) -> None:
    """Copy the exported ONNX question encoder (``.models``), which saves a server the export."""
    models = from_index / ".models"
    if models.is_dir():
        shutil.copytree(models, to_index / ".models")


# Inputs


def jsonl_lines(path: Path, limit: int | None = None) -> list[str]:
    """The non-empty lines of a JSONL file, the first ``limit`` of them when given."""
    lines: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if limit and len(lines) >= limit:
                break
            if line.strip():
                lines.append(line.rstrip("\n"))
    return lines


def write_lines(lines: Iterable[str], target: Path) -> None:
    """``lines`` written one per line (UTF-8)."""
    target.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


# Reports


@dataclass(frozen=True)
class Machine:
    """Where a benchmark ran: timings only compare within one machine and load."""

    cpus: int | None
    python: str
    torch: str
    torch_threads: int
    sentence_transformers: str
    faiss: str
    load_avg_start: list[float]
    load_avg_end: list[float]

    @classmethod
    def now(cls, load_avg_start: Sequence[float]) -> Machine:
        """This machine, with the load average at the start and now."""
        import faiss
        import sentence_transformers
        import torch

        return cls(
            cpus=os.cpu_count(),
            python=platform.python_version(),
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            sentence_transformers=sentence_transformers.__version__,
            faiss=faiss.__version__,
            load_avg_start=[round(x, 2) for x in load_avg_start],
            load_avg_end=[round(x, 2) for x in os.getloadavg()],
        )


def table_head(columns: Sequence[str], align: str = "") -> list[str]:
    """A Markdown table's header and rule; ``align`` has a letter per column, ``l`` or ``r``
    (missing letters: ``l``)."""
    rules = ["---:" if side == "r" else "---" for side in align.ljust(len(columns), "l")]
    return [table_row(columns), table_row(rules)]


def table_row(cells: Iterable[object]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def table(columns: Sequence[str], rows: Iterable[Iterable[object]], align: str = "") -> list[str]:
    """A whole Markdown table, line by line."""
    return [*table_head(columns, align), *(table_row(row) for row in rows)]


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """The script's parser; its help starts with the script's docstring, as written."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` (print JSON instead of Markdown) and ``--markdown PATH`` (also write it)."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report to this file")


def emit(result: object, markdown: str, as_json: bool, markdown_path: Path | None) -> None:
    """Write the Markdown report where asked, then print it or the JSON ``result``."""
    if markdown_path:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(markdown, encoding="utf-8")
    print(json.dumps(result, indent=2) if as_json else markdown, flush=True)
