"""The on-disk collection: round trip, atomic switch, refusal of mismatched or corrupt indexes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.encoding import Embedder
from qa.errors import Busy, StoreError
from qa.service import QAService
from qa.store import (
    FORMAT_VERSION,
    Collection,
    Indexer,
    current_generation,
    read_manifest,
    writer_lock,
)
from qa.store.manifest import write_manifest
from tests.conftest import make_settings
from tests.helpers import CORPUS, SEED_FILE

KITES = "Box kites fly steadily in strong coastal winds, and delta kites launch from a beach."


def test_round_trip_matches_the_documents(seed_settings: Settings, embedder: Embedder) -> None:
    collection = Collection.load(
        seed_settings.collection_dir(), expect_model=embedder.identity.to_dict()
    )
    assert collection.counts == {"documents": 1, "passages": 19}
    manifest = collection.manifest
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.metric == "inner_product"
    assert manifest.model.dimension == 384
    assert manifest.model.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert set(manifest.files) == {"deletions.json"}
    assert [s.dense for s in manifest.segments] == ["flat"]
    segment = collection.segments[0]
    assert set(segment.info.files) >= {
        "store.sqlite",
        "dense.faiss",
        "ids.npy",
        "lexical/tf.npy",
        "sentences.npy",
        "sentence_spans.npy",
    }
    document = collection.document(SEED_FILE.name)
    assert document is not None and document.text == SEED_FILE.read_text(encoding="utf-8")
    passages = collection.passages_of([SEED_FILE.name])
    assert [p.ordinal for p in passages] == list(range(19))
    for row in passages:
        assert document.text[row.char_start : row.char_end] == row.text
    # the FAISS ids are the passage row ids, and the stored vectors are the model's
    ids, vectors = collection.all_vectors()
    assert sorted(ids.tolist()) == [p.id for p in passages]
    fresh = embedder.encode(
        ["Songjiang vows to boost global cooperation on sci-tech innovation\n" + passages[4].text]
    )
    assert float(fresh[0] @ collection.vectors([passages[4].id])[0]) > 0.999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)


def _copy_seed(tmp_path: Path, seed_settings: Settings) -> Settings:
    index_dir = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, index_dir)
    return seed_settings.model_copy(update={"index_dir": index_dir})


def test_interrupted_build_leaves_old_collection(
    tmp_path: Path, seed_settings: Settings, embedder: Embedder
) -> None:
    settings = _copy_seed(tmp_path, seed_settings)
    before = current_generation(settings.collection_dir())
    extra = tmp_path / "docs"
    extra.mkdir()
    (extra / "new.txt").write_text(
        "Rivers\n\nThe Huangpu River flows through the centre of Shanghai.\n"
    )

    for stage in ("split", "embed", "sqlite", "faiss", "bm25", "manifest", "rename", "switch"):

        def explode(seen: str, stage: str = stage) -> None:
            if seen == stage:
                raise KeyboardInterrupt  # as if Ctrl-C were pressed during this step

        with pytest.raises(KeyboardInterrupt):
            Indexer(settings, embedder).index_paths("default", [CORPUS, extra], hook=explode)
        assert current_generation(settings.collection_dir()) == before, stage
        collection = Collection.load(settings.collection_dir())
        assert collection.counts == {"documents": 1, "passages": 19}
        hits = QAService(settings, embedder).search(
            "How many cities does the G60 corridor connect?", top_k=1
        )
        assert "connects nine cities" in hits.passages[0].text

    # the next build cleans up what the interrupted ones left and succeeds
    report = Indexer(settings, embedder).index_paths("default", [CORPUS, extra])
    assert report.added == 1 and report.unchanged == 1
    leftovers = [
        p.name for p in settings.collection_dir().iterdir() if p.name.startswith(".building")
    ]
    assert leftovers == []


def test_other_model_is_refused(
    tmp_path: Path, seed_settings: Settings, tiny_model_dir: Path
) -> None:
    other = Embedder(str(tiny_model_dir))
    with pytest.raises(StoreError) as error:
        Collection.load(seed_settings.collection_dir(), expect_model=other.identity.to_dict())
    message = str(error.value)
    assert "all-MiniLM-L6-v2" in message and "32-d" in message and "384-d" in message
    assert "qa index --full" in message


def test_corrupt_file_is_refused(tmp_path: Path, seed_settings: Settings) -> None:
    settings = _copy_seed(tmp_path, seed_settings)
    directory = settings.collection_dir()
    faiss_file = next((directory / "segments").glob("seg-*/dense.faiss"))
    data = bytearray(faiss_file.read_bytes())
    data[-10] ^= 0xFF
    faiss_file.write_bytes(bytes(data))
    with pytest.raises(
        StoreError, match=r"corrupt: segments/seg-\d+/dense.faiss .*checksum.*qa index --full"
    ):
        Collection.load(directory)


def test_unreadable_manifest_is_refused(tmp_path: Path, seed_settings: Settings) -> None:
    settings = _copy_seed(tmp_path, seed_settings)
    directory = settings.collection_dir()
    (directory / str(current_generation(directory)) / "manifest.json").write_text("{broken")
    with pytest.raises(StoreError, match="damaged"):
        Collection.load(directory)


def test_newer_format_is_refused(tmp_path: Path, seed_settings: Settings) -> None:
    settings = _copy_seed(tmp_path, seed_settings)
    directory = settings.collection_dir()
    manifest_file = directory / str(current_generation(directory)) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["format_version"] = 99
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="format 99"):
        Collection.load(directory)


def test_second_writer_is_told_busy(tmp_path: Path) -> None:
    with (
        writer_lock(tmp_path / "c"),
        pytest.raises(Busy, match="another writer"),
        writer_lock(tmp_path / "c"),
    ):
        pass


def test_no_pickle_in_the_index(seed_settings: Settings) -> None:
    directory = seed_settings.collection_dir()
    for file in directory.rglob("*"):
        if file.suffix == ".npy":
            np.load(file, allow_pickle=False)  # raises if anything needed pickle
        assert file.suffix not in {".pkl", ".pickle"}


def test_manifest_is_written_as_it_was_read(seed_settings: Settings, tmp_path: Path) -> None:
    """The typed manifest keeps the JSON on disk byte for byte (collections built before it load)."""
    directory = seed_settings.collection_dir()
    on_disk = directory / str(current_generation(directory)) / "manifest.json"
    write_manifest(tmp_path, read_manifest(directory))
    assert (tmp_path / "manifest.json").read_text() == on_disk.read_text()


def test_manifest_without_source_options_loads_and_stays_so(
    tmp_path: Path, seed_settings: Settings, embedder: Embedder
) -> None:
    """Collections built before ``source_options`` existed load, and an update keeps ``{}``."""
    settings = _copy_seed(tmp_path, seed_settings)
    directory = settings.collection_dir()
    manifest_file = directory / str(current_generation(directory)) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["source_options"]
    manifest_file.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    collection = Collection.load(directory)
    assert collection.manifest.source_options.follow_links is False
    report = QAService(settings, embedder).add_text("default", "kites", "Kites", KITES, None)
    written = json.loads((directory / str(report.generation) / "manifest.json").read_text())
    assert written["source_options"] == {} and written["sources"] == manifest["sources"]
    assert written["next_passage_id"] == manifest["next_passage_id"] + 1
    assert set(written) == set(manifest) | {"source_options"}


def test_invalid_manifest_is_named(tmp_path: Path, seed_settings: Settings) -> None:
    settings = _copy_seed(tmp_path, seed_settings)
    directory = settings.collection_dir()
    manifest_file = directory / str(current_generation(directory)) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["counts"] = {"documents": "many"}
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=r"damaged .*manifest.json: counts\..*qa index --full"):
        read_manifest(directory)


def _page_text(topic: str) -> str:
    return (
        f"This page explains {topic} in full sentences that a reader came here for, with "
        f"details about how {topic} are built, used and maintained over the years. Engineers "
        f"who look after {topic} keep logbooks of every inspection, and the oldest logbooks "
        f"in the archive describe {topic} that were repaired by hand with simple tools. Today "
        f"most {topic} are checked twice a year by crews who travel between regional depots."
    )


def test_a_site_indexes_each_page_once_without_its_footer(
    tmp_path: Path, embedder: Embedder
) -> None:
    site = tmp_path / "site"
    (site / "_sources").mkdir(parents=True)
    footer = "The Example Foundation is a non-profit corporation. Please donate."
    topics = ["kites", "boats", "trains", "bridges", "tunnels", "ferries"]
    for topic in topics:
        body = f"<p>{_page_text(topic)}</p>"
        (site / f"{topic}.html").write_text(
            f"<html><head><title>{topic.title()} \u2014 Example 1.0 documentation</title></head>"
            f"<body>{body}<footer><p>{footer}</p></footer></body></html>"
        )
    (site / "_sources" / "kites.rst.txt").write_text(f"Kites\n=====\n\n{_page_text('kites')}\n")
    service = QAService(make_settings(tmp_path / "index"), embedder)
    report = service.index([site], "site")
    assert [s.reason.split(" (")[0] for s in report.skipped] == ["duplicate of site/kites.html"]
    collection = service.collection("site")
    assert collection.counts["documents"] == len(topics)
    passages = collection.passages_of(f"{topic}.html" for topic in topics)
    assert passages and not any("non-profit" in p.text for p in passages)
    assert collection.document("kites.html").title == "Kites"
