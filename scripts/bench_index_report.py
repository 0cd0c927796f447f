"""The figures of ``scripts/bench_index.py`` and its Markdown report."""

from __future__ import annotations

from dataclasses import dataclass

from harness import Machine, table


@dataclass
class Pipeline:
    """``Indexer.index_paths``, model preloaded."""

    seconds: float
    cpu_seconds: float
    passages_per_s: float
    stages_s: dict[str, float]  # IndexReport.seconds


@dataclass
class BareEncode:
    """``SentenceTransformer.encode`` over the same inputs (before and after the pipeline
    when bracketed; then ``seconds`` is their mean)."""

    bracketed: bool
    before_s: float | None
    after_s: float
    before_cpu_s: float | None
    after_cpu_s: float
    seconds: float
    cpu_seconds: float
    passages_per_s: float
    texts: int


@dataclass
class Agreement:
    """Cosines of the stored vectors with the bare ones."""

    min_cosine: float
    mean_cosine: float


@dataclass
class Memory:
    """Peak (and current) resident memory of the process at each point, in MB."""

    maxrss_start: float = 0.0
    maxrss_after_model_load: float = 0.0
    maxrss_after_pipeline: float = 0.0
    rss_after_pipeline: float = 0.0
    maxrss_after_bare: float = 0.0


@dataclass
class Disk:
    """The generation's size on disk, in bytes, and per file."""

    generation: str
    bytes: int
    files: dict[str, int]


@dataclass
class LoadTimes:
    """``Collection.load`` seconds, with and without checksum verification."""

    median: float
    runs: list[float]
    median_without_checksums: float
    target: float


@dataclass
class IndexBench:
    """The whole run."""

    corpus: str
    limit: int | None
    documents_in: int
    documents: int
    passages: int
    sentences: int
    skipped: int
    batch_size: int
    pipeline_batch_size: int
    machine: Machine
    model_load_s: float
    pipeline: Pipeline
    bare_encode: BareEncode
    ratio: float
    cpu_ratio: float | None
    target_ratio: float
    vector_agreement: Agreement
    memory_mb: Memory
    disk: Disk
    load_s: LoadTimes
    index_dir: str | None


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MB"


def markdown(r: IndexBench) -> str:
    """The report: the run, throughput and ratio, stages, memory, size on disk, load time."""
    return "\n".join([*_throughput(r), *_stages_and_memory(r), *_disk_and_load(r)])


def _throughput(r: IndexBench) -> list[str]:
    p, b, m = r.pipeline, r.bare_encode, r.machine
    ok = "meets" if r.ratio >= r.target_ratio else "misses"
    scope = f"first {r.limit:,} documents" if r.limit else "all documents"
    mean = " (mean of before and after)" if b.bracketed else ""
    rows = [
        [
            "pipeline `Indexer.index_paths`",
            p.seconds,
            p.cpu_seconds,
            f"{r.passages:,}",
            p.passages_per_s,
        ],
        [
            f"bare `SentenceTransformer.encode`{mean}",
            b.seconds,
            b.cpu_seconds,
            f"{b.texts:,}",
            b.passages_per_s,
        ],
    ]
    bracket = [
        "",
        (
            f"Bare encode before the pipeline: {b.before_s} s wall ({b.before_cpu_s} CPU s); "
            f"after it: {b.after_s} s ({b.after_cpu_s} CPU s)."
        ),
    ]
    return [
        "# Indexing benchmark (scripts/bench_index.py)",
        "",
        (
            f"Corpus `{r.corpus}` ({scope}): {r.documents:,} documents -> {r.passages:,} passages, "
            f"{r.sentences:,} sentences; {r.skipped} skipped. Batch size: pipeline "
            f"{r.pipeline_batch_size}, bare {r.batch_size}."
        ),
        (
            f"Machine: {m.cpus} CPUs (shared), torch {m.torch} with {m.torch_threads} threads, "
            f"sentence-transformers {m.sentence_transformers}, Python {m.python}; load average "
            f"{m.load_avg_start[0]} at start, {m.load_avg_end[0]} at end. "
            f"Model load (excluded from all timings): {r.model_load_s} s."
        ),
        "",
        "## Throughput (one run, same process, same inputs)",
        "",
        *table(["run", "wall s", "CPU s", "passages", "passages/s"], rows, "lrrrr"),
        *(bracket if b.bracketed else []),
        "",
        (
            f"**Ratio pipeline / bare: {r.ratio:.3f}x** (target >= {r.target_ratio}x: {ok}); "
            f"by CPU seconds: {r.cpu_ratio}x."
        ),
        (
            f"Stored pipeline vectors vs bare vectors: min cosine {r.vector_agreement.min_cosine}, "
            f"mean {r.vector_agreement.mean_cosine}."
        ),
    ]


def _stages_and_memory(r: IndexBench) -> list[str]:
    mem = r.memory_mb
    return [
        "",
        "## Pipeline stages (`IndexReport.seconds`, cumulative where the pipeline reports so)",
        "",
        *table(["stage", "seconds"], r.pipeline.stages_s.items(), "lr"),
        "",
        "## Peak memory (`ru_maxrss`, this process)",
        "",
        *table(
            ["point", "MB"],
            [
                ["after model load", mem.maxrss_after_model_load],
                [
                    "after the pipeline",
                    f"{mem.maxrss_after_pipeline} (current RSS {mem.rss_after_pipeline})",
                ],
                ["after the bare encode", mem.maxrss_after_bare],
            ],
            "lr",
        ),
    ]


def _disk_and_load(r: IndexBench) -> list[str]:
    files = [[name, f"{size:,}", f"{size / 2**20:.2f}"] for name, size in r.disk.files.items()]
    ld = r.load_s
    load_ok = "meets" if ld.median < ld.target else "misses"
    runs = ", ".join(f"{t * 1000:.1f}" for t in ld.runs)
    return [
        "",
        f"## Index size on disk: {_mb(r.disk.bytes)} ({r.disk.generation})",
        "",
        *table(["file", "bytes", "MB"], files, "lrr"),
        "",
        "## Loading the built collection (`Collection.load`, model excluded)",
        "",
        (
            f"Median of {len(ld.runs)}: **{ld.median * 1000:.1f} ms** (target < {ld.target} s: "
            f"{load_ok}); runs {runs} ms. Without checksum verification (`verify=False`): "
            f"{ld.median_without_checksums * 1000:.1f} ms."
        ),
        "",
    ]
