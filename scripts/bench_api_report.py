"""The figures of ``scripts/bench_api.py``: per-round results, their medians and ratios, and
the Markdown report."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from harness import Machine, median_by_key, table, table_head, table_row

TARGET_CONFIG_RATIO = 1.3  # issue 6: default p50 at most 1.3x the baseline's
Stats = dict[str, float]  # requests, errors, p50_ms, p95_ms, p99_ms, per_s
Timings = dict[str, float]  # the server's own timings_ms: embed, search, answer, total


class Profile(TypedDict, total=False):
    """Where a server spent its time under py-spy (or why there is no profile)."""

    error: str
    file: str
    level: int
    requests: int
    samples: int
    top_inclusive: list[tuple[str, float]]
    top_self: list[tuple[str, float]]


@dataclass
class Round:
    """One round: the bare passes and every server at every concurrency level."""

    bare: Stats
    http: dict[str, dict[int, Stats]]  # server -> level -> figures
    server_ms: dict[str, dict[int, Timings]]
    bare_1thread: Stats


@dataclass
class Ratio:
    """A ratio's median over rounds, and its value in each round (paired in time)."""

    median: float
    rounds: list[float]


@dataclass
class CollectionResult:
    """Everything measured on one collection (medians over rounds unless named cold)."""

    label: str
    collection: str
    documents: int
    passages: int
    questions: int
    requests_per_level: int
    query_backend: str | None
    bare: Stats
    bare_1thread: Stats
    http: dict[str, dict[int, Stats]]
    server_ms: dict[str, dict[int, Timings]]
    ratios: dict[str, Ratio]
    rounds: list[Round]
    profiles: dict[str, Profile]
    cold: dict[str, Stats] = field(default_factory=dict)
    cold_server_ms: dict[str, Timings] = field(default_factory=dict)
    warmup_questions: int = 0
    cold_ratios: dict[str, float] = field(default_factory=dict)


@dataclass
class BenchResult:
    """The whole run."""

    machine: Machine
    code: str
    rounds: int
    top_k: int
    levels: list[int]
    configs: dict[str, dict[str, str]]
    collections: list[CollectionResult]


@dataclass
class Medians:
    """Every figure's median over the rounds, and the ratios (median of per-round ratios)."""

    bare: Stats
    bare_1thread: Stats
    http: dict[str, dict[int, Stats]]
    server_ms: dict[str, dict[int, Timings]]
    ratios: dict[str, Ratio]


def summarise_rounds(rounds: list[Round]) -> Medians:
    """The medians over ``rounds`` of every figure, and the ratios."""
    configs = list(rounds[0].http)
    levels = list(rounds[0].http[configs[0]])
    http = {
        c: {lvl: median_by_key([r.http[c][lvl] for r in rounds]) for lvl in levels} for c in configs
    }
    server_ms = {
        c: {
            lvl: median_by_key([r.server_ms[c][lvl] for r in rounds if r.server_ms[c][lvl]])
            for lvl in levels
            if any(r.server_ms[c][lvl] for r in rounds)
        }
        for c in configs
    }
    return Medians(
        bare=median_by_key([r.bare for r in rounds]),
        bare_1thread=median_by_key([r.bare_1thread for r in rounds]),
        http=http,
        server_ms=server_ms,
        ratios=ratios(rounds, configs, levels),
    )


def ratios(rounds: Sequence[Round], configs: list[str], levels: list[int]) -> dict[str, Ratio]:
    """HTTP over bare, throughput over bare, default over baseline: per round, then medians."""

    def ratio(figure: Callable[[Round], float]) -> Ratio:
        values = [round(figure(r), 3) for r in rounds]
        return Ratio(round(statistics.median(values), 3), values)

    top = max(levels)
    out: dict[str, Ratio] = {}
    for c in configs:
        out[f"{c}_http_p50_over_bare_p50_c1"] = ratio(
            lambda r, c=c: r.http[c][1]["p50_ms"] / r.bare["p50_ms"]
        )
        out[f"{c}_http_p50_over_bare_1thread_p50_c1"] = ratio(
            lambda r, c=c: r.http[c][1]["p50_ms"] / r.bare_1thread["p50_ms"]
        )
        out[f"{c}_throughput_c{top}_over_bare_sequential"] = ratio(
            lambda r, c=c: r.http[c][top]["per_s"] / r.bare["per_s"]
        )
    for lvl in levels:
        out[f"default_over_baseline_p50_c{lvl}"] = ratio(
            lambda r, lvl=lvl: r.http["default"][lvl]["p50_ms"] / r.http["baseline"][lvl]["p50_ms"]
        )
    return out


