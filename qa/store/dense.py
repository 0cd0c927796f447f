"""The dense index of a segment, picked by its size: exact below a threshold, approximate above.

* ``flat``: exact inner product (``IndexFlatIP``); opened memory-mapped (``IO_FLAG_MMAP_IFC``),
  so start-up does not read it and several processes share one copy in the page cache.
* ``ivf-sq8``: an inverted file over 8-bit scalar-quantised vectors (a quarter of float32),
  trained on a sample of the segment; its lists are memory-mapped (``IO_FLAG_MMAP``).
* ``hnsw``: a graph over float32 vectors (fast, but 4x the memory of ``ivf-sq8``).

Row ``i`` of the index is row ``i`` of the segment (no id map): passage ids and deletions are
the segment's business, applied inside the search through an id selector, before top-k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    import faiss

DenseKind = Literal["flat", "ivf-sq8", "hnsw"]
DenseChoice = Literal["auto", "flat", "ivf-sq8", "hnsw"]
DenseMemory = Literal["map", "load"]  # IVF lists memory-mapped, or read into the process
SMALL_INDEX = 200_000  # below this many vectors FAISS searches in one thread


@dataclass(frozen=True)
class DenseParams:
    """How dense indexes are built and searched (figures from scripts/bench_scale.py).

    ``flat_below``: one question over an exact index took 0.98 ms at 10k vectors, 7.4 ms at
    25k and 15.4 ms at 50k on one core of the (loaded) development machine, against 0.16,
    0.39 and 0.71 ms for IVF-SQ8 at recall@10 0.95-0.99 (scripts/bench_scale.py, README):
    exact up to 20k keeps small collections such as SciFact (10,818) exact and fast.
    ``nprobe``: on the 10,818 real SciFact vectors with the 300 real test questions, lists
    probed out of ``nlist`` = 277 gave recall@10 against exact search of 0.915 (16), 0.940
    (24), 0.959 (32), 0.974 (48): an eighth of the lists, at least 32, keeps it >= 0.95.
    At 1M vectors (nlist 4,000) recall@10 stops growing at ~96 lists (0.972 at 48, 0.977 at
    96, 160 and 256: the 8-bit codes' limit) while time grows with them: at most 128.
    """

    choice: DenseChoice = "auto"
    flat_below: int = 20_000
    nprobe_share: float = 1 / 8  # lists probed, as a share of nlist (at least min_nprobe)
    min_nprobe: int = 32
    max_nprobe: int = 128
    train_sample: int = 100_000  # vectors the k-means of the lists is trained on
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 96

    def kind_for(self, count: int) -> DenseKind:
        """The index a segment of ``count`` vectors gets."""
        if self.choice != "auto":
            return self.choice
        return "flat" if count < self.flat_below else "ivf-sq8"


def nlist_for(count: int) -> int:
    """Inverted lists for ``count`` vectors: ~4 sqrt(n), each trained on >= 39 points."""
    return max(1, min(int(4 * math.sqrt(count)), count // 39, 65_536))


def nprobe_for(nlist: int, params: DenseParams) -> int:
    """Lists probed per query for an index of ``nlist`` lists."""
    share = min(params.max_nprobe, math.ceil(nlist * params.nprobe_share))
    return min(nlist, max(params.min_nprobe, share))


class Rows(Protocol):
    """Rows of vectors: an array, or a file read a chunk at a time."""

    shape: tuple[int, ...]

    def __getitem__(self, rows: slice | np.ndarray, /) -> np.ndarray: ...


def build(vectors: Rows, kind: DenseKind, params: DenseParams) -> faiss.Index:
    """An index of ``vectors`` (float16 or float32 rows), added in chunks."""
    import faiss

    count, dimension = vectors.shape
    if kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.hnsw_ef_construction
        index.hnsw.efSearch = params.hnsw_ef_search
    else:
        nlist = nlist_for(count)
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dimension, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        rng = np.random.default_rng(0)  # the same sample, so the same index, for the same input
        sample = np.sort(rng.choice(count, min(count, params.train_sample), replace=False))
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
        index.nprobe = nprobe_for(nlist, params)
    for begin in range(0, count, 50_000):
        index.add(np.ascontiguousarray(vectors[begin : begin + 50_000], dtype=np.float32))
    return index


def save(index: faiss.Index, path: Path) -> None:
    """Write the index file."""
    import faiss

    faiss.write_index(index, str(path))


def load(path: Path, kind: str, memory: DenseMemory = "map") -> faiss.Index:
    """Open an index memory-mapped where FAISS can (flat codes; inverted lists unless
    ``memory`` is "load")."""
    import faiss

    flags = {"flat": faiss.IO_FLAG_MMAP_IFC, "ivf-sq8": faiss.IO_FLAG_MMAP}.get(kind, 0)
    if kind == "ivf-sq8" and memory == "load":
        flags = 0
    index = faiss.read_index(str(path), flags)
    if flags == faiss.IO_FLAG_MMAP:
        # mapped lists come back as OnDiskInvertedLists, which start 32 threads to touch the
        # probed lists before every search: 4-5 ms a question at 1M passages, more than the
        # search itself (the pages are in the page cache already, or read on first touch)
        lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
        if hasattr(lists, "prefetch_nthread"):
            lists.prefetch_nthread = 0
    return index


def search(
    index: faiss.Index, vectors: np.ndarray, k: int, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, rows)`` of the best ``k`` rows among those ``allowed`` (all when ``None``);
    rows are -1 where fewer qualify."""
    import faiss

    queries = np.ascontiguousarray(vectors, dtype=np.float32)
    if index.ntotal < SMALL_INDEX:
        # a few queries over a small index: OpenMP threads cost more than they save (the
        # setting is per calling thread, and requests run on several)
        faiss.omp_set_num_threads(1)
    if allowed is None:
        return index.search(queries, k)
    bits = np.packbits(allowed.astype(np.uint8), bitorder="little")
    selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
    if isinstance(index, faiss.IndexIVF):
        params: faiss.SearchParameters = faiss.SearchParametersIVF(sel=selector)
        params.nprobe = index.nprobe
    elif isinstance(index, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW(sel=selector)
        params.efSearch = index.hnsw.efSearch
    else:
        params = faiss.SearchParameters(sel=selector)
    scores, rows = index.search(queries, k, params=params)
    del bits  # the selector points into it: alive until the search is done
    return scores, rows
