"""The chat page's sources view for an admin (issue 18), in a real Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.e2e import test_browser as shared
from tests.e2e.test_browser import IMG, Page, expect, shot
from tests.helpers import serve_in_thread

pytestmark = pytest.mark.browser
browser = shared.browser
context = shared.context
page = shared.page
KEY = "sources-page-key-0123456789"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Any:
    """A server with the admin key over a folder with a good file, a broken one whose name is
    markup, and one left out by .qaignore."""
    root = tmp_path_factory.mktemp("sources-page")
    folder = root / "share"
    folder.mkdir()
    (folder / "hours.md").write_text(
        "# Hours\n\nThe reading room opens at nine and closes at six on weekdays.\n"
    )
    (folder / f"{IMG}.txt").write_bytes(b"binary\x00data")
    (folder / "notes.txt").write_text("Notes\n\nLeft out on purpose by the ignore file.\n")
    (folder / ".qaignore").write_text("notes.txt\n")
    settings = make_settings(root / "index", api_key=SecretStr(KEY))
    service = QAService(settings, embedder)
    service.index([folder], "default")
    with serve_in_thread(create_app(settings, service)) as base:
        yield base


def test_admin_sees_sources_failures_first(page: Page, site: Any) -> None:
    base = site
    page.goto(base + "/")
    expect(page.locator("qa-docs-chat")).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(page.locator(".qa-sources")).to_have_count(0)  # a reader sees nothing of it
    page.goto(base + "/admin")
    page.get_by_label("Admin key").fill(KEY)  # signing in keeps the key in this tab
    page.get_by_role("button", name="Show report").click()
    page.get_by_role("link", name="Back to the chat").click()
    view = page.locator(".qa-sources")
    expect(view).to_contain_text("1 failed, 1 skipped, 1 indexed")
    view.locator("summary").click()
    rows = view.locator(".qa-source")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("failed")
    expect(rows.first.locator(".qa-name")).to_have_text(f"share/{IMG}.txt")  # as text
    expect(rows.first).to_contain_text("binary file")
    expect(rows.nth(1)).to_contain_text("ignored by share/.qaignore")
    shot(page, "sources-view.png")
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert page.watch.dialogs == []  # type: ignore[attr-defined]
    expect(page.locator("qa-docs-chat")).to_be_visible()  # the chat is still there


def test_a_wrong_key_shows_nothing(page: Page, site: Any, tmp_path: Path) -> None:
    page.goto(site + "/admin")
    page.evaluate("() => sessionStorage.setItem('qa-admin-key', 'wrong')")
    page.goto(site + "/")
    page.wait_for_load_state("networkidle")
    expect(page.locator(".qa-sources")).to_have_count(0)
