"""Segments: search over several segments equals one fresh index over the same live passages
(dense and BM25 scores included), deleted and disallowed rows are never returned, merges keep
everything, memory-mapped loading, and collections of the previous format are converted."""

from __future__ import annotations

import json
import random
from pathlib import Path

import faiss
import numpy as np
import pytest

from qa.encoding import Embedder
from qa.ingest.documents import Document
from qa.service import QAService
from qa.store import Collection, Indexer, current_generation, segment_writer
from qa.store.layout import RowFile
from qa.store.merge import MergePolicy, build_merged, optimize
from tests.conftest import make_settings

TOPICS = ["river", "glacier", "volcano", "orchard", "lighthouse", "bakery", "harbour", "forest"]
WORDS = ["flood", "spring", "barge", "grain", "timber", "anglers", "pike", "carp", "valley",
         "storm", "keeper", "lens", "yeast", "crust", "apples", "frost", "ships", "pines"]  # fmt: skip
QUERIES = [
    "Which river floods its valley after spring rain?",
    "keeper of the lighthouse lens during a storm",
    "apples and frost in the orchard",
    "barges carry grain and timber",
]


def _documents(rng: random.Random, names: list[str]) -> list[Document]:
    """Documents of a few paragraphs each, sharing vocabulary so BM25 statistics matter."""
    out = []
    for name in names:
        topic = rng.choice(TOPICS)
        paragraphs = [
            f"The {topic} {name} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
            + "." for _ in range(rng.randint(2, 4))
        ]  # fmt: skip
        title = f"{topic.title()} {name}"
        out.append(
            Document(name, title, f"notes/{name}", title + "\n\n" + "\n\n".join(paragraphs), "text")
        )
    return out


def _by_key(
    collection: Collection, ids: np.ndarray, scores: np.ndarray
) -> dict[tuple[str, int], float]:
    rows = collection.passages(int(i) for i in ids if i >= 0)
    return {
        (rows[int(i)].document_id, rows[int(i)].ordinal): float(s)
        for i, s in zip(ids, scores)
        if i >= 0
    }


def _same_search(a: Collection, b: Collection, embedder: Embedder) -> None:
    """Dense and BM25 results of every query agree between ``a`` and ``b`` (by passage key)."""
    assert a.counts == b.counts
    for query in QUERIES:
        vector = embedder.encode_queries([query])
        ka = _by_key(a, *(x[0] for x in a.dense_search(vector, 500)))
        kb = _by_key(b, *(x[0] for x in b.dense_search(vector, 500)))
        assert ka.keys() == kb.keys()
        assert all(abs(ka[k] - kb[k]) < 1e-5 for k in ka), query
        sa, sb = a.lexical.scores(query), b.lexical.scores(query)
        la = _by_key(a, a.ids[sa > 0], sa[sa > 0])
        lb = _by_key(b, b.ids[sb > 0], sb[sb > 0])
        assert la.keys() == lb.keys() and la, query
        assert all(abs(la[k] - lb[k]) <= 1e-5 * max(1.0, lb[k]) for k in la), query


@pytest.fixture
def segmented(tmp_path: Path, embedder: Embedder) -> tuple[QAService, list[Document], set[int]]:
    """A collection written in 6 updates (so 6 segments), with deletions and a replacement;
    the live documents; the ids that were deleted or replaced."""
    rng = random.Random(11)
    documents = _documents(rng, [f"d{i:02d}" for i in range(18)])
    service = QAService(make_settings(tmp_path / "index"), embedder)
    for begin in range(0, 18, 3):
        service.indexer.upsert("s", documents[begin : begin + 3])
    before = service.collection("s")
    assert len(before.segments) == 6
    gone = {p.id for p in before.passages_of(["d01", "d07", "d13", "d05"])}
    for name in ("d01", "d07", "d13"):
        service.delete_document("s", name)
    replaced = _documents(random.Random(5), ["d05"])[0]
    service.indexer.upsert("s", [replaced])
    live = [d for d in documents if d.id not in {"d01", "d07", "d13", "d05"}] + [replaced]
    return service, live, gone


