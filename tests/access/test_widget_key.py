"""The widget on another site with a key (``data-key``), in a real Chromium: it answers from
the key's documents only; without the key the same page is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.access import Key, KeyStore
from qa.http.app import create_app
from qa.service import QAService
from tests.access.conftest import HR_TEXT, settings_of
from tests.helpers import serve_in_thread

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page

from tests.e2e.test_browser import (
    answers,
    ask,
    browser,
    context,
    expect,
    host_page,
    page,
    static_host,
)

pytestmark = pytest.mark.browser
__all__ = ["browser", "context", "page"]  # fixtures used by name


def test_widget_sends_its_key(page: Page, access_index: Path, access_service: QAService) -> None:
    pages: dict[str, str] = {}
    with static_host(pages) as host:
        key = Key("site", "", "read", ["eng"], ["team"], [host], rate="600/min")
        token = KeyStore(access_index).create(key)
        settings = settings_of(access_index, auth="keys", cors_origins=[host])
        with serve_in_thread(create_app(settings, access_service)) as api:
            keyed = f'data-collection="team" data-key="{token}" data-open="true"'
            pages["/keyed.html"] = host_page(api, attrs=keyed)
            pages["/bare.html"] = host_page(api, attrs='data-collection="team" data-open="true"')
            page.goto(host + "/keyed.html")
            ask(page, "Who sets the salary bands?")
            expect(page.locator(".card").first).to_be_visible()
            cards = page.locator(".messages").inner_text()
            assert "build server" in cards.lower() or "kite" in cards.lower()
            assert HR_TEXT.split(".")[0] not in cards
            page.goto(host + "/bare.html")
            ask(page, "Who sets the salary bands?")
            # refused with the server's reason; only the conversation restored from before
            expect(page.locator(".error-box")).to_contain_text("credentials")
            expect(answers(page)).to_have_count(1)
