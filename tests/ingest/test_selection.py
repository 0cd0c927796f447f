"""Choosing what goes in: --include/--exclude patterns and .qaignore files (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.ingest.discovery import discover
from qa.ingest.documents import Document, Skip
from qa.ingest.selection import Selection

TEXT = "A paragraph long enough to be a document of its own, about {}.\n"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _split(items: list[Document | Skip]) -> tuple[set[str], dict[str, str]]:
    ids = {i.id for i in items if isinstance(i, Document)}
    skips = {i.source: i.reason for i in items if isinstance(i, Skip)}
    return ids, skips


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    names = [
        "a.md",
        "b.txt",
        "drafts/c.md",
        "docs/d.md",
        "docs/e.txt",
        "docs/old/f.md",
        "g.log.txt",
    ]
    return _tree(tmp_path / "share", {n: TEXT.format(n) for n in names})


def test_include_and_exclude_patterns_choose_files_and_say_why(folder: Path) -> None:
    chosen = Selection.of(include=["*.md"], exclude=["drafts/", "docs/old/"])
    ids, skips = _split(list(discover([folder], selection=chosen)))
    assert ids == {"a.md", "docs/d.md"}
    assert skips["share/drafts/"] == "excluded by --exclude 'drafts/'"  # a folder once
    assert skips["share/docs/old/"] == "excluded by --exclude 'docs/old/'"
    assert skips["share/b.txt"].startswith("not matched by any --include pattern")
    assert "share/drafts/c.md" not in skips  # nothing under an excluded folder is read


def test_qaignore_in_folders_and_subfolders(folder: Path) -> None:
    (folder / ".qaignore").write_text(
        "# comments are fine\n*.txt\n!b.txt\n[z-a]\n", encoding="utf-8"
    )
    (folder / "docs" / ".qaignore").write_text("/d.md\nold\n", encoding="utf-8")
    ids, skips = _split(list(discover([folder])))
    # the top file ignores *.txt but takes b.txt back; docs/.qaignore is relative to docs/;
    # the malformed line '[z-a]' is left out alone
    assert ids == {"a.md", "b.txt", "drafts/c.md"}
    assert skips["share/docs/e.txt"] == "ignored by share/.qaignore ('*.txt')"
    assert skips["share/docs/d.md"] == "ignored by share/docs/.qaignore ('/d.md')"
    assert skips["share/docs/old/"] == "ignored by share/docs/.qaignore ('old')"
    assert "share/.qaignore" not in skips  # hidden files are never documents


def test_a_deeper_qaignore_takes_back_what_a_higher_one_ignored(folder: Path) -> None:
    (folder / ".qaignore").write_text("*.md\n", encoding="utf-8")
    (folder / "docs" / ".qaignore").write_text("!d.md\n", encoding="utf-8")
    ids, _ = _split(list(discover([folder])))
    assert ids == {"b.txt", "docs/d.md", "docs/e.txt", "g.log.txt"}


def test_a_bad_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid pattern"):
        Selection.of(exclude=["[z-a]"])
    with pytest.raises(ValueError, match="invalid pattern"):
        Selection.of(include=[" "])
