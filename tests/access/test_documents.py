"""Access lists on documents: where they come from, how they are stored, how old segments
read, and that changing only groups embeds nothing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from qa.encoding import Embedder
from qa.service import QAService
from qa.store import Collection
from qa.store.sql import document_row
from tests.access.conftest import write_corpus
from tests.conftest import make_settings


def test_groups_come_from_folder_front_matter_and_jsonl(access_service: QAService) -> None:
    team = access_service.collection("team")
    assert team.document("hr/salaries.md").groups == ["hr"]  # type: ignore[union-attr]
    eng = team.document("eng.md")
    assert eng is not None and eng.groups == ["eng"]
    assert eng.tags == ["infra", "deploy"] and eng.date == "2024-05-01"
    assert team.document("public.md").groups == ["public"]  # type: ignore[union-attr]
    kites = team.document("kites")
    assert kites is not None and (kites.groups, kites.tags) == (["eng"], ["hobby"])
    assert len(team.document("public.md").date) == 10  # type: ignore[union-attr]  # file time


def test_segment_without_access_columns_reads_public(tmp_path: Path) -> None:
    """A documents table written before access lists: every document is public."""
    connection = sqlite3.connect(tmp_path / "old.sqlite")
    connection.row_factory = sqlite3.Row
    connection.execute(
        "CREATE TABLE documents (id TEXT, title TEXT, source TEXT, format TEXT, text TEXT, "
        "body_start INTEGER, pages TEXT, content_hash TEXT)"
    )
    connection.execute("INSERT INTO documents VALUES ('a', 'A', 's', 'text', 'x', 0, '[]', 'h')")
    row = document_row(connection.execute("SELECT * FROM documents").fetchone(), "s")
    assert (row.groups, row.tags, row.date) == (["public"], [], "")


def test_old_collection_loads_all_public(tmp_path: Path, embedder: Embedder) -> None:
    """A collection whose segment has the old table: every row visible to any reader."""
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "Ferries\n\nFerries cross the lake every hour, from dawn until the evening bell.\n"
    (docs / "a.txt").write_text(text, encoding="utf-8")
    service = QAService(make_settings(tmp_path / "index"), embedder)
    service.index([docs], "old")
    segment = next((tmp_path / "index" / "old" / "segments").iterdir()) / "store.sqlite"
    connection = sqlite3.connect(segment)
    for column in ("groups", "tags", "date"):
        connection.execute(f"ALTER TABLE documents DROP COLUMN {column}")
    connection.commit()
    connection.close()
    # the checksums are of the new file: loaded unverified, as the table is all that changed
    loaded = Collection.load(tmp_path / "index" / "old", verify=False)
    loaded_rows = loaded.visible(frozenset({"nobody"}))
    assert loaded_rows.all() and loaded.document("a.txt").groups == ["public"]  # type: ignore[union-attr]


def test_changing_only_groups_embeds_nothing(tmp_path: Path, embedder: Embedder) -> None:
    docs = write_corpus(tmp_path)
    service = QAService(make_settings(tmp_path / "index"), embedder)
    service.index([docs], "team")
    (docs / "hr" / ".qa-access").write_text("hr, finance\n", encoding="utf-8")
    shutil.copy(docs / "public.md", docs / "public.md.bak")  # an unsupported file: ignored
    report = service.index([docs], "team")
    assert report.embedded == 0 and report.relocated == 1, report.summary()
    hr = service.collection("team").document("hr/salaries.md")
    assert hr is not None and hr.groups == ["hr", "finance"]


def test_nearest_access_file_wins_and_documents_override_it(tmp_path: Path) -> None:
    from qa.ingest import discover

    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    (root / ".qa-access").write_text("staff\n", encoding="utf-8")
    (root / "a" / ".qa-access").write_text("hr, finance  # two groups\n", encoding="utf-8")
    (root / "a" / "b" / "deep.txt").write_text("Deep\n\nUnder a and b.\n", encoding="utf-8")
    (root / "c" / "near.txt").write_text("Near\n\nUnder c only.\n", encoding="utf-8")
    own = "---\ngroups: eng\n---\n# Own\n\nIts own groups.\n"
    (root / "a" / "own.md").write_text(own, encoding="utf-8")
    (tmp_path / "outside").mkdir()
    (tmp_path / ".qa-access").write_text("everyone-outside\n", encoding="utf-8")  # above the root
    found = {d.id: d.groups for d in discover([root]) if not isinstance(d, Exception)}
    assert found == {
        "a/b/deep.txt": ["hr", "finance"],
        "c/near.txt": ["staff"],
        "a/own.md": ["eng"],
    }
    single = [d for d in discover([root / "c" / "near.txt"]) if not isinstance(d, Exception)]
    assert single[0].groups is None  # a file given alone: only its own folder (none there)


def test_write_api_groups_change_embeds_nothing(tmp_path: Path, embedder: Embedder) -> None:
    service = QAService(make_settings(tmp_path / "index"), embedder)
    text = "Ferries cross the lake every hour, from dawn until the evening bell."
    service.add_text("w", "ferry", "Ferries", text, None, {"groups": ["ops"], "tags": ["boats"]})
    report = service.add_text("w", "ferry", "Ferries", text, None, {"groups": ["ops", "hr"]})
    assert report.embedded == 0, report.summary()
    row = service.collection("w").document("ferry")
    assert row is not None and (row.groups, row.tags) == (["ops", "hr"], [])


def test_front_matter_groups_change_embeds_nothing(tmp_path: Path, embedder: Embedder) -> None:
    """The front matter is part of the text (so the document is split again) but not of any
    passage: every passage's vector is reused."""
    docs = write_corpus(tmp_path)
    service = QAService(make_settings(tmp_path / "index"), embedder)
    service.index([docs], "team")
    page = docs / "eng.md"
    page.write_text(page.read_text(encoding="utf-8").replace("[eng]", "[eng, ops]"), "utf-8")
    report = service.index([docs], "team")
    assert report.embedded == 0 and report.updated == 1, report.summary()
    assert service.collection("team").document("eng.md").groups == ["eng", "ops"]  # type: ignore[union-attr]
