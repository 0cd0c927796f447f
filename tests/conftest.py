"""Session fixtures: the real model loaded once, the seed collection built once, a live server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.config import Settings
from qa.encoding import Embedder
from qa.service import QAService
from tests.helpers import CORPUS, serve_in_thread

# passages through torch in every test and `qa` subprocess (the int8 export's vectors depend
# on the CPU's kernels, and making it costs each fresh index folder ~20 s); the ONNX passage
# path and `auto` have their own tests
os.environ.setdefault("QA_PASSAGE_BACKEND", "torch")


def make_settings(index_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: its own index folder, no rate limit unless asked for."""
    values: dict[str, object] = {
        "index_dir": index_dir,
        "corpus_dir": CORPUS,
        "rate_limit_per_minute": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole test session.

    Questions go through the float32 ONNX export (so figures don't depend on the CPU's int8
    kernels; ``auto`` is tested on its own); passages through torch.
    """
    model = Embedder(query_backend="onnx", cache_dir=tmp_path_factory.mktemp("models"))
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """An index folder holding the default collection built from corpus/."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    QAService(make_settings(index_dir), embedder).ensure_default(progress=False)
    return index_dir


@pytest.fixture(scope="session")
def seed_settings(seed_index_dir: Path) -> Settings:
    return make_settings(seed_index_dir)


@pytest.fixture(scope="session")
def seed_service(seed_settings: Settings, embedder: Embedder) -> QAService:
    return QAService(seed_settings, embedder)


@pytest.fixture(scope="session")
def live_server(seed_settings: Settings, seed_service: QAService) -> Iterator[str]:
    """A real uvicorn server over the seed collection; yields its base URL."""
    from qa.http.app import create_app

    with serve_in_thread(create_app(seed_settings, seed_service)) as base:
        yield base


@pytest.fixture
def settings_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build settings with a fresh index folder for one test."""

    def build(**overrides: object) -> Settings:
        return make_settings(tmp_path / "index", **overrides)

    return build


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """A small, randomly initialised 32-d sentence-transformers model folder built locally.

    It shares MiniLM's tokenizer, so it stands in for "another model" (other weights, other
    dimension) without any download.
    """
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-model")
    tokenizer = BertTokenizerFast.from_pretrained(str(embedder.path))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    bert_dir = folder / "bert"
    BertModel(config).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    word = models.Transformer(str(bert_dir), max_seq_length=128)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    model_dir = folder / "model"
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(model_dir))
    return model_dir


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """A small, randomly initialised cross-encoder folder built locally (no download)."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = BertTokenizerFast.from_pretrained(str(embedder.path))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
