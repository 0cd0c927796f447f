"""What a collection stores per sentence: the late-chunked vector and, by default, the vector
embedded on its own; older collections and ``QA_OWN_SENTENCE_VECTORS=false`` answer too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qa.encoding import Embedder
from qa.service import QAService
from qa.store import Collection, Indexer
from qa.store.pipeline import VECTORS_VERSION
from tests.conftest import make_settings

FILES = {
    "keeper.txt": "Lighthouse keeping\n\n"
    "The Quillbrook lighthouse keeper polished the brass lens every evening. "
    "He fed seventeen cats at dawn.\n\n"
    "Fog signals were sounded with a compressed-air diaphone during storms.\n",
    "glacier.md": "# Glacier retreat\n\n"
    "The Morvik glacier has retreated two kilometres since 1890. "
    "Meltwater lakes form at its snout each summer.\n",
}
QUESTION = "How many cats does the lighthouse keeper feed?"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _widths(directory: Path) -> set[int]:
    collection = Collection.load(directory)
    try:
        return {int(s.sentence_vectors.shape[1]) for s in collection.segments}
    finally:
        collection.close()


def _answer(settings_dir: Path, embedder: Embedder, **overrides: object) -> str:
    service = QAService(make_settings(settings_dir, **overrides), embedder)
    reply = service.search(QUESTION, "c", 3, with_answer=True)
    assert reply.answer is not None
    return reply.answer.text


def test_sentences_store_their_own_vectors_and_older_collections_are_embedded_again(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path / "index")
    folder = _folder(tmp_path)
    first = Indexer(settings, embedder).index_paths("c", [folder])
    directory = settings.collection_dir("c")
    assert _widths(directory) == {2 * 384}
    assert "seventeen cats" in _answer(tmp_path / "index", embedder)

    # a collection written before vectors version 3: its manifest says nothing of them
    manifest = next(directory.glob("gen-*/manifest.json"))
    data = json.loads(manifest.read_text())
    assert data["passage_settings"]["vectors_version"] == VECTORS_VERSION
    for key in ("vectors_version", "own_sentence_vectors"):
        del data["passage_settings"][key]
    manifest.write_text(json.dumps(data))
    again = Indexer(settings, embedder).index_paths("c", [folder])
    # every document split again; a real old collection's vectors carry an older embed hash
    # (VECTORS_VERSION) and are embedded again, these few are current and reused
    assert again.full_rebuild and again.passages == first.passages
    assert again.embedded + again.reused_vectors == first.passages
    assert _widths(directory) == {2 * 384}


def test_without_own_vectors_rows_are_narrow_and_answers_still_come(
    tmp_path: Path, embedder: Embedder
) -> None:
    folder = _folder(tmp_path)
    late = make_settings(tmp_path / "index", own_sentence_vectors=False)
    Indexer(late, embedder).index_paths("c", [folder])
    directory = late.collection_dir("c")
    assert _widths(directory) == {384}  # half the sentence storage
    answer = _answer(tmp_path / "index", embedder, own_sentence_vectors=False)
    assert "seventeen cats" in answer

    # switching the setting embeds everything again, now with the own vectors
    switched = Indexer(make_settings(tmp_path / "index"), embedder).index_paths("c", [folder])
    assert switched.full_rebuild and switched.reused_vectors == 0
    assert _widths(directory) == {2 * 384}
    collection = Collection.load(directory)
    try:
        for segment in collection.segments:
            rows = np.asarray(segment.sentence_vectors, dtype=np.float32)
            assert len(rows) and np.all(np.abs(rows[:, 384:]).sum(axis=1) > 0)
    finally:
        collection.close()
