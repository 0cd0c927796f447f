"""Bad files: each is read or skipped with a clear reason, and the rest of the folder is indexed.

The folder built here holds good files beside binary data with a text extension, invalid
UTF-8, UTF-16/UTF-8 with a byte-order mark, empty files, a 100 MiB text file, encrypted
PDFs, a PDF without a text layer, a truncated PDF, broken HTML, a page of scripts only,
symbolic-link loops, a dangling link, a named pipe and a link to /dev/zero (either would
hang a naive reader), a malformed JSONL line, and a file that disappears mid-run.
The same files are also sent to the write API.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader, PdfWriter

import qa.ingest.discovery
from qa.config import Settings
from qa.encoding import Embedder
from qa.http.app import create_app
from qa.ingest.discovery import discover
from qa.ingest.documents import DEFAULT_MAX_FILE_BYTES, Document, Skip
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "docs"
KEY = "bad-files-key-0123456789"
PROSE = "The harbour master logs every ship that enters the port, with its cargo and crew."

# file -> (outcome, words the reason must contain); "read" files must become documents
EXPECTED: dict[str, tuple[str, str]] = {
    "good.txt": ("read", ""),
    "notes.md": ("read", ""),
    "sub/page.html": ("read", ""),
    "report.pdf": ("read", ""),
    "utf16-bom.txt": ("read", ""),
    "utf8-bom.md": ("read", ""),
    "crlf.txt": ("read", ""),
    "owner-password.pdf": ("read", ""),
    "broken.html": ("read", ""),
    "corpus.jsonl": ("read", ""),  # its good line; the bad line is reported on its own
    "corpus.jsonl:2": ("skip", "malformed JSON"),
    "binary.txt": ("skip", "binary file (contains NUL bytes)"),
    "latin1.txt": ("skip", "not valid UTF-8 (byte 0xe9 at offset"),
    "bad-utf16.txt": ("skip", "not valid UTF-16"),
    "empty.txt": ("skip", "empty file"),
    "blank.md": ("skip", "empty file"),
    "huge.txt": ("skip", "file is 100.0 MiB, over the 50 MiB limit (raise QA_MAX_FILE_MB"),
    "encrypted.pdf": ("skip", "encrypted PDF (needs a password)"),
    "no-text-layer.pdf": ("skip", "PDF has no text layer"),
    "truncated.pdf": ("skip", "unreadable PDF"),
    "scripts-only.html": ("skip", "HTML page has no visible text"),
    "self-loop.txt": ("skip", "symbolic link loop"),
    "dangling.txt": ("skip", "broken symbolic link"),
    "pipe.txt": ("skip", "not a regular file"),
    "dev-zero.txt": (
        "skip",
        "outside the indexed folder",
    ),  # with --follow-links: not a regular file
    "vanishing.txt": ("skip", "file disappeared while indexing"),
    "image.png": ("skip", "unsupported file type '.png'"),
}


def pdf_bytes(
    user_password: str | None = None, owner_password: str = "owner", blank: bool = False
) -> bytes:
    if blank:
        writer = PdfWriter()
        writer.add_blank_page(612, 792)
    else:
        writer = PdfWriter(clone_from=PdfReader(FIXTURES / "report.pdf"))
        if user_password is not None:
            writer.encrypt(
                user_password=user_password, owner_password=owner_password, algorithm="AES-256"
            )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def write_huge(path: Path, size: int) -> None:
    """``size`` bytes of real text (not a sparse file of NULs)."""
    block = (PROSE + "\n\n").encode() * (2**20 // (len(PROSE) + 2))
    with path.open("wb") as handle:
        written = 0
        while written < size:
            chunk = block[: size - written]
            handle.write(chunk)
            written += len(chunk)


def build_folder(root: Path) -> Path:
    folder = root / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.txt").write_text(f"Harbour log\n\n{PROSE}\n", encoding="utf-8")
    (folder / "notes.md").write_text(
        f"# Lighthouse notes\n\nThe lamp turns twice a minute. {PROSE}\n"
    )
    shutil.copy(FIXTURES / "sub" / "page.html", folder / "sub" / "page.html")
    shutil.copy(FIXTURES / "report.pdf", folder / "report.pdf")
    (folder / "utf16-bom.txt").write_bytes(
        f"Tide tables\n\nHigh water is at noon. {PROSE}\n".encode("utf-16")
    )
    (folder / "utf8-bom.md").write_bytes(
        f"\ufeff# Ferry times\n\nThe ferry leaves hourly. {PROSE}\n".encode()
    )
    (folder / "crlf.txt").write_bytes(
        f"Pilot boats\r\n\r\nPilots board at the breakwater. {PROSE}\r\n".encode()
    )
    (folder / "owner-password.pdf").write_bytes(
        pdf_bytes(user_password="")
    )  # opens without a password
    (folder / "broken.html").write_text(
        "<html><title>Dock rules</title><p>No swimming <b>in the <p>basin<div>Keep clear of cranes & ropes"
        "<script>never(</script><p>unterminated <a href='x",
        encoding="utf-8",
    )
    (folder / "corpus.jsonl").write_text(
        '{"_id": "buoy", "title": "Buoys", "text": "Red buoys mark the port side of the channel."}\n{broken\n'
    )
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (folder / "latin1.txt").write_bytes(
        "Café au lait on the quay\n\nThe café opens at six.\n".encode("latin-1")
    )
    (folder / "bad-utf16.txt").write_bytes(b"\xff\xfeT\x00i\x00\x00\xd8")  # a lone surrogate
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.md").write_bytes(b"  \n\t\r\n  ")
    write_huge(folder / "huge.txt", 100 * 2**20)
    (folder / "encrypted.pdf").write_bytes(pdf_bytes(user_password="secret"))
    (folder / "no-text-layer.pdf").write_bytes(pdf_bytes(blank=True))
    (folder / "truncated.pdf").write_bytes((FIXTURES / "report.pdf").read_bytes()[:600])
    (folder / "scripts-only.html").write_text(
        "<html><head><title>x</title></head><script>alert(1)</script></html>"
    )
    # relative links, so that copies of the folder keep their loops
    (folder / "self-loop.txt").symlink_to("self-loop.txt")
    (folder / "dangling.txt").symlink_to("nowhere.txt")
    (folder / "sub" / "loop").symlink_to("..")  # a folder loop: walked once, no duplicates
    os.mkfifo(folder / "pipe.txt")
    (folder / "dev-zero.txt").symlink_to("/dev/zero")
    (folder / "vanishing.txt").write_text(f"Gone soon\n\n{PROSE}\n")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def vanish_after_discovery(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Delete ``name`` right after the folder is listed, before it is read."""
    walk = qa.ingest.discovery._walk

    def walk_then_delete(root: Path, *options: object):  # type: ignore[no-untyped-def]
        yield from walk(root, *options)
        victim = root / name
        if victim.exists():
            victim.unlink()

    monkeypatch.setattr(qa.ingest.discovery, "_walk", walk_then_delete)


