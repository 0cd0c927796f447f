"""A tiny collection with an HR document, an engineering document and a public one (access
lists from a folder's ``.qa-access``, Markdown front matter and a JSONL field), built once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.config import Settings
from qa.encoding import Embedder
from qa.service import QAService
from tests.conftest import make_settings

HR_TEXT = "The salary review for staff happens every March. Salary bands are set by the board."
ENG_TEXT = "The salary of a build server is its uptime. Deploys use blue green releases nightly."
PUBLIC_TEXT = "The office opens at nine. Questions about salary go to the people team by email."
KITES_TEXT = "Kites fly best in a steady wind. Salary talk is banned at the kite club."


def write_corpus(root: Path) -> Path:
    """The documents: hr/ (by its .qa-access), eng.md (front matter), public.md, kb.jsonl."""
    docs = root / "docs"
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / ".qa-access").write_text("# people only\nhr\n", encoding="utf-8")
    (docs / "hr" / "salaries.md").write_text(f"# Salary review\n\n{HR_TEXT}\n", encoding="utf-8")
    front = "---\ntitle: Build servers\ngroups: [eng]\ntags:\n  - infra\n  - deploy\n"
    front += "date: 2024-05-01\n---\n"
    (docs / "eng.md").write_text(f"{front}\n{ENG_TEXT}\n", encoding="utf-8")
    (docs / "public.md").write_text(f"# Office hours\n\n{PUBLIC_TEXT}\n", encoding="utf-8")
    record = {"_id": "kites", "title": "Kite club", "text": KITES_TEXT, "groups": ["eng"]}
    record |= {"tags": ["hobby"], "date": "2023-01-15"}
    (docs / "kb.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return docs


@pytest.fixture(scope="package")
def access_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    root = tmp_path_factory.mktemp("access")
    docs = write_corpus(root)
    settings = make_settings(root / "index")
    QAService(settings, embedder).index([docs], "team")
    QAService(settings, embedder).index([docs / "public.md"], "other")
    return root / "index"


@pytest.fixture(scope="package")
def access_service(access_index: Path, embedder: Embedder) -> QAService:
    return QAService(make_settings(access_index, collection="team"), embedder)


def settings_of(index: Path, **overrides: object) -> Settings:
    return make_settings(index, collection="team", **overrides)
