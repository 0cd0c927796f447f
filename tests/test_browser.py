"""The chat page (``/``) and the embeddable widget (``/widget.js``) driven in a real Chromium.

Playwright's sync API against real uvicorn servers (``tests.helpers.serve_in_thread``); host pages
of "other sites" are served by a small ``http.server`` on another port. Screenshots go to
``test-output/screenshots/``.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.api import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import ROOT, SEED_TITLE, free_port, serve_in_thread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 30_000
SHOTS = ROOT / "test-output" / "screenshots"
HOST_TEMPLATE = Path(__file__).parent / "browser_pages" / "host.html"

Q1 = "How many cities does the G60 corridor connect?"
Q2 = "Which of them are in Zhejiang?"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"

expect.set_options(timeout=TIMEOUT_MS)

# The focused element, looking through shadow roots.
ACTIVE_JS = """() => {
  let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  return a ? {tag: a.tagName.toLowerCase(), cls: String(a.className || ''), text: (a.textContent || '').trim().slice(0, 80)} : null;
}"""


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1100, "height": 800}, color_scheme="light")
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


class Watch:
    """What a page did that it should not: uncaught exceptions, console errors, dialogs."""

    def __init__(self, page: Page) -> None:
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("console", lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    tab = context.new_page()
    watch = Watch(tab)
    tab.watch = watch  # type: ignore[attr-defined]
    yield tab
    assert watch.page_errors == [], f"uncaught exceptions in the page: {watch.page_errors}"


class _PagesHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        pages: dict[str, str] = self.server.pages  # type: ignore[attr-defined]
        body = pages.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def static_host(pages: dict[str, str]) -> Iterator[str]:
    """A plain http.server on its own port (another origin) serving ``pages`` (path -> HTML)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _PagesHandler)
    server.pages = pages  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def host_page(endpoint: str, attrs: str = "", before: str = "") -> str:
    """The host page of another site, embedding the widget with one script tag."""
    html = HOST_TEMPLATE.read_text(encoding="utf-8")
    return html.replace("__ENDPOINT__", endpoint).replace("__ATTRS__", attrs).replace("__BEFORE__", before)


@pytest.fixture(scope="module")
def embed(seed_settings: Any, seed_service: QAService) -> Iterator[dict[str, str]]:
    """A host site on one port, and a qa server on another that allows that site's origin."""
    pages: dict[str, str] = {}
    with static_host(pages) as host:
        settings = make_settings(seed_settings.index_dir, cors_origins=[host])
        with serve_in_thread(create_app(settings, seed_service)) as api:
            pages["/host.html"] = host_page(api, attrs='data-starters="How many cities does the G60 corridor connect?|What brand is the Haier factory in Songjiang for?"')
            yield {"host": host, "api": api, "pages": pages}  # type: ignore[dict-item]


# ---------------------------------------------------------------------- helpers
def ask(page: Page, question: str) -> None:
    box = page.locator("textarea")
    box.fill(question)
    box.press("Enter")


def answers(page: Page) -> Any:
    return page.locator(".answer-text")


def open_widget(page: Page) -> None:
    """Open the launcher's panel (it may already be open: the open state survives navigation)."""
    root = page.locator(".root")
    root.wait_for(state="attached")
    if root.get_attribute("data-open") != "true":
        page.locator(".launcher").click()
    expect(page.locator(".panel")).to_be_visible()


def active(page: Page) -> dict[str, str]:
    return page.evaluate(ACTIVE_JS)


def press_until(page: Page, key: str, predicate: Any, limit: int = 40) -> dict[str, str]:
    """Press ``key`` until the focused element satisfies ``predicate``."""
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        now = active(page)
        seen.append(now)
        if now and predicate(now):
            return now
    raise AssertionError(f"focus never reached the target; it went through {seen}")


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
    inner = page.locator(".scroller").evaluate("s => [s.scrollWidth, s.clientWidth]")
    assert inner[0] <= inner[1], f"the conversation scrolls sideways: {inner}"