def test_segments_search_like_one_fresh_index(
    segmented: tuple[QAService, list[Document], set[int]], embedder: Embedder
) -> None:
    service, live, _ = segmented
    collection = service.collection("s")
    assert len(collection.segments) == 7 and collection.deletions
    service.indexer.upsert("fresh", live)
    fresh = service.collection("fresh")
    assert len(fresh.segments) == 1
    _same_search(collection, fresh, embedder)
    # fusion only: a passage's sentence vectors depend on the batch it was embedded in (the
    # embedder pools token vectors only for the longest text of a padded batch; see README)
    fused = QAService(service.settings.model_copy(update={"sentence_weight": 0.0}), embedder)
    for mode in ("hybrid", "dense", "bm25"):
        for query in QUERIES:
            a = fused.search(query, "s", 8, mode=mode)  # type: ignore[arg-type]
            b = fused.search(query, "fresh", 8, mode=mode)  # type: ignore[arg-type]
            key = [
                (p.citation.document_id, p.citation.paragraph, round(p.score, 4))
                for p in a.passages
            ]
            assert key == [
                (p.citation.document_id, p.citation.paragraph, round(p.score, 4))
                for p in b.passages
            ]

    # merged into one segment: the same again, with every id kept and no deleted row left
    ids_before = set(collection.live_ids().tolist())
    report = service.optimize("s", everything=True)
    assert report.merges and report.segments_after == 1
    merged = service.collection("s")
    assert len(merged.segments) == 1 and not merged.deletions
    assert set(merged.ids.tolist()) == ids_before and merged.live.all()
    _same_search(merged, fresh, embedder)


def test_deleted_and_disallowed_rows_are_never_returned(
    segmented: tuple[QAService, list[Document], set[int]], embedder: Embedder
) -> None:
    service, _, gone = segmented
    collection = service.collection("s")
    live = set(collection.live_ids().tolist())
    assert gone and not gone & live and gone <= set(collection.ids.tolist())  # still on disk
    for query in QUERIES:
        vector = embedder.encode_queries([query])
        ids, _ = collection.dense_search(vector, 1000)
        assert set(ids[0].tolist()) == live  # all of them, and nothing deleted
        scores = collection.lexical.scores(query)
        assert not scores[~collection.live].any()
        # a mask of allowed passages is applied inside the search, before top-k
        allowed_ids = sorted(live)[::3]
        allowed = collection.allow(allowed_ids)
        ids, _ = collection.dense_search(vector, 5, allowed=allowed)
        assert len(ids[0]) == 5 and set(ids[0].tolist()) <= set(allowed_ids)
        scores = collection.lexical.scores(query, allowed=allowed)
        assert set(collection.ids[scores > 0].tolist()) <= set(allowed_ids)
        assert not collection.allow(gone).any()
    unknown = [*sorted(gone), -5, int(collection.ids.max()) + 1, 10**9]
    assert (collection.rows_of(unknown) == -1).all()


