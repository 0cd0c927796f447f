"""``qa keys create|list|revoke`` and ``qa ask --filter`` in real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from qa.access.keys import KEYS_FILE, hash_token
from tests.helpers import qa


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    index = tmp_path / "index"
    made = qa(
        "keys", "create", "--name", "docs-widget", "--collections", "team,docs",
        "--groups", "eng,public", "--scope", "read",
        "--origins", "https://docs.example.com/", "--rate", "60/min",
        index_dir=index,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("qa_") and len(token) > 40 and "not shown again" in made.stderr
    stored = json.loads((index / KEYS_FILE).read_text(encoding="utf-8"))["keys"][0]
    assert stored["hash"] == hash_token(token) and token not in json.dumps(stored)
    assert stored["origins"] == ["https://docs.example.com"]
    listed = qa("keys", "list", index_dir=index)
    assert "docs-widget  read  groups=eng,public  collections=team,docs" in listed.stdout
    assert token not in listed.stdout and stored["hash"] not in listed.stdout
    again = qa("keys", "create", "--name", "docs-widget", index_dir=index)
    assert again.returncode != 0 and again.stderr.startswith("error:")
    bad = qa("keys", "create", "--name", "x", "--scope", "root", index_dir=index)
    assert bad.returncode != 0 and "scope" in bad.stderr
    assert qa("keys", "revoke", "docs-widget", index_dir=index).returncode == 0
    assert qa("keys", "list", index_dir=index).stdout.strip() == ""
    missing = qa("keys", "revoke", "docs-widget", index_dir=index)
    assert missing.returncode != 0 and missing.stderr.startswith("error:")


def test_ask_with_filters(access_index: Path) -> None:
    asked = qa(
        "ask", "When is the salary review?", "--collection", "team", "--json",
        "--filter", "format=jsonl", "--filter", "document_id=kites", "--filter", "document_id=x",
        index_dir=access_index,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    reply = json.loads(asked.stdout)
    assert {p["citation"]["document_id"] for p in reply["passages"]} == {"kites"}
    nothing = qa(
        "ask", "salary", "--collection", "team", "--filter", "tags=none",
        index_dir=access_index,
    )  # fmt: skip
    assert nothing.returncode == 0 and "No document matches the filters" in nothing.stdout
    unknown = qa("ask", "salary", "-c", "team", "--filter", "colour=red", index_dir=access_index)
    assert unknown.returncode != 0 and "colour" in unknown.stderr


def test_collections_with_groups(access_index: Path) -> None:
    listed = qa("collections", "--groups", index_dir=access_index)
    assert listed.returncode == 0, listed.stderr
    assert "groups: eng (2), hr (1), public (1)" in listed.stdout
