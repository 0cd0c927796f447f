"""The embedder: offline model resolution, identity, and ONNX query vectors equal to torch's."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from qa.encoding import Embedder, resolve_model_path
from qa.encoding.onnx import INT8_AGREEMENT
from qa.errors import ModelError

TEXTS = [
    "How many cities does the G60 corridor connect?",
    "Haier",
    (
        "The district offers talents subsidies ranging from around 670 yuan to 4,500 yuan per month "
        "to ensure that the rental expense is around 10 percent of their salary."
    ),
]


def test_identity_of_the_bundled_model(embedder: Embedder) -> None:
    identity = embedder.identity
    assert identity.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert identity.dimension == 384
    assert identity.max_seq_length == 256
    assert len(identity.fingerprint) == 64
    assert embedder.max_tokens == 254


def test_fingerprint_is_unchanged_by_the_reshape(embedder: Embedder) -> None:
    """Indexes record the fingerprint: it must stay the SHA-256 of each file's relative path
    then its bytes, over the sorted JSON and weight files, or every index would be rebuilt."""
    weights = {"model.safetensors", "pytorch_model.bin", "model.onnx"}
    files = sorted(
        p
        for p in embedder.path.rglob("*")
        if p.is_file() and (p.suffix == ".json" or p.name in weights)
    )
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(embedder.path).as_posix().encode())
        digest.update(file.read_bytes())
    assert embedder.identity.fingerprint == digest.hexdigest()


def test_onnx_query_vectors_equal_torch(embedder: Embedder) -> None:
    assert embedder.active_query_backend == "onnx"
    fast = embedder.encode_queries(TEXTS)  # one padded batch of very different lengths
    exact = embedder.encode(TEXTS)
    assert fast.shape == exact.shape == (3, 384)
    assert np.all(np.sum(fast * exact, axis=1) > 0.9999)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1, atol=1e-5)


def test_auto_takes_int8_only_where_it_agrees_with_float32(
    embedder: Embedder, tmp_path: Path
) -> None:
    """``auto`` measures the int8 export against float32 once per machine, records it beside
    the export, and falls back to float32 when the record says they disagree."""
    cache = tmp_path / "models"
    shutil.copytree(embedder.cache_dir, cache)  # the float32 export, made once per session
    auto = Embedder(cache_dir=cache)
    backend = auto.active_query_backend
    record = next(cache.rglob("int8-check.json"))
    measured = json.loads(record.read_text())
    assert backend == ("onnx-int8" if measured["agreement"] >= INT8_AGREEMENT else "onnx")
    fast, exact = auto.encode_queries(TEXTS), embedder.encode(TEXTS)
    assert np.all(np.sum(fast * exact, axis=1) > 0.97)

    record.write_text(json.dumps({**measured, "agreement": 0.5}))  # as on a CPU that disagrees
    assert Embedder(cache_dir=cache).active_query_backend == "onnx"
    record.write_text(json.dumps({**measured, "machine": "another CPU", "agreement": 0.5}))
    assert Embedder(cache_dir=cache).active_query_backend == backend  # measured again
    assert json.loads(record.read_text())["machine"] == measured["machine"]


def test_concurrent_queries_are_batched_correctly(embedder: Embedder) -> None:
    alone = {text: embedder.encode_queries([text])[0] for text in TEXTS}
    results: dict[int, np.ndarray] = {}

    def worker(i: int) -> None:
        results[i] = embedder.encode_queries([TEXTS[i % 3]])[0]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, vector in results.items():
        assert float(vector @ alone[TEXTS[i % 3]]) > 0.9999


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist.*--model"):
        resolve_model_path(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a sentence-transformers model folder"):
        resolve_model_path(str(tmp_path / "empty"))


def test_any_model_folder_works(tiny_model_dir: Path, tmp_path: Path) -> None:
    other = Embedder(str(tiny_model_dir), cache_dir=tmp_path)
    assert other.identity.dimension == 32
    vectors = other.encode(TEXTS)
    assert vectors.shape == (3, 32)
    assert np.all(np.sum(other.encode_queries(TEXTS) * vectors, axis=1) > 0.999)


def test_sentence_vectors_equal_question_vectors(embedder: Embedder) -> None:
    sentences = embedder.encode_sentences(TEXTS)
    assert np.array_equal(sentences, embedder.encode_queries(TEXTS))
    assert np.array_equal(embedder.encode_sentences(TEXTS[::-1]), sentences[::-1])  # cached
    assert embedder.encode_sentences([]).shape == embedder.encode_queries([]).shape == (0, 384)


def test_sentence_vectors_are_late_chunked_in_any_batch(embedder: Embedder) -> None:
    """Each sentence gets the mean of its own token embeddings, whatever the other texts of
    the batch: sentence-transformers pads a batch to its longest text, and those padded
    positions once made every shorter passage's sentences fall back to the passage vector."""
    short = "Haier builds a factory. It opened this year."
    spans = [[(0, 23), (24, len(short))], [(0, len(TEXTS[2]))]]
    vectors, rows = embedder.encode_passages([short, TEXTS[2]], spans)
    _, alone = embedder.encode_passages([short], spans[:1])
    assert rows[0].shape == (2, 768)
    late = rows[0][:, :384]
    assert float(late[0] @ late[1]) < 0.95  # two sentences, two vectors
    assert np.all(np.sum(late * vectors[0], axis=1) < 0.99)  # not the passage's
    assert np.all(np.sum(late * alone[0][:, :384], axis=1) > 0.9999)  # as if batched alone