def test_best_rows_from_a_sampled_floor_equal_a_full_sort(
    segmented: tuple[QAService, list[Document], set[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Lexical.top`` ranks only rows above the k-th best of a sample: the same rows, in
    the same order (ties by row), as sorting every score."""
    service, _, _ = segmented
    lexical = service.collection("s").lexical
    monkeypatch.setattr("qa.store.lexical.SAMPLE", 1)  # sample even this small collection
    rng = np.random.default_rng(0)
    for k in (1, 3, 5, 10):
        scores = rng.integers(0, 4, len(lexical.ids)).astype(np.float32)  # ties and zeros
        ids, values = lexical.top(scores, k)
        order = np.lexsort((np.arange(len(scores)), -scores))
        order = order[scores[order] > 0][:k]
        assert ids.tolist() == lexical.ids[order].tolist()
        assert values.tolist() == scores[order].tolist()


def test_merge_commits_deletions_made_while_it_ran(
    segmented: tuple[QAService, list[Document], set[int]],
) -> None:
    service, _, _ = segmented
    directory = service.settings.collection_dir("s")
    collection = service.collection("s")
    names = [s.name for s in collection.segments[:3]]
    victim = next(
        d for d in collection.document_segments() if collection.document_segments()[d] in names
    )
    info, building = build_merged(collection, names, service.indexer.dense_params(), lambda s: None)
    service.delete_document("s", victim)  # a writer gets in before the merge commits
    from qa.store.merge import _commit_merge

    snapshot = {n: set(collection.deletions.get(n, ())) for n in names}
    assert _commit_merge(directory, info, building, snapshot, lambda s: None)
    after = service.collection("s")
    assert info.name in [s.name for s in after.segments]
    assert after.document(victim) is None and not after.passages_of([victim])
    assert not set(names) & {s.name for s in after.segments}


def test_policy_merges_small_segments(tmp_path: Path, embedder: Embedder) -> None:
    settings = make_settings(tmp_path / "index", merge_factor=3)
    service = QAService(settings, embedder)
    for document in _documents(random.Random(3), [f"m{i}" for i in range(7)]):
        service.indexer.upsert("m", [document])
    before = service.collection("m")
    assert len(before.segments) == 7
    policy = MergePolicy(factor=settings.merge_factor)
    report = optimize(settings.collection_dir("m"), service.indexer.dense_params(), policy)
    after = service.collection("m")
    # 7 small segments: merged 3 at a time until fewer than 3 share a tier
    assert report.merges and len(after.segments) < 3
    assert set(after.live_ids().tolist()) == set(before.live_ids().tolist())


def test_indexes_are_memory_mapped(
    segmented: tuple[QAService, list[Document], set[int]],
) -> None:
    service, _, _ = segmented
    collection = service.collection("s")
    maps = Path("/proc/self/maps").read_text()
    for segment in collection.segments:
        assert str(segment.path / "dense.faiss") in maps  # mapped, not read into memory
        assert str(segment.path / "lexical" / "rows.npy") in maps


def test_approximate_index_loaded_into_memory_searches_the_same(
    tmp_path: Path, embedder: Embedder
) -> None:
    """QA_DENSE_MEMORY=load reads IVF lists into the process instead of mapping them."""
    settings = make_settings(tmp_path / "index", dense_index="ivf-sq8")
    QAService(settings, embedder).indexer.upsert("v", _documents(random.Random(4), ["a", "b"]))
    load = settings.model_copy(update={"dense_memory": "load"})
    loaded = QAService(load, embedder).collection("v")
    (segment,) = loaded.segments
    assert segment.info.dense.kind == "ivf-sq8"
    assert str(segment.path / "dense.faiss") not in Path("/proc/self/maps").read_text()
    mapped = QAService(settings, embedder).collection("v")
    assert str(segment.path / "dense.faiss") in Path("/proc/self/maps").read_text()
    # no prefetch threads started per search (4-5 ms a question at 1M passages)
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(mapped.segments[0].index).invlists)
    assert isinstance(lists, faiss.OnDiskInvertedLists) and lists.prefetch_nthread == 0
    for query in QUERIES:
        vector = embedder.encode_queries([query])
        a, b = mapped.dense_search(vector, 5), loaded.dense_search(vector, 5)
        assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_row_file_reads_rows_like_the_array(tmp_path: Path, dtype: type) -> None:
    array = np.random.default_rng(0).random((500, 6)).astype(dtype)
    np.save(tmp_path / "a.npy", array)
    rows = RowFile(tmp_path / "a.npy")
    picked = np.array([7, 0, 499, 7])
    assert np.array_equal(rows.rows(picked), array[picked])
    assert np.array_equal(rows.span(3, 9), array[3:9])
    assert rows.span(4, 4).shape == (0, 6)
    assert rows.rows(np.array([], dtype=np.int64)).shape == (0, 6)
    with pytest.raises(EOFError):
        rows.rows(np.array([500]))
    rows.close()


def test_scratch_rows_are_read_and_copied_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment's scratch files are read with pread, never mapped (mapped pages count in
    the build's memory), and copied into ``.npy`` files equal to ``np.save``'s."""
    monkeypatch.setattr(segment_writer, "CHUNK_ROWS", 64)  # several chunks
    array = np.random.default_rng(1).random((300, 5)).astype(np.float32)
    array.tofile(tmp_path / "raw")
    rows = segment_writer.Scratch(tmp_path / "raw", np.float32, 5)
    assert rows.shape == (300, 5) and np.array_equal(rows[10:200], array[10:200])
    sample = np.array([0, 63, 64, 65, 299])
    assert np.array_equal(rows[sample], array[sample]) and rows[5:5].shape == (0, 5)
    segment_writer._copy_npy(tmp_path / "copy.npy", rows, np.float16)
    np.save(tmp_path / "saved.npy", array.astype(np.float16))
    assert (tmp_path / "copy.npy").read_bytes() == (tmp_path / "saved.npy").read_bytes()
    assert str(tmp_path / "raw") not in Path("/proc/self/maps").read_text()


def test_stored_vectors_equal_through_either_path(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = QAService(make_settings(tmp_path / "index", dense_index="hnsw"), embedder)
    service.indexer.upsert("h", _documents(random.Random(3), ["a", "b"]))
    (segment,) = service.collection("h").segments
    rows = np.arange(len(segment))[::-1]
    read = segment.vectors(rows)  # a few rows: read with pread
    monkeypatch.setattr("qa.store.segment.FEW_ROWS", 0)
    assert np.array_equal(read, segment.vectors(rows))  # the same through the memory map
    passage_id = int(segment.ids[0])
    _, vectors = segment.sentences([passage_id])[passage_id]
    first, last = (int(x[0]) for x in segment.sentence_range(np.array([passage_id])))
    assert np.array_equal(vectors, segment.sentence_vectors[first:last].astype(np.float32))


def test_previous_format_is_converted_once(tmp_path: Path, embedder: Embedder) -> None:
    """A format-2 collection (one flat IndexIDMap2, one SQLite file) loads, converted once into
    one segment with the same ids, vectors and search results."""
    from qa.store.sql import write_database

    service = QAService(make_settings(tmp_path / "index"), embedder)
    documents = _documents(random.Random(8), [f"o{i}" for i in range(6)])
    service.indexer.upsert("new", documents)
    new = service.collection("new")
    legacy = tmp_path / "index" / "old" / "gen-000004"
    legacy.mkdir(parents=True)
    ids, vectors = new.all_vectors()
    rows = new.passages(ids.tolist())
    write_database(
        legacy / "store.sqlite",
        list(new.iter_documents(new.document_hashes())),
        [rows[i] for i in ids.tolist()],
    )
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(new.dimension))
    index.add_with_ids(vectors, ids)
    faiss.write_index(index, str(legacy / "dense.faiss"))
    segment = new.segments[0]
    np.save(legacy / "sentence_spans.npy", np.asarray(segment.sentence_spans))
    np.save(legacy / "sentences.npy", np.asarray(segment.sentence_vectors))
    manifest = json.loads((new.path / "manifest.json").read_text())
    for key in ("segments", "dense_index"):
        manifest.pop(key)
    manifest.update(format_version=2, generation="gen-000004", collection="old", files={})
    (legacy / "manifest.json").write_text(json.dumps(manifest))
    (legacy.parent / "CURRENT").write_text("gen-000004\n")

    old = service.collection("old")  # converted here
    assert old.manifest.format_version == 3 and current_generation(legacy.parent) == "gen-000005"
    assert np.array_equal(old.ids, new.ids) and np.allclose(old.all_vectors()[1], vectors)
    _same_search(old, new, embedder)
    assert Indexer(service.settings, embedder).upsert("old", documents[:1]).changed is False


def _docstrings(count: int) -> list[str]:
    """First lines of the standard library's docstrings: real English text on any machine."""
    import collections
    import email.message
    import inspect
    import json as json_module
    import os
    import pathlib
    import string
    import tarfile
    import textwrap
    import threading
    import zipfile

    modules = [collections, email.message, inspect, json_module, os, pathlib, string, tarfile]
    modules += [textwrap, threading, zipfile, random, np]
    found: dict[str, None] = {}
    for module in modules:
        for _, member in inspect.getmembers(module):
            for item in [member, *(m for _, m in inspect.getmembers(member, callable))]:
                doc = getattr(item, "__doc__", None)
                line = doc.strip().split("\n")[0] if isinstance(doc, str) else ""
                if len(line.split()) >= 5:
                    found[line] = None
    return list(found)[:count]


def test_approximate_index_recall_on_real_vectors(tmp_path: Path, embedder: Embedder) -> None:
    """At a lowered threshold a segment gets IVF-SQ8, whose top 10 for real questions share
    >= 95% with exact search over the same real MiniLM vectors; so does HNSW."""
    from qa.store import dense

    texts = _docstrings(700)
    assert len(texts) == 700
    corpus, questions = texts[:600], texts[600:]
    settings = make_settings(tmp_path, dense_flat_below=300)
    documents = [Document(f"t{i}", "", f"t{i}", text, "text") for i, text in enumerate(corpus)]
    Indexer(settings, embedder).upsert("r", documents)
    collection = Collection.load(settings.collection_dir("r"))
    assert [s.info.dense.kind for s in collection.segments] == ["ivf-sq8"]
    assert read_json(settings.collection_dir("r"))["dense_index"] == "auto"
    ids, vectors = collection.all_vectors()
    queries = embedder.encode_queries(questions)
    exact = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    found, _ = collection.dense_search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
    assert recall >= 0.95, recall
    hnsw = dense.build(vectors, "hnsw", dense.DenseParams(choice="hnsw"))
    rows = dense.search(hnsw, queries, 10, None)[1]
    recall = np.mean([len(set(ids[a]) & set(b)) / 10 for a, b in zip(rows, exact)])
    assert recall >= 0.95, recall


def read_json(collection_dir: Path) -> dict[str, object]:
    """The live manifest as JSON."""
    live = current_generation(collection_dir)
    return json.loads((collection_dir / str(live) / "manifest.json").read_text(encoding="utf-8"))