def cold_ratios(result: CollectionResult) -> dict[str, float]:
    """The cold pass's default p50 over the baseline's and over the bare passes'."""
    cold = result.cold["default"]["p50_ms"]
    return {
        "default_over_baseline_p50": round(cold / result.cold["baseline"]["p50_ms"], 3),
        "default_over_bare_p50": round(cold / result.bare["p50_ms"], 3),
        "default_over_bare_1thread_p50": round(cold / result.bare_1thread["p50_ms"], 3),
    }


def markdown(result: BenchResult) -> str:
    """The report: how it was measured, a summary row per collection, then the details."""
    lines = [*_introduction(result), *_summary(result.collections)]
    for c in result.collections:
        lines += _collection(c)
    lines.append("")
    return "\n".join(lines)


def _introduction(result: BenchResult) -> list[str]:
    m = result.machine
    return [
        "# /v1/ask benchmark (scripts/bench_api.py)",
        "",
        (
            f"{m.cpus} CPUs shared with other jobs (load average {m.load_avg_start[0]} at start, "
            f"{m.load_avg_end[0]} at end); Python {m.python}, torch {m.torch} "
            f"({m.torch_threads} threads), sentence-transformers {m.sentence_transformers}, "
            f"faiss {m.faiss}. {result.rounds} rounds; every figure is the median over rounds "
            "(ratios: median of the per-round ratios). Servers: real `qa serve` subprocesses, "
            f"QA_RATE_LIMIT_PER_MINUTE=0, top_k {result.top_k}, question only (no history). "
            "Bare = in-process `SentenceTransformer.encode(question)` (torch) + FAISS search of "
            "the collection's `dense.faiss`, sequential, with torch's and FAISS's default "
            "threads (as a plain user runs it); a second bare row pins both to 1 thread, which "
            "is far less sensitive to other jobs on the machine."
        ),
        "",
        "Configurations: "
        + "; ".join(
            f"**{name}** = {' '.join(f'{k}={v}' for k, v in env.items())}"
            for name, env in result.configs.items()
        )
        + (
            " (hybrid = fusion + sentence rescoring, QA_SENTENCE_WEIGHT default 0.6; dense with "
            "QA_SENTENCE_WEIGHT=0 = retrieval before the answer-quality issue). Both choose an "
            "answer sentence (the fitted chooser over stored vectors; a sentence embedded on its "
            "own only when the stored scores can't decide)."
        ),
        "",
        f"Code under test: `{result.code or 'unknown'}`.",
        "",
    ]


def _summary(collections: list[CollectionResult]) -> list[str]:
    columns = [
        "collection",
        "bare p50 ms (default threads / 1 thread)",
        "default c=1 p50 ms (warm / cold)",
        "baseline c=1 p50 ms (warm / cold)",
        "HTTP default p50 / bare p50 (default threads / 1 thread), warm",
        f"default / baseline p50 (target <= {TARGET_CONFIG_RATIO}): warm / cold",
        "default throughput at top concurrency / bare sequential",
    ]
    rows = []
    for c in collections:
        r, top = c.ratios, max(c.http["default"])
        warm = r["default_over_baseline_p50_c1"].median
        cold = c.cold_ratios["default_over_baseline_p50"]
        verdict = "meets" if max(warm, cold) <= TARGET_CONFIG_RATIO else "misses"
        rows.append(
            [
                c.label,
                f"{c.bare['p50_ms']} / {c.bare_1thread['p50_ms']}",
                f"{c.http['default'][1]['p50_ms']} / {c.cold['default']['p50_ms']}",
                f"{c.http['baseline'][1]['p50_ms']} / {c.cold['baseline']['p50_ms']}",
                (
                    f"{r['default_http_p50_over_bare_p50_c1'].median}x / "
                    f"{r['default_http_p50_over_bare_1thread_p50_c1'].median}x"
                ),
                f"{warm}x / {cold}x ({verdict})",
                f"{r[f'default_throughput_c{top}_over_bare_sequential'].median}x (c={top})",
            ]
        )
    warm_and_cold = (
        "Warm = the repeated rounds (each server has answered these questions before, so its "
        "answer-sentence cache is warm); cold = the first time each question is asked (after a "
        "warm-up on other questions)."
    )
    return ["## Summary", "", warm_and_cold, "", *table(columns, rows, "lrrrrrr")]


