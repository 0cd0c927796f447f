"""Session fixtures: the real model loaded once, the seed collection built once, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.config import Settings
from qa.embedder import Embedder
from qa.service import QAService
from tests.helpers import CORPUS, serve_in_thread


def make_settings(index_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: its own index folder, no rate limit unless asked for."""
    values: dict[str, object] = {"index_dir": index_dir, "corpus_dir": CORPUS, "rate_limit_per_minute": 0}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole test session."""
    model = Embedder()
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
    from qa.api import create_app

    with serve_in_thread(create_app(seed_settings, seed_service)) as base:
        yield base


@pytest.fixture
def settings_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build settings with a fresh index folder for one test."""

    def build(**overrides: object) -> Settings:
        return make_settings(tmp_path / "index", **overrides)

    return build
