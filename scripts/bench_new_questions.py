"""Questions no server has seen, from many clients at once: two ``qa serve`` configurations side
by side on the same SciFact collection, each question sent to both.

    python scripts/bench_new_questions.py                      # one thread per CPU vs 40
    python scripts/bench_new_questions.py --clients 8 --sets 2
    python scripts/bench_new_questions.py --baseline-env QA_QUERY_BACKEND=onnx --markdown r.md

Both servers run with the reply cache off (``QA_REPLY_CACHE=0``) over an existing
``eval-scifact-*`` collection (as ``qa eval`` builds it; linked read-only into a temporary
index folder). The questions are SciFact's train queries, cut into ``--sets`` sets of
``--per-set``; each set goes to one server then the other (the order alternating), so every
question is new to each server. For each set and server the script prints requests per
second, p50/p99 latency and the server's CPU share (from ``/proc``). Needs aiohttp
(``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_api import find_scifact_collection, scifact_questions
from harness import (
    ROOT,
    SCIFACT,
    Machine,
    add_report_options,
    copy_models,
    emit,
    make_parser,
    percentile,
    qa_serve,
    say,
    table,
)

DEFAULT = {"QA_REPLY_CACHE": "0"}


@dataclass
class Pass:
    """One set of questions against one server."""

    server: str
    set: int
    requests: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    cpu_percent: float


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(base: str, questions: list[str], clients: int) -> tuple[list[float], float]:
    """Every question asked once by ``clients`` concurrent clients: latencies (ms), wall s."""
    import aiohttp

    pending = iter(questions)
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            for question in pending:
                began = time.perf_counter()
                async with session.post(f"{base}/v1/ask", json={"question": question}) as reply:
                    await reply.read()
                    reply.raise_for_status()
                latencies.append((time.perf_counter() - began) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return latencies, time.perf_counter() - began


def measure(
    server: str, base: str, pid: int, number: int, questions: list[str], clients: int
) -> Pass:
    """One set against one server."""
    cpu = cpu_seconds_of(pid)
    latencies, seconds = asyncio.run(load(base, questions, clients))
    return Pass(
        server,
        number,
        len(latencies),
        round(seconds, 2),
        round(len(latencies) / seconds, 1),
        round(percentile(latencies, 50), 1),
        round(percentile(latencies, 99), 1),
        round(100 * (cpu_seconds_of(pid) - cpu) / seconds),
    )


def run(args: argparse.Namespace, configs: dict[str, dict[str, str]], built: Path) -> list[Pass]:
    """Every set against both servers (the order alternating), from a temporary index folder."""
    questions = scifact_questions(args.scifact, "train")
    sets = [questions[i * args.per_set : (i + 1) * args.per_set] for i in range(args.sets)]
    scratch = Path(tempfile.mkdtemp(prefix="qa-bench-new-"))
    try:
        index_dir = scratch / "index"
        index_dir.mkdir()
        copy_models(args.index_dir, index_dir)
        (index_dir / built.name).symlink_to(built.resolve(), target_is_directory=True)
        with (
            qa_serve("default", index_dir, scratch, configs["default"], built.name) as a,
            qa_serve("baseline", index_dir, scratch, configs["baseline"], built.name) as b,
        ):
            passes = []
            for number, chosen in enumerate(sets, 1):
                for server in (a, b) if number % 2 else (b, a):
                    say(f"set {number}: {server.name}")
                    passes.append(
                        measure(server.name, server.base, server.pid, number, chosen, args.clients)
                    )
            return passes
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report(passes: list[Pass], configs: dict[str, dict[str, str]], clients: int, name: str) -> str:
    """The Markdown table of every pass."""
    described = "; ".join(
        f"**{k}** = {' '.join(f'{n}={v}' for n, v in c.items())}" for k, c in configs.items()
    )
    columns = ["server", "set", "requests", "req/s", "p50 ms", "p99 ms", "server CPU %"]
    rows = [
        [p.server, p.set, p.requests, p.per_second, p.p50_ms, p.p99_ms, p.cpu_percent]
        for p in passes
    ]
    return "\n".join(
        [
            "# New questions under load (scripts/bench_new_questions.py)",
            "",
            f"{clients} clients; collection {name}; {described}",
            "",
            *table(columns, rows, "lrrrrrr"),
        ]
    )


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--index-dir", type=Path, default=ROOT / "index")
    parser.add_argument("--scifact", type=Path, default=SCIFACT)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--sets", type=int, default=3)
    parser.add_argument("--per-set", type=int, default=250)
    parser.add_argument(
        "--baseline-env",
        nargs="+",
        default=["QA_QUESTION_THREADS=40"],
        metavar="QA_NAME=VALUE",
        help="the baseline server's settings on top of the default's (default: 40 threads)",
    )
    add_report_options(parser)
    args = parser.parse_args()
    pairs = [item.partition("=") for item in args.baseline_env]
    if any(not name.startswith("QA_") or not sep for name, sep, _ in pairs):
        parser.error("--baseline-env takes QA_NAME=VALUE pairs")
    built = find_scifact_collection(args.index_dir)
    if built is None:
        parser.error(f"no eval-scifact-* collection in {args.index_dir}: run qa eval on SciFact")
    configs = {"default": DEFAULT, "baseline": {**DEFAULT, **{n: v for n, _, v in pairs}}}
    start = os.getloadavg()
    passes = run(args, configs, built)
    result = {
        "machine": asdict(Machine.now(start)),
        "configs": configs,
        "passes": [asdict(p) for p in passes],
    }
    emit(result, report(passes, configs, args.clients, built.name), args.json, args.markdown)


if __name__ == "__main__":
    main()