def _collection(c: CollectionResult) -> list[str]:
    return [
        "",
        (
            f"## {c.label}: collection `{c.collection}` ({c.documents:,} documents, "
            f"{c.passages:,} passages)"
        ),
        "",
        (
            f"{c.questions} questions; {c.requests_per_level} requests per level and server; "
            f"server query encoder: {c.query_backend}."
        ),
        "",
        *_runs(c),
        "",
        "Ratios (median of per-round ratios; per-round values in brackets):",
        "",
        *_ratios(c),
        "",
        (
            "Server-side time per request (`timings_ms`, median over answers, then over rounds) "
            "and what HTTP adds at c=1:"
        ),
        "",
        *_server_times(c),
        *_profiles(c),
    ]


def _figures(s: Stats, errors: str | None = None) -> list[object]:
    shown = f"{s['errors']:.0f}" if errors is None else errors
    return [f"{s['requests']:.0f}", shown, s["p50_ms"], s["p95_ms"], s["p99_ms"], s["per_s"]]


def _runs(c: CollectionResult) -> list[str]:
    columns = ["run", "concurrency", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s"]
    rows: list[list[object]] = [
        ["bare encode + FAISS (in-process)", 1, *_figures(c.bare, "-")],
        ["bare, torch and FAISS on 1 thread", 1, *_figures(c.bare_1thread, "-")],
    ]
    for name, s in c.cold.items():
        rows.append([f"HTTP {name}, cold (each question once, first time)", 1, *_figures(s)])
    for name, levels in c.http.items():
        rows += [[f"HTTP {name}", level, *_figures(s)] for level, s in levels.items()]
    return table(columns, rows, "lrrrrrrr")


def _ratios(c: CollectionResult) -> list[str]:
    rows: list[list[object]] = [
        [key, f"{value.median}x", ", ".join(str(v) for v in value.rounds)]
        for key, value in c.ratios.items()
    ]
    rows += [[f"cold: {key}", f"{value}x", "(one pass)"] for key, value in c.cold_ratios.items()]
    return table(["ratio", "value", "rounds"], rows, "lrl")


def _stages(t: Timings) -> list[object]:
    return [t.get("embed", ""), t.get("search", ""), t.get("answer", ""), t.get("total", "")]


def _server_times(c: CollectionResult) -> list[str]:
    columns = [
        "server",
        "concurrency",
        "embed ms",
        "search ms",
        "answer ms",
        "total ms",
        "HTTP p50 - server total p50",
    ]
    rows: list[list[object]] = []
    for name, t in c.cold_server_ms.items():
        extra = round(c.cold[name]["p50_ms"] - t.get("total", float("nan")), 2)
        rows.append([f"{name}, cold", 1, *_stages(t), extra])
    for name, levels in c.server_ms.items():
        for level, t in levels.items():
            http_p50 = c.http[name][level]["p50_ms"]
            extra_at_1 = round(http_p50 - t.get("total", float("nan")), 2) if level == 1 else ""
            rows.append([name, level, *_stages(t), extra_at_1])
    return table(columns, rows, "lrrrrrr")


def _profiles(c: CollectionResult) -> list[str]:
    lines: list[str] = []
    for name, profile in c.profiles.items():
        where = profile.get("file", profile.get("error"))
        lines += [
            "",
            (
                f"py-spy profile of the {name} server at c={profile.get('level', 1)} "
                f"({profile.get('samples', 0)} samples; "
                f"{where}):"
            ),
            "",
        ]
        if "top_inclusive" in profile:
            inclusive = [(f"`{k}`", v) for k, v in profile["top_inclusive"]]
            lines += table(
                ["function (inclusive, project/library frames)", "% of samples"], inclusive, "lr"
            )
            lines += ["", *table_head(["function (self time)", "% of samples"], "lr")]
            lines += [table_row([f"`{k}`", v]) for k, v in profile.get("top_self", [])[:15]]
    return lines
