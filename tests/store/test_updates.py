"""Keeping a collection current: incremental re-index, deletes that really delete, live switch.

Real model, real FAISS, real SQLite and BM25; the concurrency test runs a real uvicorn server.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from qa.encoding import Embedder
from qa.errors import Busy, UnknownDocument
from qa.http.app import create_app
from qa.service import QAService
from qa.store import Collection, Indexer, current_generation, writer_lock
from tests.conftest import make_settings
from tests.helpers import ROOT, serve_in_thread

MODES = ("dense", "bm25", "hybrid")

FILES = {
    "a.txt": "Alpaca farming\n\n"
    "Alpacas are domesticated camelids raised in the Andes for their soft fleece.\n\n"
    "Shearing happens once a year, usually in spring, and yields about three kilograms of fibre per animal.\n",
    "b.txt": "Volcano monitoring\n\n"
    "Seismometers around Mount Veltrana record small earthquakes before an eruption.\n\n"
    "The observatory measures sulphur dioxide emissions with ultraviolet spectrometers every morning.\n\n"
    "Ground deformation is tracked with satellite radar interferometry.\n",
    "c.txt": "Lighthouse keeping\n\n"
    "The Quillbrook lighthouse keeper polished the brass Fresnel lens every evening before dusk.\n\n"
    "Fog signals were sounded with a compressed-air diaphone during storms at Quillbrook.\n",
    "d.md": "# Glacier retreat\n\n"
    "The Morvik glacier has retreated two kilometres since measurements began in 1890.\n\n"
    "Meltwater lakes form at the glacier snout each summer.\n",
    "sub/e.txt": "Bread baking\n\n"
    "Sourdough starter ferments flour and water with wild yeast and lactic acid bacteria.\n\n"
    "A long cold proof in the refrigerator deepens the flavour of the crust.\n",
}
NEW_B_PARAGRAPH = "Drones now sample the gas plume above the crater twice a week."
OLD_B_PARAGRAPH = "The observatory measures sulphur dioxide emissions with ultraviolet spectrometers every morning."
NEW_FILE = (
    "Beekeeping\n\n"
    "Honeybee colonies swarm in late spring when the hive becomes crowded.\n\n"
    "Beekeepers add supers to the hive to give the colony more room for honey.\n"
)
DELETED_QUERY = (
    "The Quillbrook lighthouse keeper polished the brass Fresnel lens; diaphone fog signals"
)


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _ids(collection: Collection, document_id: str) -> list[int]:
    return [p.id for p in collection.passages_of([document_id])]


def _store_ids(collection: Collection) -> tuple[set[int], set[int], set[int]]:
    """Passage ids held by SQLite, FAISS and BM25."""
    sqlite_ids = {p.id for p in collection.passages_of(collection.document_hashes())}
    faiss_ids, _ = collection.all_vectors()
    bm25_ids = collection.lexical.ids[collection.lexical.live]
    return sqlite_ids, set(faiss_ids.tolist()), set(bm25_ids.tolist())


def _assert_consistent(collection: Collection) -> set[int]:
    """SQLite, FAISS and BM25 hold exactly the same passages; returns their ids."""
    sqlite_ids, faiss_ids, bm25_ids = _store_ids(collection)
    assert sqlite_ids == faiss_ids == bm25_ids
    assert len(sqlite_ids) == collection.counts["passages"] == int(collection.live.sum())
    return sqlite_ids


def _hits(service: QAService, collection: Collection, mode: str, query: str, k: int) -> list[int]:
    return [h.passage_id for h in service.retriever(collection, mode).search(query, k)]  # type: ignore[arg-type]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    _write(docs, FILES)
    return docs


def test_add_change_delete_rename_then_reindex(
    tmp_path: Path, folder: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path / "index")
    indexer = Indexer(settings, embedder)
    first = indexer.index_paths("c", [folder])
    assert (first.added, first.updated, first.removed, first.unchanged) == (5, 0, 0, 0)
    assert first.documents == 5 and first.passages == 11 and first.embedded == 11
    directory = settings.collection_dir("c")
    before = Collection.load(directory)
    old_ids = {doc: _ids(before, doc) for doc in FILES}
    assert all(old_ids.values())

    # change b (one paragraph replaced), delete c, rename d.md -> sub/moved.md, add f.txt
    _write(
        folder,
        {"b.txt": FILES["b.txt"].replace(OLD_B_PARAGRAPH, NEW_B_PARAGRAPH), "f.txt": NEW_FILE},
    )
    (folder / "c.txt").unlink()
    (folder / "d.md").rename(folder / "sub" / "moved.md")

    # the counts come from the real command line (one subprocess: it pays the torch import)
    env = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir), "QA_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "qa", "index", str(folder), "--collection", "c"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "2 added, 1 updated, 2 removed, 2 unchanged" in result.stdout, result.stdout
    # only the new paragraph of b and the two of f.txt were embedded; b's other paragraphs
    # and the renamed file's reused their vectors
    assert "3 passages embedded" in result.stdout, result.stdout
    assert "now at gen-000002" in result.stdout

    after = Collection.load(directory, expect_model=embedder.identity.to_dict())
    assert after.generation != before.generation
    assert after.counts == {"documents": 5, "passages": 11}
    live = _assert_consistent(after)

    # unchanged documents keep their passage ids (citations stay valid)
    for doc in ("a.txt", "sub/e.txt"):
        assert _ids(after, doc) == old_ids[doc], doc
        assert [p.text for p in after.passages_of([doc])] == [
            p.text for p in before.passages_of([doc])
        ]
    # a changed document gets fresh passages, none reusing an old id
    ceiling = max(max(ids) for ids in old_ids.values())
    new_b = after.passages_of(["b.txt"])
    assert len(new_b) == 3 and all(p.id > ceiling for p in new_b)
    assert NEW_B_PARAGRAPH in [p.text for p in new_b] and OLD_B_PARAGRAPH not in [
        p.text for p in new_b
    ]
    assert after.document("b.txt").text.count(NEW_B_PARAGRAPH) == 1  # type: ignore[union-attr]
    for p in new_b:  # offsets still reproduce the passage from the stored document
        assert after.document("b.txt").text[p.char_start : p.char_end] == p.text  # type: ignore[union-attr]
    # the renamed file is a new document; the old name is gone
    assert after.document("sub/moved.md") is not None and after.document("d.md") is None
    assert all(p.id > ceiling for p in after.passages_of(["sub/moved.md"]))

    # deleted and renamed-away documents: absent from SQLite, FAISS and BM25
    gone = set(old_ids["c.txt"]) | set(old_ids["d.md"]) | set(old_ids["b.txt"])
    assert not gone & live
    assert after.document("c.txt") is None and after.passages_of(["c.txt", "d.md"]) == []
    assert after.passages(gone) == {}

    # ... and unfindable by every retriever
    service = QAService(settings, embedder)
    for mode in MODES:
        hits = _hits(service, after, mode, DELETED_QUERY, 5)
        assert not set(hits) & gone, mode
        assert set(hits) <= live, mode
        reply = service.search(DELETED_QUERY, "c", 5, mode=mode)  # type: ignore[arg-type]
        assert reply.generation == after.generation
        assert all(
            "Quillbrook" not in p.text and p.citation.document_id != "c.txt" for p in reply.passages
        )
        old_b = service.search(OLD_B_PARAGRAPH, "c", 5, mode=mode)  # type: ignore[arg-type]
        assert all(p.text != OLD_B_PARAGRAPH for p in old_b.passages), mode
        moved = service.search("How far has the Morvik glacier retreated?", "c", 3, mode=mode)  # type: ignore[arg-type]
        assert moved.passages[0].citation.document_id == "sub/moved.md", mode
    assert _hits(service, after, "bm25", "Quillbrook diaphone", 5) == []  # no term left to match

    # re-indexing the unchanged folder writes no new generation
    names = sorted(p.name for p in directory.glob("gen-*"))
    again = Indexer(settings, embedder).index_paths("c", [folder])
    assert not again.changed and again.embedded == 0
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 5)
    assert again.generation == after.generation == current_generation(directory)
    assert sorted(p.name for p in directory.glob("gen-*")) == names

    # --full rebuilds everything: every passage embedded again, and no id is recycled
    full = Indexer(settings, embedder).index_paths("c", [folder], full=True)
    assert full.full_rebuild and full.embedded == full.passages == 11 and full.reused_vectors == 0
    assert full.generation != after.generation == max(names)
    rebuilt = Collection.load(directory)
    rebuilt_ids = _assert_consistent(rebuilt)
    assert rebuilt_ids.isdisjoint(live | gone), (
        "a rebuild must not give an old passage id to another passage"
    )
    assert rebuilt.counts == after.counts


def test_search_returns_top_k_live_results_after_deletes(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "rivers"
    rivers = ["Danube", "Rhine", "Volga", "Loire", "Tagus", "Elbe", "Oder", "Po", "Ebro", "Seine"]
    _write(
        docs,
        {
            f"{name.lower()}.txt": f"The {name}\n\n"
            f"The river {name} floods its valley after heavy spring rain.\n\n"
            f"Barges carry grain and timber along the river {name} to the sea.\n\n"
            f"Anglers catch pike and carp where the river {name} slows down.\n"
            for name in rivers
        },
    )
    settings = make_settings(tmp_path / "index")
    service = QAService(settings, embedder)
    service.index([docs], "r")
    before = service.collection("r")
    assert before.counts == {"documents": 10, "passages": 30}
    query = "Which river floods its valley after spring rain?"
    top_before = {mode: _hits(service, before, mode, query, 8) for mode in MODES}

    # delete the documents the query ranks highest: three through the API-level delete,
    # three by removing their files and re-indexing
    ranked_docs = list(
        dict.fromkeys(p.document_id for p in before.passages(top_before["hybrid"]).values())
    )
    ranked_docs += [f"{n.lower()}.txt" for n in rivers if f"{n.lower()}.txt" not in ranked_docs]
    victims = ranked_docs[:6]
    deleted_ids = {p.id for p in before.passages_of(victims)}
    for doc in victims[:3]:
        report = service.delete_document("r", doc)
        assert report.removed == 1 and report.embedded == 0
        assert service.collection("r").generation == report.generation
    for doc in victims:  # the files go too, or the next re-index would add them back
        (docs / doc).unlink()
    report = service.index([docs], "r")
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 3, 4)

    after = service.collection("r")
    assert after.counts == {"documents": 4, "passages": 12}
    live = _assert_consistent(after)
    assert not live & deleted_ids
    for doc in victims:
        assert after.document(doc) is None and after.passages_of([doc]) == []
        with pytest.raises(UnknownDocument):
            service.delete_document("r", doc)
    for mode in MODES:
        hits = _hits(service, after, mode, query, 8)
        assert len(hits) == 8 and len(set(hits)) == 8, mode  # still top_k results ...
        assert set(hits) <= live, mode  # ... all of them live, never a stale id
        reply = service.search(query, "r", 8, mode=mode)  # type: ignore[arg-type]
        assert len(reply.passages) == 8 and {p.passage_id for p in reply.passages} <= live
        assert not {p.citation.document_id for p in reply.passages} & set(victims)
    # asking for more than is left returns what is left, still nothing stale
    assert set(_hits(service, after, "dense", query, 50)) == live


def test_second_writer_is_busy_and_changes_nothing(
    tmp_path: Path, folder: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path / "index")
    service = QAService(settings, embedder)
    service.index([folder], "c")
    directory = settings.collection_dir("c")
    live = current_generation(directory)
    (folder / "g.txt").write_text("Kites\n\nBox kites fly steadily in strong coastal winds.\n")
    with writer_lock(directory):  # another writer is at work
        for write in (
            lambda: service.index([folder], "c"),
            lambda: service.add_text(
                "c", "note", "A note", "Gliders soar on thermals above the ridge.", None
            ),
            lambda: service.add_file(
                "c", "up.txt", b"Up\n\nA file uploaded while the collection is busy.\n"
            ),
            lambda: service.delete_document("c", "a.txt"),
            lambda: service.reindex("c"),
        ):
            with pytest.raises(Busy, match="being updated by another writer; try again"):
                write()
    assert current_generation(directory) == live
    assert not (directory / "uploads").exists()  # nothing saved by the refused writes
    report = service.index([folder], "c")  # the lock is free again
    assert report.added == 1 and report.generation != live


# --------------------------------------------------------------------------- concurrency

QUESTIONS = [
    "How much fleece does an alpaca give?",
    "How are earthquakes at the volcano recorded?",
    "What makes sourdough rise?",
    "When do honeybees swarm?",
    "What do kites need to fly?",
]


def _snapshot(collection: Collection) -> dict[int, str]:
    """``{passage_id: text}`` of a whole generation."""
    return {p.id: p.text for p in collection.passages_of(collection.document_hashes())}


def test_queries_during_updates_come_from_one_generation(
    tmp_path: Path, folder: Path, embedder: Embedder
) -> None:
    """4 threads query (2 over HTTP, 2 through the library) while documents are added, replaced and deleted."""
    _write(folder, {"f.txt": NEW_FILE})
    settings = make_settings(tmp_path / "index", collection="live")
    service = QAService(settings, embedder)
    service.index([folder], "live")
    generations: dict[str, dict[int, str]] = {}
    first = service.collection("live")
    generations[first.generation] = _snapshot(first)
    top_k = 5
    stop = threading.Event()
    errors: list[str] = []
    seen: list[tuple[str, str, list[tuple[int, str]]]] = []  # (who, generation, [(id, text)])
    lock = threading.Lock()

    def record(who: str, generation: str, passages: list[tuple[int, str]]) -> None:
        with lock:
            seen.append((who, generation, passages))

    def http_reader(base: str, who: str, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=base, timeout=120) as http:
            while True:
                done = stop.is_set()
                question = rng.choice(QUESTIONS)
                try:
                    if rng.random() < 0.5:
                        r = http.get("/v1/search", params={"q": question, "top_k": top_k})
                    else:
                        r = http.post("/v1/ask", json={"question": question, "top_k": top_k})
                    if r.status_code != 200:
                        errors.append(f"{who}: HTTP {r.status_code} {r.text[:300]}")
                    else:
                        body = r.json()
                        record(
                            who,
                            body["generation"],
                            [(p["passage_id"], p["text"]) for p in body["passages"]],
                        )
                except Exception as exc:  # noqa: BLE001 - every failure is a test failure
                    errors.append(f"{who}: {exc!r}")
                if done:
                    return

    def library_reader(who: str, seed: int) -> None:
        rng = random.Random(seed)
        while True:
            done = stop.is_set()
            try:
                mode = rng.choice(MODES)
                reply = service.search(rng.choice(QUESTIONS), "live", top_k, mode=mode)  # type: ignore[arg-type]
                record(
                    f"{who}/{mode}",
                    reply.generation,
                    [(p.passage_id, p.text) for p in reply.passages],
                )
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{who}: {exc!r}")
            if done:
                return

    kites = (
        "Box kites fly steadily in strong coastal winds.\n\nA kite needs a steady wind to stay up."
    )
    gliders = b"# Gliders\n\nGliders soar on rising thermals above the ridge.\n\nPilots circle to climb.\n"
    winch = b"# Gliders\n\nA winch launch lifts the glider to four hundred metres.\n"
    writes: list[tuple[str, Any]] = [
        ("add w1", lambda: service.add_text("live", "w1", "Kites", kites, None)),
        (
            "replace w1",
            lambda: service.add_text(
                "live", "w1", "Kites", "Delta kites launch easily from a beach.", None
            ),
        ),
        ("add w2 file", lambda: service.add_file("live", "notes/w2.md", gliders)),
        ("delete w1", lambda: service.delete_document("live", "w1")),
        ("delete a.txt", lambda: service.delete_document("live", "a.txt")),
        ("replace w2 file", lambda: service.add_file("live", "notes/w2.md", winch)),
        ("delete w2", lambda: service.delete_document("live", "notes/w2.md")),
    ]
    with serve_in_thread(create_app(settings, service)) as base:
        threads = [
            threading.Thread(target=http_reader, args=(base, "http-1", 1)),
            threading.Thread(target=http_reader, args=(base, "http-2", 2)),
            threading.Thread(target=library_reader, args=("lib-1", 3)),
            threading.Thread(target=library_reader, args=("lib-2", 4)),
        ]
        for thread in threads:
            thread.start()
        try:
            for name, write in writes:
                count = len(seen)
                report = write()
                loaded = service.collection("live")
                assert loaded.generation == report.generation, name
                generations[loaded.generation] = _snapshot(loaded)
                _assert_consistent(loaded)
                # let the readers see this generation before the next switch
                while len(seen) < count + 8 and not errors:
                    threading.Event().wait(0.05)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=300)
    assert not errors, errors[:5]
    assert len(generations) == len(writes) + 1
    assert {who.split("/")[0] for who, _, _ in seen} == {"http-1", "http-2", "lib-1", "lib-2"}
    for who, generation, passages in seen:
        assert generation in generations, (who, generation)
        snapshot = generations[generation]
        if who.endswith("/bm25"):  # BM25 returns only passages that share a term with the question
            assert len(passages) <= top_k, (who, generation, passages)
        else:  # a mix of generations would drop ids that the other generation's SQLite lacks
            assert len(passages) == top_k, (who, generation, passages)
        for passage_id, text in passages:
            # every passage is one of that generation's, with that generation's text
            assert snapshot.get(passage_id) == text, (who, generation, passage_id)
    observed = {generation for _, generation, _ in seen}
    print(
        f"\n{len(seen)} answers from {len(observed)} of {len(generations)} generations during {len(writes)} writes"
    )
    assert len(observed) >= len(writes) // 2, observed  # the readers lived through the switches
    # deleted documents are gone, replaced text is gone, and the upload folder holds what is live
    final = service.collection("live")
    assert (
        final.document("w1") is None
        and final.document("a.txt") is None
        and final.document("notes/w2.md") is None
    )
    assert (
        sorted(
            p.name for p in (settings.collection_dir("live") / "uploads").rglob("*") if p.is_file()
        )
        == []
    )
    assert np.isfinite(final.all_vectors()[1]).all()
    shutil.rmtree(tmp_path / "index", ignore_errors=True)


def test_deleting_a_jsonl_line_keeps_the_other_documents(
    tmp_path: Path, embedder: Embedder
) -> None:
    """A JSONL document's source names its line; a line deleted above it must not make it "changed"."""
    import json

    docs = tmp_path / "beir"
    docs.mkdir()
    records = [
        {
            "_id": f"d{i}",
            "title": f"Topic {i}",
            "text": f"Finding number {i}: the {word} assay was repeated twice.",
        }
        for i, word in enumerate(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])
    ]
    corpus = docs / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records))
    settings = make_settings(tmp_path / "index")
    indexer = Indexer(settings, embedder)
    indexer.index_paths("b", [docs])
    before = Collection.load(settings.collection_dir("b"))
    ids_before = {r["_id"]: _ids(before, r["_id"]) for r in records}

    # line 2 goes
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records if r["_id"] != "d1"))
    report = indexer.index_paths("b", [docs])
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 1, 5)
    assert report.embedded == 0 and report.relocated == 4  # d2..d5 moved up one line
    after = Collection.load(settings.collection_dir("b"))
    for record in records:
        if record["_id"] != "d1":
            assert _ids(after, record["_id"]) == ids_before[record["_id"]]  # citations stay valid
    assert after.document("d5").source == "beir/corpus.jsonl:5"  # type: ignore[union-attr]  # the row names the new line
    assert after.document("d1") is None
    _assert_consistent(after)
    assert not indexer.index_paths("b", [docs]).changed  # and now it is up to date


