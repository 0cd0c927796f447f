"""The chat page with a model writing the answers, in a real Chromium: the text streams in as
it is written, then a sentence no passage supports is struck out (tests/fake_llm.py is the
model server, scripted, over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from qa.config import Settings
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.e2e import test_browser as chromium
from tests.e2e.test_browser import Q1, answers, ask, shot
from tests.fake_llm import FakeModelServer, Script, fake_model_server, passage_number
from tests.helpers import serve_in_thread

pytestmark = pytest.mark.browser
# the Chromium, context and page fixtures of the chat page's tests
browser, context, page = chromium.browser, chromium.context, chromium.page

NINE = "The seven-year-old G60 Corridor connects nine cities"


@pytest.fixture(scope="module")
def model_server() -> Iterator[FakeModelServer]:
    with fake_model_server() as server:
        yield server


@pytest.fixture(scope="module")
def writing_server(
    seed_settings: Settings, seed_service: QAService, model_server: FakeModelServer
) -> Iterator[str]:
    settings = make_settings(
        seed_settings.index_dir, llm_url=model_server.base_url, llm_model="fake", llm_timeout_s=20
    )
    with serve_in_thread(create_app(settings, seed_service)) as base:
        yield base


def _reply(messages: list[dict[str, Any]]) -> str:
    n = passage_number(messages, NINE)
    return (
        f"The G60 Corridor connects nine cities [{n}]. "
        f"It has a purple flag with a golden dragon on it [{n}]. "
        f"Jiaxing, Hangzhou, Jinhua and Huzhou are in Zhejiang Province [{n}]."
    )


def test_generated_answer_streams_then_strikes_out(
    page: Page, writing_server: str, model_server: FakeModelServer
) -> None:
    model_server.answer(Script(_reply, piece_delay_s=0.15))
    page.goto(writing_server + "/")
    ask(page, Q1)

    # the text shows while the model writes it, before the check
    writing = page.locator(".msg.streaming .bubble")
    expect(writing).to_contain_text("connects nine")
    expect(page.locator(".caret")).to_have_count(1)
    expect(page.locator("s.retracted")).to_have_count(0)
    shot(page, "page-generated-streaming.png")

    # then the checked answer: the made-up sentence struck out, the others cited
    struck = page.locator("s.retracted")
    expect(struck).to_contain_text("It has a purple flag with a golden dragon on it")
    answer = answers(page)
    expect(answer).to_contain_text("The G60 Corridor connects nine cities")
    expect(answer).to_contain_text("Jinhua and Huzhou are in Zhejiang Province")
    expect(page.locator(".gen-notice")).to_contain_text("1 sentence")
    expect(page.locator(".msg.streaming")).to_have_count(0)
    expect(page.locator(".scroller")).to_have_attribute("aria-busy", "false")
    assert "[" not in (struck.text_content() or "")  # markers are buttons, not text
    shot(page, "page-generated-checked.png")
    page.locator(".answer-text .cite").first.click()
    expect(page.locator(".card:focus")).to_have_count(1)

    # the conversation survives a reload with the struck-out sentence
    page.reload()
    expect(page.locator("s.retracted")).to_contain_text("purple flag")
    assert page.watch.console_errors == []  # type: ignore[attr-defined]


def test_abstention_is_not_streamed(
    page: Page, writing_server: str, model_server: FakeModelServer
) -> None:
    model_server.answer(Script("Bake it at 250 degrees [1]."))
    page.goto(writing_server + "/")
    ask(page, "How do I bake sourdough bread at home?")
    expect(page.locator(".notice")).to_contain_text("don't answer")
    expect(page.locator("s.retracted")).to_have_count(0)
    assert model_server.requests == []
