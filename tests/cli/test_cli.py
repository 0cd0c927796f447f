"""The `qa` command in real subprocesses: index, ask, errors and exit statuses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import FIXTURES_DIR, qa

FIXTURES = FIXTURES_DIR / "docs"


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    index_dir = tmp_path_factory.mktemp("cli-index")
    return index_dir, qa("index", str(FIXTURES), "--collection", "fx", index_dir=index_dir)


def test_index_reports_skips_and_summary(
    indexed: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    _, result = indexed
    assert result.returncode == 0, result.stderr
    err = result.stderr
    for name, reason in [
        ("blob.txt", "binary file"),
        ("latin1.txt", "not valid UTF-8"),
        ("empty.txt", "empty file"),
        ("picture.png", "unsupported file type"),
    ]:
        assert any(name in line and reason in line for line in err.splitlines()), (name, err)
    assert "collection 'fx' now at gen-000001: 7 documents" in result.stdout
    assert "4 skipped" in result.stdout


def test_ask_json_shape(indexed: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    index_dir, _ = indexed
    result = qa(
        "ask",
        "Which volcano has erupted for two thousand years?",
        "-c",
        "fx",
        "--top-k",
        "3",
        "--json",
        index_dir=index_dir,
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["query"] == "Which volcano has erupted for two thousand years?"
    assert len(reply["passages"]) == 3
    first = reply["passages"][0]
    assert set(first) >= {"rank", "passage_id", "score", "text", "citation"}
    assert set(first["citation"]) >= {
        "document_id",
        "title",
        "source",
        "paragraph",
        "char_start",
        "char_end",
    }
    assert first["citation"]["document_id"] == "sub/page.html"
    assert first["citation"]["title"] == "Volcano Facts"
    assert "Stromboli" in first["text"]


def test_ask_plain_output(indexed: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    index_dir, _ = indexed
    result = qa("ask", "When was the lamp replaced?", "-c", "fx", "-k", "2", index_dir=index_dir)
    assert result.returncode == 0, result.stderr
    assert "[1] score" in result.stdout
    assert "Lighthouse Operations Report (paragraph" in result.stdout and "page 2" in result.stdout


def test_ask_says_when_the_documents_never_mention_a_name(
    indexed: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    index_dir, _ = indexed
    result = qa("ask", "What does the --lamp-mode option do?", "-c", "fx", index_dir=index_dir)
    assert result.returncode == 0, result.stderr
    assert "Answer:   The documents never mention --lamp-mode." in result.stdout
    assert "[1] score" in result.stdout  # the nearest passages follow


def test_reindex_unchanged_is_fast_path(
    indexed: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    index_dir, _ = indexed
    result = qa("index", str(FIXTURES), "--collection", "fx", index_dir=index_dir)
    assert result.returncode == 0
    assert "collection 'fx' unchanged" in result.stdout and "0 passages embedded" in result.stdout


def test_empty_question_exits_2(tmp_path: Path) -> None:
    result = qa("ask", "   ", index_dir=tmp_path)
    assert result.returncode == 2
    assert "error: the question is empty" in result.stderr


def test_unknown_collection_exits_2(indexed: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    index_dir, _ = indexed
    result = qa("ask", "anything", "--collection", "nope", index_dir=index_dir)
    assert result.returncode == 2
    assert "unknown collection 'nope'; available collections: 'fx'" in result.stderr


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert qa("index", str(tmp_path / "missing"), index_dir=tmp_path).returncode == 2
    assert qa("ask", "q", "--top-k", "0", index_dir=tmp_path).returncode == 2
    result = qa("ask", "q", "--collection", "../etc", index_dir=tmp_path)
    assert result.returncode == 2 and "invalid collection name" in result.stderr


def test_nothing_indexable_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.txt").write_text("")
    (folder / "x.bin").write_bytes(b"\x00\x01")
    result = qa("index", str(folder), "--collection", "bad", index_dir=tmp_path / "index")
    assert result.returncode == 1
    assert "nothing to index" in result.stderr
    assert not (tmp_path / "index" / "bad" / "CURRENT").exists()


def test_help_lists_commands(tmp_path: Path) -> None:
    result = qa("--help", index_dir=tmp_path)
    assert result.returncode == 0
    for command in ("index", "ask", "serve", "collections"):
        assert command in result.stdout