def clone(bad_folder: Path, target: Path) -> Path:
    """A copy of the folder (the 100 MiB file hard-linked, a fresh pipe)."""
    shutil.copytree(
        bad_folder, target, symlinks=True, ignore=shutil.ignore_patterns("huge.txt", "pipe.txt")
    )
    os.link(bad_folder / "huge.txt", target / "huge.txt")
    os.mkfifo(target / "pipe.txt")
    return target


def outcome_key(folder: Path, skip: Skip) -> str:
    """A skipped file's path inside ``folder`` (from the full path in the log, else its display name)."""
    source = skip.path or skip.source
    path, _, line = source.partition(".jsonl:")
    path += ".jsonl" if line else ""
    relative = (
        Path(path).relative_to(folder).as_posix() if path.startswith("/") else path.split("/", 1)[1]
    )
    return f"{relative}:{line}" if line else relative


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = build_folder(tmp_path_factory.mktemp("bad-files"))
    yield folder
    (folder / "huge.txt").unlink(missing_ok=True)  # don't leave 100 MiB behind


def test_each_bad_file_is_read_or_skipped_with_a_reason(
    bad_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = clone(bad_folder, Path(str(bad_folder) + "-copy"))
    vanish_after_discovery(monkeypatch, "vanishing.txt")
    read: list[Path] = []
    original_read_bytes = Path.read_bytes

    def recording_read_bytes(self: Path) -> bytes:
        read.append(self)
        return original_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", recording_read_bytes)
    outcomes: dict[str, tuple[str, str]] = {}
    for item in discover([folder]):
        if isinstance(item, Skip):
            outcomes[outcome_key(folder, item)] = ("skip", item.reason)
        elif item.format == "jsonl":
            outcomes["corpus.jsonl"] = ("read", f"document {item.id!r}")
        else:
            assert item.text.strip() and item.title, item.id
            outcomes[item.id] = ("read", f"{item.format}, title {item.title!r}")
    print("\n| file | outcome | reason / result |\n|---|---|---|")
    for name, (outcome, detail) in sorted(outcomes.items()):
        print(f"| {name} | {outcome} | {detail} |")
    assert set(outcomes) == set(EXPECTED)
    for name, (outcome, words) in EXPECTED.items():
        assert outcomes[name][0] == outcome, (name, outcomes[name])
        assert words in outcomes[name][1], (name, outcomes[name])
    # the big file was refused by its size, without reading 100 MiB; pipes and devices were never opened
    assert not any(p.name in {"huge.txt", "pipe.txt", "dev-zero.txt"} for p in read)


def test_the_rest_of_the_folder_is_indexed(
    bad_folder: Path, tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = clone(bad_folder, tmp_path / "docs")
    (folder / "title-only.txt").write_text("Just a title line\n")
    vanish_after_discovery(monkeypatch, "vanishing.txt")
    service = QAService(make_settings(tmp_path / "index"), embedder)
    report = service.index([folder], "bad")
    reasons = {outcome_key(folder.resolve(), s): s.reason for s in report.skipped}
    assert "no text to index" in reasons.pop("title-only.txt")
    # the owner-password PDF is report.pdf encrypted: the same text, so indexed once
    assert reasons.pop("owner-password.pdf").startswith("duplicate of docs/report.pdf")
    expected_skips = {name for name, (outcome, _) in EXPECTED.items() if outcome == "skip"}
    assert set(reasons) == expected_skips
    expected_documents = {
        n for n, (o, _) in EXPECTED.items() if o == "read" and not n.startswith("corpus")
    } - {"owner-password.pdf"} | {"buoy"}
    collection = service.collection("bad")
    assert set(collection.document_hashes()) == expected_documents
    assert report.documents == len(expected_documents)
    found = service.search("Which side of the channel do red buoys mark?", "bad", 3)
    assert found.passages[0].citation.document_id == "buoy"


def test_file_size_limit_is_configurable(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "small.txt").write_text(f"Small\n\n{PROSE}\n")
    write_huge(folder / "big.txt", int(0.6 * 2**20))  # identical paragraphs: embedded once
    monkeypatch.setenv("QA_MAX_FILE_MB", "0.5")
    settings = make_settings(tmp_path / "index")
    assert settings.max_file_mb == 0.5
    service = QAService(settings, embedder)
    report = service.index([folder], "sized")
    (skip,) = report.skipped
    assert (
        skip.source.endswith("big.txt") and "file is 0.6 MiB, over the 0.5 MiB limit" in skip.reason
    )
    assert report.documents == 1

    service = QAService(make_settings(tmp_path / "index", max_file_mb=1), embedder)
    report = service.index([folder], "sized")
    assert not report.skipped and report.documents == 2 and report.added == 1


def test_default_limit_matches_the_library_default() -> None:
    assert Settings.model_fields["max_file_mb"].default * 2**20 == DEFAULT_MAX_FILE_BYTES


# --------------------------------------------------------------------------- the write API


@pytest.fixture(scope="module")
def writer(
    tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path, embedder: Embedder
) -> TestClient:
    index = tmp_path_factory.mktemp("bad-upload") / "index"
    shutil.copytree(seed_index_dir, index)
    settings = make_settings(index, api_key=KEY, max_upload_bytes=2**20)
    return TestClient(
        create_app(settings, QAService(settings, embedder)), raise_server_exceptions=False
    )


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("binary.txt", 422, "binary file"),
        ("latin1.txt", 422, "not valid UTF-8"),
        ("bad-utf16.txt", 422, "not valid UTF-16"),
        ("empty.txt", 422, "empty file"),
        ("encrypted.pdf", 422, "encrypted PDF"),
        ("no-text-layer.pdf", 422, "no text layer"),
        ("truncated.pdf", 422, "unreadable PDF"),
        ("scripts-only.html", 422, "no visible text"),
        ("image.png", 422, "unsupported file type"),
        ("utf16-bom.txt", 201, ""),
        ("broken.html", 201, ""),
        ("owner-password.pdf", 201, ""),
    ],
)
def test_bad_uploads_get_clear_answers(
    bad_folder: Path, writer: TestClient, name: str, status: int, words: str
) -> None:
    data = (bad_folder / name).read_bytes()
    response = writer.post(
        "/v1/collections/default/documents",
        files={"file": (name, data)},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.json()["error"]["code"] == "unreadable_document"
        assert words in response.json()["error"]["message"]
        assert response.json()["error"]["message"].startswith(
            f"{name}: "
        )  # the upload's name, no server path


def test_oversized_upload_is_413_and_empty_new_collection_is_422(
    bad_folder: Path, writer: TestClient
) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    big = writer.post(
        "/v1/collections/default/documents",
        files={"file": ("big.txt", b"x" * (2**20 + 10))},
        headers=auth,
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    # a title without any body, into a collection that has nothing else: a clear 422, not a crash
    title_only = writer.post(
        "/v1/collections/fresh/documents",
        files={"file": ("t.txt", b"Only a title\n")},
        headers=auth,
    )
    assert title_only.status_code == 422, title_only.text
    assert "no text to index" in title_only.json()["error"]["message"]
    blank_text = writer.post(
        "/v1/collections/fresh/documents",
        json={"id": "b", "title": "T", "text": " \n "},
        headers=auth,
    )
    assert blank_text.status_code == 422, blank_text.text
    assert writer.get("/v1/collections/fresh").status_code == 404  # nothing was created


def test_deleting_the_last_document_is_a_conflict_not_a_server_error(writer: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    added = writer.post(
        "/v1/collections/lonely/documents", json={"id": "only", "text": PROSE}, headers=auth
    )
    assert added.status_code == 201, added.text
    response = writer.delete("/v1/collections/lonely/documents/only", headers=auth)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "nothing_to_index"
    assert writer.get("/v1/collections/lonely").json()["documents"] == 1


def test_documents_are_what_discover_yields(bad_folder: Path) -> None:
    # sanity: the fixture folder itself (without the vanishing trick) still reads its good files
    ids = {i.id for i in discover([bad_folder]) if isinstance(i, Document)}
    assert {"good.txt", "notes.md", "sub/page.html", "vanishing.txt"} <= ids


def test_followed_link_to_a_device_is_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "dev-zero.txt").symlink_to("/dev/zero")
    (folder / "ok.txt").write_text(f"Fine\n\n{PROSE}\n")
    found = list(discover([folder], follow_links=True))
    skips = {Path(s.path).name: s.reason for s in found if isinstance(s, Skip)}
    assert skips == {"dev-zero.txt": "not a regular file (a pipe, socket or device)"}
    assert [d.id for d in found if not isinstance(d, Skip)] == ["ok.txt"]