def test_int8_question_vectors_do_not_depend_on_their_batch(embedder: Embedder) -> None:
    """Concurrent questions are encoded together; the int8 export quantises activations with
    one scale per run, so each question still runs on its own and gets its vector alone."""
    int8 = Embedder(cache_dir=embedder.cache_dir, query_backend="onnx-int8")
    assert int8.active_query_backend == "onnx-int8"
    alone = np.vstack([int8.encode_queries([text]) for text in TEXTS])
    together = int8.encode_queries(TEXTS)  # as the micro-batcher merges concurrent callers
    assert np.array_equal(alone, together)
    assert np.all(np.sum(alone * embedder.encode(TEXTS), axis=1) > 0.97)


def test_sentences_are_also_stored_embedded_on_their_own(embedder: Embedder) -> None:
    """The second half of a sentence's row is the sentence embedded like a question: what
    the answer step compares, with no model run at question time."""
    text = "Haier builds a factory. It opened this year."
    spans = [(0, 23), (24, len(text))]
    _, rows = embedder.encode_passages([text, TEXTS[0]], [spans, [(0, len(TEXTS[0]))]])
    own = embedder.encode_queries([text[a:b] for a, b in spans])
    assert np.all(np.sum(rows[0][:, 384:] * own, axis=1) > 0.9999)
    assert np.all(np.sum(rows[0][:, 384:] * rows[0][:, :384], axis=1) < 0.99)  # not late


@pytest.mark.parametrize(("backend", "least"), [("onnx", 0.9999), ("onnx-int8", 0.97)])
def test_passages_through_onnx_agree_with_torch(
    embedder: Embedder, backend: str, least: float
) -> None:
    """The ONNX passage path gives the torch path's passage and late-chunked sentence vectors
    (float32: the same; int8: close), texts of very different lengths in one batch."""
    spans = [[(0, len(t))] if len(t) < 60 else [(0, 60), (61, len(t))] for t in TEXTS]
    exact, exact_pieces = embedder.encode_passages(TEXTS, spans)
    other = Embedder(cache_dir=embedder.cache_dir, passage_backend=backend, query_backend="onnx")
    vectors, pieces = other.encode_passages(TEXTS, spans)
    assert vectors.shape == exact.shape == (3, 384)
    assert np.all(np.sum(vectors * exact, axis=1) > least)
    for mine, theirs in zip(pieces, exact_pieces):
        assert mine.shape == theirs.shape == (len(mine), 768)
        for half in (slice(0, 384), slice(384, 768)):  # late-chunked, embedded on its own
            assert np.all(np.sum(mine[:, half] * theirs[:, half], axis=1) > least)
    # one text per run: a passage's vectors don't depend on the passages embedded with it
    alone, alone_pieces = other.encode_passages(TEXTS[2:], spans[2:])
    assert np.array_equal(alone[0], vectors[2])
    assert np.array_equal(alone_pieces[0], pieces[2])
    assert np.array_equal(pieces[0][:, 384:], other._passage_onnx.encode([TEXTS[0]]))  # type: ignore[union-attr]


def test_auto_passages_take_int8_only_where_it_agrees(embedder: Embedder, tmp_path: Path) -> None:
    """``QA_PASSAGE_BACKEND=auto`` follows the machine's recorded int8 check, like questions."""
    cache = tmp_path / "models"
    shutil.copytree(embedder.cache_dir, cache)
    auto = Embedder(cache_dir=cache, passage_backend="auto", query_backend="onnx")
    backend = auto.active_passage_backend
    record = next(cache.rglob("int8-check.json"))
    measured = json.loads(record.read_text())
    assert backend == ("onnx-int8" if measured["agreement"] >= INT8_AGREEMENT else "torch")
    record.write_text(json.dumps({**measured, "agreement": 0.5}))  # a CPU that disagrees
    assert Embedder(cache_dir=cache, passage_backend="auto").active_passage_backend == "torch"
    assert Embedder(passage_backend="auto").active_passage_backend == "torch"  # no cache folder


OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")

LOADER_SCRIPT = """
import os
import qa.encoding
assert "HF_HUB_OFFLINE" not in os.environ, "set at import"
embedder = qa.encoding.Embedder()
embedder.count_tokens(["the tokenizer is a loader too"])
assert os.environ["HF_HUB_OFFLINE"] == os.environ["TRANSFORMERS_OFFLINE"] == "1"
assert os.environ["TOKENIZERS_PARALLELISM"] == "true", "the user's own value must win"
embedder.model
import huggingface_hub.constants
assert huggingface_hub.constants.HF_HUB_OFFLINE, "the hub was imported online"
"""


def test_offline_switches_are_set_by_the_loaders_not_at_import() -> None:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_SWITCHES}
    env["TOKENIZERS_PARALLELISM"] = "true"
    result = subprocess.run(
        [sys.executable, "-c", LOADER_SCRIPT],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
