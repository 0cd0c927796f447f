"""The chat page (``/``) and the embeddable widget (``/widget.js``) driven in a real Chromium.

Playwright's sync API against real uvicorn servers (``tests.helpers.serve_in_thread``); the host
pages of "other sites" are served by a small ``http.server`` on another port (another origin).
Screenshots for people to look at go to ``test-output/screenshots/``.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import ROOT, SEED_TITLE, free_port, serve_in_thread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":  # CI must run the browser tests, never skip them
        raise RuntimeError(
            "Chromium is not installed at /usr/bin/chromium; .ci/run installs it with apt"
        )
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
pytest.importorskip("playwright.sync_api")
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    expect,
    sync_playwright,
)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000
SHOTS = ROOT / "test-output" / "screenshots"
HOST_TEMPLATE = Path(__file__).parent / "browser_pages" / "host.html"

Q1 = "How many cities does the G60 corridor connect?"
Q2 = "Which of them are in Zhejiang?"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
HOTPINK = "rgb(255, 105, 180)"  # the host page's buttons
RED = "rgb(255, 0, 0)"  # the host page's text

expect.set_options(timeout=TIMEOUT_MS)

# The focused element, looking through shadow roots.
ACTIVE_JS = """() => {
  let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  if (!a) return null;
  return {tag: a.tagName.toLowerCase(), cls: String(a.className || ''),
          text: (a.textContent || '').trim().slice(0, 80)};
}"""

# Elements that would mean document text was parsed as HTML.
MARKUP_JS = """() => {
  const host = document.querySelector(window.QADocsChat.tagName);
  return host.shadowRoot.querySelectorAll('img, script, iframe, b').length
       + document.querySelectorAll('img, iframe, b').length;
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
        page.on("console", self._console)
        page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    tab = context.new_page()
    tab.watch = Watch(tab)  # type: ignore[attr-defined]
    yield tab
    errors = tab.watch.page_errors  # type: ignore[attr-defined]
    assert errors == [], f"uncaught exceptions in the page: {errors}"


class _PagesHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
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

    def log_message(self, format: str, *args: Any) -> None:
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
    values = {"__ENDPOINT__": endpoint, "__ATTRS__": attrs, "__BEFORE__": before}
    for marker, value in values.items():
        html = html.replace(marker, value)
    return html


@dataclass
class Embed:
    host: str  # the other site's origin
    api: str  # a qa server that allows ``host``
    pages: dict[str, str] = field(default_factory=dict)  # what ``host`` serves


@pytest.fixture(scope="module")
def embed(seed_settings: Settings, seed_service: QAService) -> Iterator[Embed]:
    """A host site on one port, and a qa server on another that allows that site's origin."""
    pages: dict[str, str] = {}
    with static_host(pages) as host:
        settings = make_settings(seed_settings.index_dir, cors_origins=[host])
        with serve_in_thread(create_app(settings, seed_service)) as api:
            starters = f"{Q1}|What brand is the Haier factory in Songjiang for?"
            pages["/host.html"] = host_page(api, attrs=f'data-starters="{starters}"')
            yield Embed(host, api, pages)


# ---------------------------------------------------------------------- helpers
def ask(page: Page, question: str) -> None:
    box = page.locator("textarea")
    box.fill(question)
    box.press("Enter")


def answers(page: Page) -> Locator:
    return page.locator(".answer-text")


def shot(page: Page, name: str) -> None:
    """A screenshot for people to look at (animations finished, no hover)."""
    page.mouse.move(1, 1)
    page.screenshot(path=str(SHOTS / name), animations="disabled")


def open_widget(page: Page) -> None:
    """Open the launcher's panel (it may already be open: the open state survives navigation)."""
    root = page.locator(".root")
    root.wait_for(state="attached")
    if root.get_attribute("data-open") != "true":
        page.locator(".launcher").click()
    expect(page.locator(".panel")).to_be_visible()


def press_until(
    page: Page, key: str, reached: Callable[[dict[str, str]], bool], limit: int = 40
) -> dict[str, str]:
    """Press ``key`` until the focused element (through shadow roots) is the one wanted."""
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        now = page.evaluate(ACTIVE_JS)
        seen.append(now)
        if now and reached(now):
            return now
    raise AssertionError(f"focus never reached the target; it went through {seen}")


def is_focused(locator: Locator) -> bool:
    return bool(locator.evaluate("e => e.matches(':focus')"))


def no_horizontal_scroll(page: Page) -> None:
    outer = page.evaluate("(d => [d.scrollWidth, d.clientWidth])(document.documentElement)")
    assert outer[0] <= outer[1], f"the page scrolls sideways: {outer}"
    inner = page.locator(".scroller").evaluate("s => [s.scrollWidth, s.clientWidth]")
    assert inner[0] <= inner[1], f"the conversation scrolls sideways: {inner}"


def luminance(css_color: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def error_json(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


# ---------------------------------------------------------------------- tests
def test_answer_with_citations_and_source(page: Page, live_server: str) -> None:
    """The chat page: "nine", a card titled like the article, its context, its source span."""
    page.goto(live_server + "/")
    expect(page.locator(".chip").first).to_be_visible()  # starters from /v1/config
    expect(page.locator(".heading")).to_have_text("Ask the documents")
    ask(page, Q1)

    expect(answers(page)).to_contain_text("nine")
    expect(page.locator(".scroller")).to_have_attribute("aria-busy", "false")
    title = page.locator(".card-title", has_text=SEED_TITLE)
    expect(page.locator(".card").filter(has=title).first).to_be_visible()
    answer_card = page.locator(".card.is-answer")
    expect(answer_card.locator(".card-meta")).to_contain_text("Paragraph")
    expect(answer_card.locator("mark.ans")).to_contain_text("nine cities")

    # the citation marker [1] leads to its card
    page.locator(".cite").first.click()
    expect(answer_card).to_be_focused()

    # more context, from /v1/passages/{id}
    answer_card.locator(".btn-context").click()
    expect(answer_card.locator(".btn-context")).to_have_attribute("aria-expanded", "true")
    expect(answer_card.locator(".ctx-before p").first).to_be_visible()
    shot(page, "page-answer-light.png")

    # the whole document, from /v1/documents/{id}: the cited span marked and scrolled into view
    answer_card.locator(".btn-source").click()
    dialog = page.locator("dialog.doc")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".doc-title")).to_have_text(SEED_TITLE)
    cited = dialog.locator("mark.cited")
    expect(cited).to_contain_text("The seven-year-old G60 Corridor connects nine cities")
    expect(cited.locator("mark.ans")).to_contain_text("nine cities")
    expect(cited).to_be_in_viewport()
    shot(page, "page-document-light.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(answer_card.locator(".btn-source")).to_be_focused()

    page.emulate_media(color_scheme="dark")
    panel_bg = page.locator(".panel").evaluate("p => getComputedStyle(p).backgroundColor")
    assert luminance(panel_bg) < 0.2, panel_bg
    shot(page, "page-answer-dark.png")
    assert page.watch.console_errors == []  # type: ignore[attr-defined]


def test_follow_up_carries_history(page: Page, live_server: str) -> None:
    """The follow-up goes out with the first question and its answer; "thinking" shows meanwhile."""
    page.goto(live_server + "/")
    with page.expect_response("**/v1/ask") as first:
        ask(page, Q1)
    first_answer = first.value.json()["answer"]["text"]
    expect(answers(page)).to_have_count(1)

    held: list[Any] = []
    page.route("**/v1/ask", lambda route: held.append(route))  # hold it until looked at
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
    assert 1 <= body["top_k"] <= 50
    held[0].continue_()
    page.unroute("**/v1/ask")

    expect(answers(page)).to_have_count(2)
    expect(answers(page).nth(1)).to_contain_text("Zhejiang")
    expect(page.locator(".thinking")).to_have_count(0)
    expect(page.locator("textarea")).to_be_focused()
    expect(page.locator(".msg.user")).to_have_count(2)


def test_no_answer_is_said_plainly(page: Page, live_server: str) -> None:
    """answer null: the notice, the closest passages; no passages at all: say so."""
    page.goto(live_server + "/")

    def unanswered(route: Any) -> None:
        reply = route.fetch().json()
        reply.update(answer=None, notice="The documents don't answer this question.")
        route.fulfill(status=200, content_type="application/json", body=json.dumps(reply))

    page.route("**/v1/ask", unanswered)
    ask(page, "Who won the 1998 world cup?")
    notice = page.locator(".bubble.notice")
    expect(notice).to_have_text("The documents don't answer this question.")
    expect(page.locator(".sources-label")).to_have_text("Closest passages")
    expect(page.locator(".card").first).to_be_visible()
    expect(page.locator(".card.is-answer")).to_have_count(0)
    page.unroute("**/v1/ask")

    nothing = {
        "query": "x",
        "answer": None,
        "notice": None,
        "passages": [],
        "collection": "default",
        "generation": "g",
        "timings_ms": {},
    }
    page.route(
        "**/v1/ask",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(nothing)
        ),
    )
    ask(page, "zzzz qqqq")
    expect(notice.nth(1)).to_have_text("Nothing in the documents matches this question.")
    expect(page.locator(".live")).to_contain_text("Nothing in the documents matches")


def test_keyboard_only(page: Page, embed: Embed) -> None:
    """Tab to the launcher, Enter opens, Enter asks, reach a card's source, Escape twice."""
    page.goto(embed.host + "/host.html")
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
    press_until(page, "Shift+Tab", lambda a: "btn-source" in a["cls"] and is_focused(first_source))
    page.keyboard.press("Enter")
    dialog = page.locator("dialog.doc")
    expect(dialog).to_be_visible()
    expect(dialog.locator("mark.cited")).to_be_in_viewport()
    page.keyboard.press("Escape")  # closes the document, not the panel
    expect(dialog).to_be_hidden()
    expect(page.locator(".panel")).to_be_visible()
    expect(first_source).to_be_focused()

    page.keyboard.press("Escape")  # closes the panel; focus goes back to the launcher
    expect(page.locator(".panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".panel")).to_be_visible()
    expect(page.locator("textarea")).to_be_focused()
    expect(answers(page)).to_have_count(1)


def test_error_when_server_stops_then_retry(
    page: Page, seed_settings: Settings, seed_service: QAService
) -> None:
    """A stopped server: an error and Retry, the question kept in the input; Retry answers later."""
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
    shot(page, "page-error-light.png")

    with serve_in_thread(create_app(seed_settings, seed_service), port=port):
        error.locator(".retry").click()
        expect(answers(page)).to_contain_text("nine")
        expect(page.locator(".error-box")).to_have_count(0)
        expect(page.locator(".msg.user")).to_have_count(1)
        expect(page.locator("textarea")).to_have_value("")

        # a 5xx shows the server's message, and the question is kept
        page.route(
            "**/v1/ask",
            lambda route: route.fulfill(
                status=503,
                content_type="application/json",
                body=error_json("index_unavailable", "the index is being rebuilt"),
            ),
        )
        ask(page, Q2)
        expect(error).to_contain_text("The service ran into a problem")
        expect(error).to_contain_text("The index is being rebuilt.")
        expect(page.locator("textarea")).to_have_value(Q2)
        page.unroute("**/v1/ask")

        # 429: how long to wait, from Retry-After
        page.route(
            "**/v1/ask",
            lambda route: route.fulfill(
                status=429,
                content_type="application/json",
                headers={"Retry-After": "7"},
                body=error_json("rate_limited", "too many requests; try again in 7 s"),
            ),
        )
        page.keyboard.press("Enter")  # resend from the input
        expect(error).to_contain_text("Try again in 7 seconds.")
        expect(error).to_have_count(1)
        expect(page.locator("textarea")).to_have_value(Q2)
        page.unroute("**/v1/ask")

        page.keyboard.press("Enter")  # and now it goes through: the error goes away
        expect(answers(page)).to_have_count(2)
        expect(error).to_have_count(0)


def test_embedded_cross_origin_allowed_and_refused(
    page: Page, embed: Embed, live_server: str
) -> None:
    """Another site's page: answers when its origin is allowed, a clear error when it is not."""
    page.goto(embed.host + "/host.html")
    page.locator(".launcher").click()
    chips = page.locator(".chip")  # data-starters, "|"-separated
    expect(chips).to_have_count(2)
    expect(page.locator(".heading")).to_have_text("Ask the docs")  # data-title
    chips.first.click()
    expect(answers(page)).to_contain_text("nine")
    expect(page.locator(".card-title").first).to_have_text(SEED_TITLE)
    # the host's CSS (hotpink buttons, red serif text) does not reach inside
    send = page.locator(".send").evaluate("b => getComputedStyle(b).backgroundColor")
    assert send != HOTPINK
    title = page.locator(".card-title").first.evaluate("t => getComputedStyle(t).color")
    assert title != RED
    shot(page, "widget-open-light.png")
    assert page.watch.console_errors == []  # type: ignore[attr-defined]

    # live_server allows no other origin; this host page also already uses the element's name
    clash = "<script>customElements.define('qa-docs-chat', class extends HTMLElement {});</script>"
    embed.pages["/refused.html"] = host_page(live_server, before=clash)
    page.goto(embed.host + "/refused.html")
    tag = page.evaluate("window.QADocsChat.tagName")
    assert tag.startswith("qa-docs-chat-"), tag
    page.locator(".launcher").click()
    ask(page, Q1)
    expect(page.locator(".error-box")).to_contain_text("Can't reach")
    expect(answers(page)).to_have_count(0)
    expect(page.locator(".card")).to_have_count(0)
    expect(page.locator("textarea")).to_have_value(Q1)


def test_document_text_is_never_html(
    page: Page, embed: Embed, tmp_path: Path, embedder: Any
) -> None:
    """A document full of markup shows it literally and runs nothing."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "unsafe notes.txt").write_text(
        f"{IMG} {SCRIPT} Lighthouse notes\n\n"
        f"The lighthouse keeper feeds seventeen cats every morning at dawn. {IMG} {SCRIPT}\n\n"
        "The lamp of the lighthouse was replaced in 1998 by an electric one.\n\n"
        "Visitors may climb the tower on Sundays. "
        "<b>bold</b> &amp; <iframe src=javascript:alert(3)></iframe>\n",
        encoding="utf-8",
    )
    index_dir = tmp_path / "index"
    service = QAService(make_settings(index_dir), embedder)
    service.index([folder], "xss")
    # a document added through the write API can carry markup in its title and source too
    service.add_text(
        "xss",
        "feeding-log",
        f"Feeding log {IMG}",
        "The keeper writes down the feeding times of the cats in a blue notebook.",
        f"ledger {IMG}",
    )
    app = create_app(make_settings(index_dir, cors_origins=[embed.host]), service)
    with serve_in_thread(app) as api:
        question = "How many cats does the lighthouse keeper feed?"
        starters = json.dumps([question]).replace('"', "&quot;")
        attrs = f'data-collection="xss" data-open="true" data-starters="{starters}"'
        embed.pages["/xss.html"] = host_page(api, attrs=attrs)
        page.goto(embed.host + "/xss.html")
        expect(page.locator(".panel")).to_be_visible()  # data-open
        page.locator(".chip").first.click()  # data-starters as JSON
        answer = answers(page)
        expect(answer).to_contain_text("seventeen cats")
        expect(answer).to_contain_text(IMG)
        expect(answer).to_contain_text(SCRIPT)
        card = page.locator(".card.is-answer")
        expect(card.locator(".card-title")).to_contain_text(f"{IMG} {SCRIPT} Lighthouse notes")

        card.locator(".btn-source").click()
        dialog = page.locator("dialog.doc")
        expect(dialog.locator(".doc-title")).to_contain_text(IMG)
        text = dialog.locator(".doc-text")
        expect(text).to_contain_text("<b>bold</b> &amp; <iframe src=javascript:alert(3)></iframe>")
        expect(dialog.locator("mark.cited")).to_contain_text(f"every morning at dawn. {IMG}")
        shot(page, "widget-xss-document.png")
        page.keyboard.press("Escape")

        # the middle paragraph's context: the markup around it, as text too
        middle = page.locator(".card", has=page.locator(".card-meta", has_text="Paragraph 2"))
        middle.locator(".btn-context").click()
        expect(middle.locator(".btn-context")).to_have_attribute("aria-expanded", "true")
        expect(middle.locator(".ctx-before p")).to_contain_text(f"at dawn. {IMG} {SCRIPT}")
        expect(middle.locator(".ctx-after p")).to_contain_text("<iframe src=javascript:alert(3)>")

        ask(page, "Where does the keeper write down the feeding times?")
        logged = page.locator(
            ".card", has=page.locator(".card-title", has_text="Feeding log")
        ).first
        expect(logged.locator(".card-title")).to_contain_text(f"Feeding log {IMG}")
        expect(logged.locator(".card-meta")).to_contain_text(f"ledger {IMG}")
        page.wait_for_timeout(500)  # give any injected handler (there must be none) time to fire
        assert page.evaluate(MARKUP_JS) == 0
    watch = page.watch  # type: ignore[attr-defined]
    assert watch.dialogs == []
    assert watch.console_errors == []


def test_small_screen_and_dark_mode(browser: Browser, embed: Embed, live_server: str) -> None:
    """360 px wide: the panel fits with no sideways scroll; dark mode renders dark."""
    for scheme in ("light", "dark"):
        ctx = browser.new_context(viewport={"width": 360, "height": 740}, color_scheme=scheme)
        ctx.set_default_timeout(TIMEOUT_MS)
        try:
            page = ctx.new_page()
            watch = Watch(page)
            page.goto(embed.host + "/host.html")
            open_widget(page)
            panel = page.locator(".panel")
            if scheme == "dark":
                shot(page, "widget-360-empty-dark.png")
            ask(page, Q1)
            expect(answers(page)).to_contain_text("nine")
            box = panel.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
            no_horizontal_scroll(page)
            background = panel.evaluate("p => getComputedStyle(p).backgroundColor")
            assert (luminance(background) < 0.2) == (scheme == "dark"), background
            shot(page, f"widget-360-{scheme}.png")

            page.goto(live_server + "/")  # the chat page, too
            ask(page, Q1)
            expect(answers(page)).to_contain_text("nine")
            no_horizontal_scroll(page)
            shot(page, f"page-360-{scheme}.png")

            if scheme == "dark":  # the widget on a desktop-sized host page, dark
                page.set_viewport_size({"width": 1100, "height": 800})
                page.goto(embed.host + "/host.html")
                open_widget(page)
                page.locator(".clear").click()
                expect(page.locator(".msg")).to_have_count(0)
                ask(page, Q1)
                expect(answers(page)).to_contain_text("nine")
                shot(page, "widget-open-dark.png")
            assert watch.page_errors == []
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

    # a question still waiting for its answer when the page reloads comes back into the input
    page.locator("textarea").fill("")
    page.route("**/v1/ask", lambda route: None)  # never answered
    ask(page, Q2)
    expect(page.locator(".thinking")).to_be_visible()
    page.reload()
    page.unroute("**/v1/ask")
    expect(page.locator("textarea")).to_have_value(Q2)
    expect(page.locator(".msg.user")).to_have_count(1)
    expect(answers(page)).to_have_count(1)

    page.locator(".clear").click()
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator(".empty")).to_be_visible()
    expect(page.locator(".chip").first).to_be_visible()
    expect(page.locator(".clear")).to_be_disabled()
    expect(page.locator("textarea")).to_be_focused()
    shot(page, "page-empty-light.png")
    page.reload()
    expect(page.locator(".chip").first).to_be_visible()
    expect(page.locator(".msg")).to_have_count(0)


def test_document_ids_with_dot_segments_stay_one_path(
    page: Page, tmp_path: Path, embedder: Any
) -> None:
    """An id like ``guide/../../v1/collections`` is fetched as one encoded segment: the browser
    never resolves its ``..`` parts into another path of the service."""
    folder = tmp_path / "docs"
    folder.mkdir()
    record = {
        "_id": "guide/../../v1/collections",
        "title": "Dot guide",
        "text": "The ferry to the island leaves every forty minutes from pier nine.",
    }
    (folder / "corpus.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    settings = make_settings(index_dir, collection="dots")
    service = QAService(settings, embedder)
    service.index([folder], "dots")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    with serve_in_thread(create_app(settings, service)) as api:
        page.goto(api + "/")
        ask(page, "How often does the ferry leave?")
        expect(answers(page)).to_contain_text("forty minutes")
        page.locator(".card.is-answer .btn-source").click()
        dialog = page.locator("dialog.doc")
        expect(dialog.locator(".doc-text")).to_contain_text("every forty minutes")
    documents = [url for url in requested if "/v1/documents/" in url]
    assert documents and all("guide%2F..%2F..%2Fv1%2Fcollections" in url for url in documents), (
        documents
    )
    assert not any(url.split("?")[0].endswith("/v1/collections") for url in requested), requested
