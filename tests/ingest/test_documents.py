"""Reading files: each supported format, titles, ids, and clear skip reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.ingest.discovery import discover
from qa.ingest.documents import Document, Skip, decode_text
from qa.ingest.readers import html_to_text
from tests.helpers import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "docs"


@pytest.fixture(scope="module")
def found() -> tuple[dict[str, Document], dict[str, str]]:
    documents: dict[str, Document] = {}
    skipped: dict[str, str] = {}
    for item in discover([FIXTURES]):
        if isinstance(item, Skip):
            skipped[Path(item.source.split(":")[0]).name] = item.reason
        else:
            documents[item.id] = item
    return documents, skipped


def test_text_file_title_is_first_line(found: tuple[dict[str, Document], dict[str, str]]) -> None:
    doc = found[0]["tea.txt"]
    assert doc.title == "Tea Notes"
    assert doc.format == "text"
    assert doc.text[doc.body_start :].lstrip().startswith("Green tea")
    assert doc.source.endswith("tea.txt")


def test_markdown_front_matter_title(found: tuple[dict[str, Document], dict[str, str]]) -> None:
    doc = found[0]["guide.md"]
    assert doc.title == "Beekeeping Guide"
    assert "# Beekeeping Guide" not in doc.text[doc.body_start :]


def test_html_title_and_visible_text_only(
    found: tuple[dict[str, Document], dict[str, str]],
) -> None:
    doc = found[0]["sub/page.html"]  # id is the path relative to the indexed folder
    assert doc.title == "Volcano Facts"
    assert "Mauna Loa" in doc.text
    assert "Lighthouse of the Mediterranean" in doc.text
    for hidden in ("this script text", "color: red", "Copyright footer", "About"):
        assert hidden not in doc.text


def test_pdf_metadata_title_and_pages(found: tuple[dict[str, Document], dict[str, str]]) -> None:
    doc = found[0]["report.pdf"]
    assert doc.title == "Lighthouse Operations Report"
    assert len(doc.pages) == 2
    assert doc.page_at(doc.text.index("forty storms")) == 1
    assert doc.page_at(doc.text.index("lamp was replaced")) == 2


def test_beir_jsonl_documents_use_their_ids(
    found: tuple[dict[str, Document], dict[str, str]],
) -> None:
    documents = found[0]
    assert documents["d1"].title == "Penguins"
    assert documents["d2"].text.startswith("Barn owls")
    assert documents["d1"].format == "jsonl"


def test_utf16_with_bom_is_read(found: tuple[dict[str, Document], dict[str, str]]) -> None:
    assert "byte order mark" in found[0]["utf16.txt"].text


def test_skips_say_why(found: tuple[dict[str, Document], dict[str, str]]) -> None:
    skipped = found[1]
    assert "binary" in skipped["blob.txt"]
    assert "not valid UTF-8" in skipped["latin1.txt"] and "offset" in skipped["latin1.txt"]
    assert "empty" in skipped["empty.txt"]
    assert "unsupported file type" in skipped["picture.png"]
    assert set(skipped) == {"blob.txt", "latin1.txt", "empty.txt", "picture.png"}


def test_pdf_without_text_layer_is_skipped(tmp_path: Path) -> None:
    items = list(discover([FIXTURES_DIR / "scanned.pdf"]))
    assert len(items) == 1 and isinstance(items[0], Skip)
    assert "no text layer" in items[0].reason


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        '{"_id": "a", "text": "fine"}\n{not json\n{"text": "no id"}\n', encoding="utf-8"
    )
    items = list(discover([corpus]))
    documents = [i for i in items if isinstance(i, Document)]
    skips = [i for i in items if isinstance(i, Skip)]
    assert [d.id for d in documents] == ["a"]
    assert [s.source for s in skips] == ["corpus.jsonl:2", "corpus.jsonl:3"]  # named for readers
    assert [s.path for s in skips] == [f"{corpus}:2", f"{corpus}:3"]  # and in full for the log
    assert "malformed JSON" in skips[0].reason


def test_missing_path_and_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Title\n\nSome text that is long enough to be a passage.\n")
    (tmp_path / "loop").symlink_to(tmp_path)
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    items = list(discover([tmp_path, tmp_path / "missing"]))
    ids = [i.id for i in items if isinstance(i, Document)]
    reasons = {Path(i.source).name: i.reason for i in items if isinstance(i, Skip)}
    assert ids == ["a.txt"]
    assert reasons == {"dangling.txt": "broken symbolic link", "missing": "no such file or folder"}


def test_duplicate_ids_across_roots_are_skipped(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "same.txt").write_text(f"{name}\n\nbody text\n")
    items = list(discover([tmp_path / "one", tmp_path / "two"]))
    assert isinstance(items[1], Skip) and "duplicate document id" in items[1].reason


def test_decode_normalises_newlines() -> None:
    assert decode_text(b"a\r\nb\rc\n", "x") == "a\nb\nc\n"


def test_broken_html_still_yields_text() -> None:
    text, title = html_to_text("<html><title>T</title><p>unclosed <b>bold <p>next<div>tail")
    assert title == "T"
    assert "unclosed" in text and "next" in text and "tail" in text
