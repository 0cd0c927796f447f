"""Citations a reader can check and pass on, and the feedback under each answer, in Chromium.

The document page opened from a pasted address (scrolled to the passage, the answer
marked, keyboard-usable with and without script), hostile text in documents and in the
address, the widget's "Open as a page" link, and helpful / not helpful sent from the chat.
"""

from __future__ import annotations

import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from qa.config import Settings
from qa.feedback import FeedbackIn
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.e2e import test_browser as shared
from tests.e2e.test_browser import (
    IMG,
    Q1,
    SCRIPT,
    TIMEOUT_MS,
    Browser,
    Page,
    answers,
    ask,
    expect,
    shot,
)
from tests.helpers import serve_in_thread

pytestmark = pytest.mark.browser
# the widget tests' fixtures: one Chromium per module, a context and a watched page per test
browser = shared.browser
context = shared.context
page = shared.page

# Elements that would mean text was parsed as HTML on the document page.
INJECTED_JS = """() => document.querySelectorAll(
  'img, iframe, b, script:not([src="/assets/document.js"])').length"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path, embedder: Any) -> Any:
    """A server over a private copy of the seed index plus a long document and a hostile one."""
    index = tmp_path_factory.mktemp("cite") / "index"
    shutil.copytree(seed_index_dir, index)
    settings = make_settings(index)
    service = QAService(settings, embedder)
    filler = "\n\n".join(
        f"Paragraph {i} of the tide log describes the water level on day {i} in some detail."
        for i in range(80)
    )
    service.add_text(
        "default",
        "tides",
        "Tide log",
        f"{filler}\n\nThe lighthouse keeper feeds seventeen cats every morning at dawn.\n\n{filler}",
        "https://example.org/tides",
    )
    service.add_text(
        "default",
        "unsafe/<b>notes</b>",
        f"Harbour {IMG} {SCRIPT}",
        f"The harbour master counts eleven boats. {IMG} {SCRIPT} <b>bold</b> &amp;",
        f"ledger {IMG}",
    )
    with serve_in_thread(create_app(settings, service)) as base:
        yield base, service, settings


def cited_in_view(page: Page) -> None:
    cited = page.locator("mark#cited")
    expect(cited).to_be_visible()
    expect(cited).to_be_in_viewport()


def test_a_pasted_address_scrolls_to_the_passage_and_marks_the_answer(
    page: Page, site: Any
) -> None:
    base, service, _ = site
    reply = service.ask("How many cats does the lighthouse keeper feed?")
    top = reply.passages[0]
    assert top.citation.document_id == "tides" and reply.answer is not None
    page.goto(base + top.citation.url)  # as pasted into the address bar
    cited_in_view(page)
    expect(page.locator("mark#cited")).to_be_focused()
    expect(page.locator("mark.ans")).to_have_text(reply.answer.text)
    expect(page.locator("h1")).to_have_text("Tide log")
    original = page.locator("a[target=_blank]")  # the web page, opened at the answer's words
    expect(original).to_have_attribute(
        "href",
        "https://example.org/tides#:~:text=The%20lighthouse%20keeper%20feeds%20seventeen%20cats%20"
        "every%20morning%20at%20dawn.",
    )
    assert page.evaluate("() => window.scrollY") > 1000  # the passage is far down the page
    shot(page, "document-page-light.png")
    page.emulate_media(color_scheme="dark")
    shot(page, "document-page-dark.png")
    assert page.watch.console_errors == []  # type: ignore[attr-defined]


def test_without_script_the_keyboard_reaches_the_passage(browser: Browser, site: Any) -> None:
    base, service, _ = site
    top = service.ask("How many cats does the lighthouse keeper feed?").passages[0]
    ctx = browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 700})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        tab = ctx.new_page()
        tab.goto(base + top.citation.url)
        tab.keyboard.press("Tab")
        skip = tab.locator("a.skip")
        expect(skip).to_be_focused()
        expect(skip).to_be_visible()
        tab.keyboard.press("Enter")
        cited_in_view(tab)
        assert tab.url.endswith("#cited")
    finally:
        ctx.close()


def test_markup_in_documents_and_addresses_runs_nothing(page: Page, site: Any) -> None:
    base, service, _ = site
    reply = service.ask("How many boats does the harbour master count?")
    top = next(p for p in reply.passages if p.citation.document_id == "unsafe/<b>notes</b>")
    assert "%2F%3Cb%3Enotes%3C%2Fb%3E" in top.citation.url  # one encoded path segment
    page.goto(base + top.citation.url + "&x=" + quote(f'"><script>alert(5)</script>{IMG}'))
    cited_in_view(page)
    expect(page.locator("h1")).to_have_text(f"Harbour {IMG} {SCRIPT}")
    expect(page.locator("mark#cited")).to_contain_text(f"{IMG} {SCRIPT} <b>bold</b> &amp;")
    expect(page.locator(".meta")).to_contain_text(f"ledger {IMG}")
    hostile = quote(f"{SCRIPT}{IMG}", safe="")
    for path in (
        f"/documents/{hostile}",
        f"/documents/tides?passage={hostile}&hl={hostile}",
        f"/documents/tides?collection={hostile}",
    ):
        page.goto(base + path)
        expect(page.locator("h1")).to_be_visible()
    page.wait_for_timeout(300)  # any injected handler (there must be none) would have run
    assert page.evaluate(INJECTED_JS) == 0
    assert page.watch.dialogs == []  # type: ignore[attr-defined]


def test_open_as_a_page_from_the_widget(page: Page, site: Any) -> None:
    base, _, _ = site
    page.goto(base + "/")
    ask(page, "How many cats does the lighthouse keeper feed?")
    expect(answers(page)).to_contain_text("seventeen cats")
    page.locator(".card.is-answer .btn-source").click()
    dialog = page.locator("dialog.doc")
    link = dialog.locator("a.doc-page")
    expect(link).to_be_visible()
    original = dialog.locator("a.doc-original")  # opened at the answer: a text fragment
    expect(original).to_have_attribute("href", re.compile(r"^https://example\.org/tides#:~:text="))
    href = link.get_attribute("href") or ""
    assert href.startswith(base + "/documents/tides?passage="), href
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state()
    cited_in_view(tab)
    expect(tab.locator("mark.ans")).to_contain_text("seventeen cats")


def test_feedback_from_the_chat_page(page: Page, site: Any) -> None:
    base, service, _ = site
    page.goto(base + "/")
    ask(page, Q1)
    expect(answers(page)).to_contain_text("nine")
    first = page.locator(".msg.bot").first
    helpful = first.get_by_role("button", name="Helpful", exact=True)
    helpful.click()
    expect(first.locator(".fb-status")).to_have_text("Thanks for your feedback.")
    expect(helpful).to_have_attribute("aria-pressed", "true")

    # "Not helpful" with a reason and a comment, by keyboard only
    ask(page, "What is the population of Songjiang?")
    second = page.locator(".msg.bot").nth(1)
    expect(second.locator(".fb-btn").first).to_be_visible()
    second.get_by_role("button", name="Not helpful").focus()
    page.keyboard.press("Enter")
    reasons = second.locator(".fb-form input[type=radio]")
    expect(reasons.first).to_be_focused()
    page.keyboard.press("ArrowRight")  # the second reason: "It should have answered"
    page.keyboard.press("Tab")
    page.keyboard.type(f"the population is in the census {IMG}")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "Send feedback"
    expect(second.locator(".fb-status")).to_have_text("Thanks for your feedback.")
    expect(second.locator(".fb-form")).to_have_count(0)
    shot(page, "page-feedback-light.png")

    records = service.feedback.records("default")[-2:]
    helpful, unhelpful = records
    assert (helpful.rating, helpful.reason, helpful.question) == ("helpful", None, Q1)
    assert helpful.answer is not None and helpful.passage_ids and helpful.generation
    assert unhelpful.rating == "not_helpful" and unhelpful.reason == "should_have_answered"
    assert unhelpful.comment == f"the population is in the census {IMG}"
    assert unhelpful.history and unhelpful.history[0].content == Q1  # the conversation before

    page.reload()  # the verdicts survive a reload; nothing can be sent twice
    expect(page.locator(".fb-btn[aria-pressed=true]")).to_have_count(2)
    assert page.watch.dialogs == []  # type: ignore[attr-defined]


def test_feedback_switched_off_hides_the_buttons(
    page: Page, seed_settings: Settings, seed_service: QAService
) -> None:
    settings = make_settings(seed_settings.index_dir, feedback=False)
    with serve_in_thread(create_app(settings, seed_service)) as base:
        page.goto(base + "/")
        ask(page, Q1)
        expect(answers(page)).to_contain_text("nine")
        expect(page.locator(".feedback")).to_be_hidden()


def test_admin_report_page_groups_problems_and_renders_text(page: Page, site: Any) -> None:
    _, service, settings = site
    key = "admin-page-key-0123456789"
    admin = settings.model_copy(update={"api_key": SecretStr(key)})
    for question in (f"Who painted the harbour {IMG}?", f"Who painted the harbour? {SCRIPT}"):
        item = {"question": question, "rating": "not_helpful", "reason": "should_have_answered"}
        service.feedback.record(FeedbackIn.model_validate({**item, "comment": IMG}), "default")
    with serve_in_thread(create_app(admin, service)) as base:
        page.goto(base + "/admin")
        page.get_by_label("Admin key").fill("wrong")
        page.get_by_role("button", name="Show report").click()
        expect(page.locator("#status")).to_contain_text("key")
        page.get_by_label("Admin key").fill(key)
        page.keyboard.press("Enter")
        group = page.locator(".group").filter(has_text="Who painted the harbour")
        expect(group).to_have_count(1)  # the two wordings are one group
        expect(group.locator(".count")).to_have_text("2")
        expect(group).to_contain_text(f"Comment: {IMG}")
        shot(page, "admin-report-light.png")
        assert page.evaluate(INJECTED_JS.replace("document.js", "admin.js")) == 0
        assert page.watch.dialogs == []  # type: ignore[attr-defined]


PILOT = "The harbour pilot boards each tanker at the three-mile buoy."


@pytest.fixture
def web_page() -> Iterator[str]:
    """A page of another site (its own server) holding the cited sentence far down."""
    filler = "".join(
        f"<p>Paragraph {i} of the pilot guide lists the tide tables for berth {i}.</p>"
        for i in range(80)
    )
    body = f"<html><body><h1>Pilot guide</h1>{filler}<p>{PILOT}</p>{filler}</body></html>"
    pages = {"/guide/pilot.html": body}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), shared._PagesHandler)
    server.pages = pages  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/guide/pilot.html"
    finally:
        server.shutdown()
        server.server_close()


def test_a_web_source_opens_at_the_cited_sentence(page: Page, site: Any, web_page: str) -> None:
    base, service, _ = site
    filler = "\n\n".join(
        f"Paragraph {i} of the pilot guide lists the tide tables for berth {i}." for i in range(80)
    )
    service.add_text(
        "default", "pilot", "Pilot guide", f"{filler}\n\n{PILOT}\n\n{filler}", web_page
    )
    page.goto(base + "/")
    ask(page, "Where does the harbour pilot board each tanker?")
    expect(answers(page)).to_contain_text("three-mile buoy")
    link = page.locator(".card.is-answer a.btn-page")
    expected = web_page + "#:~:text=" + quote(PILOT, safe="").replace("-", "%2D")
    expect(link).to_have_attribute("href", expected)
    assert "%2D" in expected and "%20" in expected
    page.locator(".card.is-answer .btn-source").click()  # the document viewer's link too
    original = page.locator("dialog.doc a.doc-original")
    expect(original).to_have_attribute("href", expected)
    page.keyboard.press("Escape")
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state()
    expect(tab.locator("h1")).to_have_text("Pilot guide")
    # Chromium found the words and scrolled to them: the sentence is far down the page
    tab.wait_for_function("() => window.scrollY > 1000")