def luminance(css_color: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


# ---------------------------------------------------------------------- tests
def test_answer_with_citations_and_source(page: Page, live_server: str) -> None:
    """Ask on the chat page: "nine", a card titled like the article, its context and its source span."""
    page.goto(live_server + "/")
    expect(page.locator(".chip").first).to_be_visible()  # starters from /v1/config
    expect(page.locator(".heading")).to_have_text("Ask the documents")
    ask(page, Q1)

    expect(answers(page)).to_contain_text("nine")
    expect(page.locator(".scroller")).to_have_attribute("aria-busy", "false")
    cards = page.locator(".card")
    expect(cards.first).to_be_visible()
    card = cards.filter(has=page.locator(".card-title", has_text=SEED_TITLE)).first
    expect(card).to_be_visible()
    expect(card.locator(".card-meta")).to_contain_text("Paragraph")
    answer_card = page.locator(".card.is-answer")
    expect(answer_card.locator("mark.ans")).to_contain_text("nine cities")

    # the citation marker [1] leads to its card
    page.locator(".cite").first.click()
    expect(answer_card).to_be_focused()

    # more context from /v1/passages/{id}
    answer_card.locator(".btn-context").click()
    expect(answer_card.locator(".btn-context")).to_have_attribute("aria-expanded", "true")
    expect(answer_card.locator(".ctx-before p").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "page-answer-light.png"))

    # the whole document from /v1/documents/{id}, the cited span marked and scrolled into view
    answer_card.locator(".btn-source").click()
    dialog = page.locator("dialog.doc")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".doc-title")).to_have_text(SEED_TITLE)
    cited = dialog.locator("mark.cited")
    expect(cited).to_contain_text("The seven-year-old G60 Corridor connects nine cities")
    expect(cited.locator("mark.ans")).to_contain_text("nine cities")
    expect(cited).to_be_in_viewport()
    page.screenshot(path=str(SHOTS / "page-document-light.png"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(answer_card.locator(".btn-source")).to_be_focused()

    page.emulate_media(color_scheme="dark")
    panel_bg = page.locator(".panel").evaluate("p => getComputedStyle(p).backgroundColor")
    assert luminance(panel_bg) < 0.2, panel_bg
    page.screenshot(path=str(SHOTS / "page-answer-dark.png"))
    assert page.watch.console_errors == []  # type: ignore[attr-defined]


def test_follow_up_carries_history(page: Page, live_server: str) -> None:
    """The second question goes out with the first question and its answer; "thinking" shows meanwhile."""
    page.goto(live_server + "/")
    with page.expect_response("**/v1/ask") as first:
        ask(page, Q1)
    first_answer = first.value.json()["answer"]["text"]
    expect(answers(page)).to_have_count(1)

    held: list[Any] = []
    page.route("**/v1/ask", lambda route: held.append(route))
    ask(page, Q2)
    expect(page.locator(".thinking")).to_be_visible()
    expect(page.locator(".scroller")).to_have_attribute("aria-busy", "true")
    expect(page.locator(".send")).to_be_disabled()
    for _ in range(300):  # the held request reaches the route handler while Playwright waits
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the follow-up was never sent"
    body = held[0].request.post_data_json
    assert body["question"] == Q2
    assert body["history"] == [
        {"role": "user", "content": Q1},
        {"role": "assistant", "content": first_answer},
    ]
    assert body["top_k"] >= 1
    held[0].continue_()
    page.unroute("**/v1/ask")

    expect(answers(page)).to_have_count(2)
    expect(answers(page).nth(1)).to_contain_text("Zhejiang")
    expect(page.locator(".thinking")).to_have_count(0)
    expect(page.locator("textarea")).to_be_focused()
    expect(page.locator(".msg.user")).to_have_count(2)


def test_keyboard_only(page: Page, embed: dict[str, str]) -> None:
    """Tab to the launcher, Enter opens, type and Enter asks, reach a card's source, Escape twice."""
    page.goto(embed["host"] + "/host.html")
    launcher = page.locator(".launcher")
    expect(launcher).to_be_visible()
    press_until(page, "Tab", lambda a: "launcher" in a["cls"], limit=10)
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(page.locator(".panel")).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.locator("textarea")).to_be_focused()

    # Shift+Enter is a new line, not a question
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(page.locator("textarea")).to_have_value("first line\nsecond line")
    expect(page.locator(".msg")).to_have_count(0)
    page.keyboard.press("Control+A")
    page.keyboard.type(Q1)
    page.keyboard.press("Enter")
    expect(answers(page)).to_contain_text("nine")
    expect(page.locator("textarea")).to_be_focused()
    expect(page.locator(".live")).to_contain_text("nine")  # announced to screen readers

    # backwards from the input to the first card's "Open source"
    first_source = page.locator(".card").first.locator(".btn-source")
    press_until(page, "Shift+Tab", lambda a: "btn-source" in a["cls"] and first_source.evaluate("b => b.matches(':focus')"))
    page.keyboard.press("Enter")
    dialog = page.locator("dialog.doc")
    expect(dialog).to_be_visible()
    expect(dialog.locator("mark.cited")).to_be_in_viewport()
    page.keyboard.press("Escape")  # closes the document, not the panel
    expect(dialog).to_be_hidden()
    expect(page.locator(".panel")).to_be_visible()
    expect(first_source).to_be_focused()

    page.keyboard.press("Escape")  # closes the panel, focus back on the launcher
    expect(page.locator(".panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".panel")).to_be_visible()
    expect(page.locator("textarea")).to_be_focused()
    expect(answers(page)).to_have_count(1)


def test_error_when_server_stops_then_retry(page: Page, seed_settings: Any, seed_service: QAService) -> None:
    """A stopped server: an error and a Retry; the question stays in the input; Retry answers later."""
    port = free_port()
    with serve_in_thread(create_app(seed_settings, seed_service), port=port) as base:
        page.goto(base + "/")
        expect(page.locator(".chip").first).to_be_visible()
    ask(page, Q1)
    error = page.locator(".error-box")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Can't reach")
    expect(error.locator(".retry")).to_be_visible()
    expect(page.locator("textarea")).to_have_value(Q1)
    expect(page.locator(".msg.user.failed")).to_have_text(re.compile("G60 corridor"))
    expect(page.locator(".alert")).to_contain_text("Can't reach")
    page.screenshot(path=str(SHOTS / "page-error-light.png"))

    with serve_in_thread(create_app(seed_settings, seed_service), port=port):
        error.locator(".retry").click()
        expect(answers(page)).to_contain_text("nine")
        expect(page.locator(".error-box")).to_have_count(0)
        expect(page.locator(".msg.user")).to_have_count(1)
        expect(page.locator("textarea")).to_have_value("")

        # a 5xx shows the server's message, and the question is kept
        page.route("**/v1/ask", lambda route: route.fulfill(
            status=503, content_type="application/json",
            body=json.dumps({"error": {"code": "index_unavailable", "message": "the index is being rebuilt"}}),
        ))
        ask(page, Q2)
        expect(page.locator(".error-box")).to_contain_text("the index is being rebuilt")
        expect(page.locator("textarea")).to_have_value(Q2)
        page.unroute("**/v1/ask")
        page.keyboard.press("Enter")  # resend from the input: the error goes away
        expect(answers(page)).to_have_count(2)
        expect(page.locator(".error-box")).to_have_count(0)


def test_embedded_cross_origin_allowed_and_refused(page: Page, embed: dict[str, str], live_server: str) -> None:
    """Another site's page: answers when its origin is allowed; a clear error when it is not."""
    page.goto(embed["host"] + "/host.html")
    page.locator(".launcher").click()
    chips = page.locator(".chip")  # data-starters, "|"-separated
    expect(chips).to_have_count(2)
    expect(page.locator(".heading")).to_have_text("Ask the docs")
    chips.first.click()
    expect(answers(page)).to_contain_text("nine")
    expect(page.locator(".card-title").first).to_have_text(SEED_TITLE)
    # the host's CSS (hotpink buttons, red serif text) does not reach inside
    send_bg = page.locator(".send").evaluate("b => getComputedStyle(b).backgroundColor")
    assert send_bg != "rgb(255, 105, 180)"
    title_color = page.locator(".card-title").first.evaluate("t => getComputedStyle(t).color")
    assert title_color != "rgb(255, 0, 0)"
    page.screenshot(path=str(SHOTS / "widget-open-light.png"))
    assert page.watch.console_errors == []  # type: ignore[attr-defined]

    # live_server allows no other origin; this host page also already uses the element's name
    clash = "<script>customElements.define('qa-docs-chat', class extends HTMLElement {});</script>"
    embed["pages"]["/refused.html"] = host_page(live_server, before=clash)  # type: ignore[index]
    page.goto(embed["host"] + "/refused.html")
    tag = page.evaluate("window.QADocsChat.tagName")
    assert tag.startswith("qa-docs-chat-"), tag
    page.locator(".launcher").click()
    ask(page, Q1)
    expect(page.locator(".error-box")).to_contain_text("Can't reach")
    expect(answers(page)).to_have_count(0)
    expect(page.locator(".card")).to_have_count(0)
    expect(page.locator("textarea")).to_have_value(Q1)


def test_document_text_is_never_html(page: Page, embed: dict[str, str], tmp_path: Path, embedder: Any) -> None:
    """A document full of markup shows it literally and runs nothing."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "unsafe notes.txt").write_text(
        f"{IMG} {SCRIPT} Lighthouse notes\n\n"
        f"The lighthouse keeper feeds seventeen cats every morning at dawn. {IMG} {SCRIPT}\n\n"
        "The lamp of the lighthouse was replaced in 1998 by an electric one that turns twice a minute.\n\n"
        f"Visitors may climb the tower on Sundays. <b>bold</b> &amp; <iframe src=javascript:alert(3)></iframe>\n",
        encoding="utf-8",
    )
    index_dir = tmp_path / "index"
    service = QAService(make_settings(index_dir), embedder)
    service.index([folder], "xss")
    app = create_app(make_settings(index_dir, cors_origins=[embed["host"]]), service)
    with serve_in_thread(app) as api:
        starters = json.dumps(["How many cats does the lighthouse keeper feed?"]).replace('"', "&quot;")
        embed["pages"]["/xss.html"] = host_page(  # type: ignore[index]
            api, attrs=f'data-collection="xss" data-open="true" data-starters="{starters}"'
        )
        page.goto(embed["host"] + "/xss.html")
        expect(page.locator(".panel")).to_be_visible()  # data-open
        page.locator(".chip").first.click()  # data-starters as JSON
        answer = answers(page)
        expect(answer).to_contain_text("seventeen cats")
        expect(answer).to_contain_text(IMG)
        expect(answer).to_contain_text(SCRIPT)
        expect(page.locator(".card-title").first).to_contain_text(f"{IMG} {SCRIPT} Lighthouse notes")
        page.locator(".card.is-answer .btn-source").click()
        dialog = page.locator("dialog.doc")
        expect(dialog.locator(".doc-title")).to_contain_text(IMG)
        expect(dialog.locator(".doc-text")).to_contain_text("<iframe src=javascript:alert(3)></iframe>")
        expect(dialog.locator(".doc-text")).to_contain_text("<b>bold</b> &amp;")
        expect(dialog.locator("mark.cited")).to_contain_text(f"seventeen cats every morning at dawn. {IMG}")
        page.screenshot(path=str(SHOTS / "widget-xss-document.png"))
        page.keyboard.press("Escape")
        page.locator(".card.is-answer .btn-context").click()
        expect(page.locator(".card.is-answer .btn-context")).to_have_attribute("aria-expanded", "true")
        page.wait_for_timeout(500)  # let any injected handler (there must be none) fire
        markup = page.evaluate(
            """() => { const host = document.querySelector(window.QADocsChat.tagName);
                       return host.shadowRoot.querySelectorAll('img, script, iframe, b').length
                              + document.querySelectorAll('img, iframe, b').length; }"""
        )
        assert markup == 0
    watch = page.watch  # type: ignore[attr-defined]
    assert watch.dialogs == []
    assert watch.console_errors == []


def test_small_screen_and_dark_mode(browser: Browser, embed: dict[str, str], live_server: str) -> None:
    """360 px wide: the panel fits with no sideways scroll; dark mode renders dark."""
    for scheme in ("light", "dark"):
        ctx = browser.new_context(viewport={"width": 360, "height": 740}, color_scheme=scheme)
        ctx.set_default_timeout(TIMEOUT_MS)
        try:
            page = ctx.new_page()
            watch = Watch(page)
            page.goto(embed["host"] + "/host.html")
            open_widget(page)
            panel = page.locator(".panel")
            if scheme == "dark":
                page.screenshot(path=str(SHOTS / "widget-360-empty-dark.png"))
            ask(page, Q1)
            expect(answers(page)).to_contain_text("nine")
            box = panel.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
            no_horizontal_scroll(page)
            background = panel.evaluate("p => getComputedStyle(p).backgroundColor")
            assert (luminance(background) < 0.2) == (scheme == "dark"), background
            page.screenshot(path=str(SHOTS / f"widget-360-{scheme}.png"))

            page.goto(live_server + "/")
            ask(page, Q1)
            expect(answers(page)).to_contain_text("nine")
            no_horizontal_scroll(page)
            page.screenshot(path=str(SHOTS / f"page-360-{scheme}.png"))
            assert watch.page_errors == []

            if scheme == "dark":  # the widget on a desktop-sized host page, dark
                page.set_viewport_size({"width": 1100, "height": 800})
                page.goto(embed["host"] + "/host.html")
                open_widget(page)
                ask(page, Q1)
                expect(answers(page)).to_contain_text("nine")
                page.screenshot(path=str(SHOTS / "widget-open-dark.png"))
        finally:
            ctx.close()


def test_conversation_survives_reload_and_clear_empties_it(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    ask(page, Q1)
    expect(answers(page)).to_contain_text("nine")
    page.locator("textarea").fill("an unsent draft")
    page.wait_for_timeout(400)  # the draft is saved shortly after typing stops

    page.reload()
    expect(answers(page)).to_contain_text("nine")
    expect(page.locator(".msg.user")).to_have_text(re.compile("G60 corridor"))
    expect(page.locator(".card").first).to_be_visible()
    expect(page.locator("textarea")).to_have_value("an unsent draft")
    expect(page.locator(".empty")).to_be_hidden()

    page.locator(".clear").click()
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator(".empty")).to_be_visible()
    expect(page.locator(".chip").first).to_be_visible()
    expect(page.locator(".clear")).to_be_disabled()
    page.screenshot(path=str(SHOTS / "page-empty-light.png"))
    page.reload()
    expect(page.locator(".chip").first).to_be_visible()
    expect(page.locator(".msg")).to_have_count(0)
