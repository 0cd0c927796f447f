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
never more than ``--max-duration`` (default: twice ``--duration``). Reports requests/s,
p50/p95/p99 latency and errors per endpoint (and ``--json`` for machines); the exit status
is 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from harness import Server, copy_models, make_parser, qa_serve
from loadtest_clients import QUESTIONS, Report, drive, format_report, write_api_update

__all__ = ["Report", "drive", "format_report", "main", "require_loopback", "write_api_update"]


def require_loopback(url: str) -> None:
    """Refuse any target but this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            return
    raise SystemExit(
        f"error: {url} is not a loopback address; this load test only targets this machine"
    )


@contextlib.contextmanager
def own_server(index_dir: Path | None) -> Iterator[tuple[Server, str]]:
    """``qa serve`` on a free loopback port over a temporary copy of ``index_dir``'s default
    collection (or one built from the bundled corpus); yields it and its admin key.

    The user's QA_* settings apply, under the load test's own.
    """
    api_key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="qa-loadtest-") as scratch:
        work_index = Path(scratch) / "index"
        if index_dir is not None:
            source = index_dir / "default"
            if not (source / "CURRENT").exists():
                raise SystemExit(f"error: {source} has no index (no CURRENT file)")
            work_index.mkdir()
            ignore = shutil.ignore_patterns(".lock")
            shutil.copytree(source, work_index / "default", ignore=ignore)
            copy_models(index_dir, work_index)
        settings = {"QA_API_KEY": api_key}
        with qa_serve(
            "loadtest", work_index, Path(scratch), settings, keep_user_settings=True, ready_s=600
        ) as server:
            yield server, api_key


def _parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    add = parser.add_argument
    add("--url", help="target a running server (loopback only) instead of starting one")
    add(
        "--api-key",
        default=os.environ.get("QA_API_KEY"),
        help="the target's QA_API_KEY (with --url)",
    )
    add(
        "--index-dir",
        type=Path,
        help="copy this index folder's default collection (own server only)",
    )
    add("--clients", type=int, default=32, help="concurrent clients (default 32)")
    add("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    add("--max-requests", type=int, default=1_000_000, help="stop after this many requests")
    add(
        "--max-duration",
        type=float,
        help="hard stop in seconds, even if the update is unfinished (default 2 x --duration)",
    )
    add("--update-at", type=float, default=0.5, help="when to update, as a fraction of --duration")
    add("--no-update", action="store_true", help="no collection update during the run")
    add("--timeout", type=float, default=60.0, help="per-request timeout in seconds")
    add(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="also write the report as JSON (to stdout: -)",
    )
    return parser


def _load(args: argparse.Namespace, base: str, key: str | None) -> Report:
    update = None
    if not args.no_update:
        if not key:
            raise SystemExit(
                "error: the update needs the server's API key: --api-key or QA_API_KEY "
                "(or --no-update)"
            )
        update = write_api_update(key)
    load = drive(
        base,
        args.clients,
        args.duration,
        args.max_requests,
        update,
        args.update_at,
        args.timeout,
        args.max_duration,
    )
    return asyncio.run(load)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or not 0 <= args.update_at < 1:
        parser.error("--clients must be >= 1, --duration > 0 and 0 <= --update-at < 1")
    load_before = os.getloadavg()
    if args.url:
        require_loopback(args.url)
        report = _load(args, args.url.rstrip("/"), args.api_key)
    else:
        with own_server(args.index_dir) as (server, key):
            warm_up = {"question": QUESTIONS[0]}
            httpx.post(f"{server.base}/v1/ask", json=warm_up, timeout=120)
            report = _load(args, server.base, key)
        report.server["exit_code"] = server.exit_code
        bad = sum(1 for line in server.tail if "Traceback" in line or "ERROR" in line)
        report.server["log_lines_with_error"] = bad
        if server.exit_code != 0:
            report.error_samples.append(f"server exited with {server.exit_code}")
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