def test_generation_removed_while_a_reader_loads_it(
    tmp_path: Path, folder: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow reader loading generation N while two writes switch to N+2 (and remove N) still answers."""
    import qa.store.verify

    settings = make_settings(tmp_path / "index")
    reader = QAService(settings, embedder)
    writer = QAService(settings, embedder)  # e.g. another process
    writer.index([folder], "c")
    first = current_generation(settings.collection_dir("c"))
    checksum = qa.store.verify.sha256_file
    interrupted: list[Path] = []

    def two_writes_meanwhile(path: Path) -> str:
        if not interrupted:  # the reader is verifying N's files: two writers get in first
            interrupted.append(path)
            writer.add_text(
                "c", "n1", "Kites", "Box kites fly steadily in strong coastal winds.", None
            )
            writer.add_text(
                "c", "n2", "Gliders", "Gliders soar on rising thermals above the ridge.", None
            )
        return checksum(path)

    monkeypatch.setattr(qa.store.verify, "sha256_file", two_writes_meanwhile)
    reply = reader.search("What do gliders soar on?", "c", 3)
    assert interrupted and first in str(interrupted[0])
    # N was removed under the reader
    assert not (settings.collection_dir("c") / str(first)).exists()
    assert reply.generation == current_generation(settings.collection_dir("c")) != first
    assert "thermals" in reply.passages[0].text
