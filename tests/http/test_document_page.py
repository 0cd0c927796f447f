"""The document page (``GET /documents/{id}``) and the ``url`` every citation carries."""

from __future__ import annotations

import html
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from fastapi.testclient import TestClient

from qa.encoding import Embedder
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import FIXTURES_DIR

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
BROWSER = {"Accept": "text/html,application/xhtml+xml"}


class Marks(HTMLParser):
    """The text inside each ``<mark>`` of a page, by class, and the links."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.text: dict[str, str] = {}
        self.links: list[dict[str, str | None]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "mark":
            self.open.append(dict(attrs).get("class") or "")
        if tag == "a":
            self.links.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self.open.pop()

    def handle_data(self, data: str) -> None:
        for cls in self.open:
            self.text[cls] = self.text.get(cls, "") + data


def parse(page: str) -> Marks:
    marks = Marks()
    marks.feed(page)
    return marks


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> TestClient:
    """A collection with a two-page PDF, a document full of markup, and web pages."""
    folder = tmp_path_factory.mktemp("page-docs")
    shutil.copy(FIXTURES_DIR / "docs" / "report.pdf", folder / "report.pdf")
    (folder / f"unsafe {IMG}.txt").write_text(
        f"{IMG} {SCRIPT} Harbour notes\n\n"
        f"The harbour master counts eleven fishing boats each evening. {IMG} {SCRIPT}\n\n"
        "The pier was rebuilt in 1987 after a winter storm. <b>bold</b> &amp;\n",
        encoding="utf-8",
    )
    index = tmp_path_factory.mktemp("page-index")
    settings = make_settings(index, collection="pages")
    service = QAService(settings, embedder)
    service.index([folder], "pages")
    web = "https://example.org/ferry?route=1&day=<sun>"
    service.add_text("pages", "ferry", "Ferry timetable", "The ferry leaves at noon daily.", web)
    service.add_text("pages", "evil", "Evil link", "The evil lantern glows green.", "javascript:x")
    return TestClient(create_app(settings, service))


def ask(client: TestClient, question: str) -> dict:  # type: ignore[type-arg]
    response = client.post("/v1/ask", json={"question": question})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def open_url(client: TestClient, url: str, **headers: str) -> tuple[int, str]:
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}", headers=headers)
    return response.status_code, response.text


def test_every_citation_opens_its_passage_with_the_answer_marked(pages: TestClient) -> None:
    reply = ask(pages, "How many fishing boats does the harbour master count?")
    answer = reply["answer"]
    for passage in reply["passages"]:
        url = passage["citation"]["url"]
        assert url.startswith("http://testserver/documents/"), url
        assert "collection=pages" in url and f"passage={passage['passage_id']}" in url
        status, page = open_url(pages, url)
        assert status == 200
        marks = parse(page)
        assert marks.text["cited"] == passage["text"]  # exactly the passage, as text
        if passage["passage_id"] == answer["passage_id"]:
            assert f"hl={answer['start']}-{answer['end']}" in url
            assert marks.text["ans"] == answer["text"]
    searched = pages.get("/v1/search", params={"q": "pier rebuilt"}).json()
    assert all(p["citation"]["url"].startswith("http://testserver/") for p in searched["passages"])


def test_public_url_and_library_addresses(tmp_path: Path, pages: TestClient) -> None:
    service: QAService = pages.app.state.service  # type: ignore[attr-defined]
    reply = service.ask("When does the ferry leave?", "pages")
    assert (
        reply.passages[0].citation.url
        == "/documents/ferry?passage="
        + str(reply.passages[0].passage_id)
        + f"&hl={reply.answer.start}-{reply.answer.end}&collection=pages"
    )  # type: ignore[union-attr]
    public = make_settings(
        service.settings.index_dir, collection="pages", public_url="https://docs.example.com/qa/"
    )
    client = TestClient(create_app(public, QAService(public, service.embedder)))
    url = ask_in(client, "pages")["passages"][0]["citation"]["url"]
    assert url.startswith("https://docs.example.com/qa/documents/"), url


def ask_in(client: TestClient, collection: str) -> dict:  # type: ignore[type-arg]
    body = {"question": "When does the ferry leave?", "collection": collection}
    return client.post("/v1/ask", json=body).json()  # type: ignore[no-any-return]


def test_pdf_page_numbers(pages: TestClient) -> None:
    reply = ask(pages, "When was the lighthouse lamp replaced?")
    top = reply["passages"][0]
    assert top["citation"]["page"] == 2
    status, page = open_url(pages, top["citation"]["url"])
    assert status == 200
    assert "page 2" in page and "2 pages" in page
    before, _, after = page.partition('<span class="page" role="note">Page 2</span>')
    assert "forty storms" in before and "The lamp was replaced" in after
    assert "The lamp was replaced in March" in parse(page).text["cited"]


def test_markup_in_text_title_source_and_query_is_only_text(pages: TestClient) -> None:
    reply = ask(pages, "How many fishing boats does the harbour master count?")
    top = reply["passages"][0]
    document = quote(top["citation"]["document_id"], safe="")
    hostile = quote(f'"><script>alert(3)</script>{IMG}')
    for query in (
        f"passage={top['passage_id']}&hl={hostile}",
        f"passage={hostile}&hl=0-5",
        f"passage={top['passage_id']}&hl=5-2&collection=pages&x={hostile}",
    ):
        response = pages.get(f"/documents/{document}?{query}", headers=BROWSER)
        assert response.status_code == 200, query
        page = response.text
        assert "<script>" not in page.replace('<script src="/assets/document.js" defer>', "")
        assert "<img" not in page and "<b>" not in page and "alert(3)" not in page
        marks = parse(page)
        assert set(marks.tags) <= {"html", "head", "meta", "title", "link", "script", "body"} | {
            "a", "header", "p", "h1", "main", "article", "mark", "span",
        }  # fmt: skip
        assert html.escape(f"{IMG} {SCRIPT} Harbour notes", quote=False) in page  # title, text
    assert "Content-Security-Policy" in response.headers
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_missing_or_forbidden_documents_are_404(pages: TestClient) -> None:
    shown = set()
    for path in (
        "/documents/no-such-document",
        "/documents/..%2F..%2FCURRENT",
        "/documents/%2e%2e/%2e%2e/manifest.json",
        "/documents/ferry?collection=nope",
        "/documents/ferry?collection=..%2Fpages",
        f"/documents/ferry?collection={quote(SCRIPT)}",
    ):
        response = pages.get(path, headers=BROWSER)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "alert" not in response.text and "CURRENT" not in response.text
        shown.add(response.text)
        api = pages.get(path)
        assert api.status_code == 404 and set(api.json()) == {"error"}, path
    assert len(shown) == 1  # every missing or forbidden document looks the same
    # dot segments are resolved by the client, before the request: no route of the service
    assert pages.get("/documents/../../etc/passwd", headers=BROWSER).status_code == 404


def test_a_passage_of_another_document_shows_the_document_unmarked(pages: TestClient) -> None:
    reply = ask(pages, "When was the lighthouse lamp replaced?")
    other = reply["passages"][0]["passage_id"]
    status, page = open_url(pages, f"http://testserver/documents/ferry?passage={other}")
    assert status == 200
    assert "no longer in this document" in page and 'id="cited"' not in page
    assert "The ferry leaves at noon daily." in page


def test_web_pages_link_to_their_original_address(pages: TestClient) -> None:
    ferry = parse(pages.get("/documents/ferry", headers=BROWSER).text)
    original = [a for a in ferry.links if a.get("target") == "_blank"]
    assert original == [
        {
            "href": "https://example.org/ferry?route=1&day=<sun>",
            "rel": "noopener noreferrer nofollow",
            "target": "_blank",
        }
    ]
    evil = parse(pages.get("/documents/evil", headers=BROWSER).text)
    assert all("javascript" not in str(a.get("href")) for a in evil.links)
