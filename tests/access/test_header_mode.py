"""QA_AUTH=header over a real server: identity headers believed from a trusted proxy only;
QA_PUBLIC_READ; QA_AUTH=none keeps today's behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from qa.http.app import create_app
from qa.service import QAService
from tests.access.conftest import ENG_TEXT, HR_TEXT, settings_of
from tests.helpers import serve_in_thread

HR_WORDS = HR_TEXT.split(".")[0]
ENG_WORDS = ENG_TEXT.split(".")[0]


@contextmanager
def _server(index: Path, service: QAService, **settings: object) -> Iterator[str]:
    with serve_in_thread(create_app(settings_of(index, **settings), service)) as base:
        yield base


def _search(base: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(
        f"{base}/v1/search", params={"q": "salary", "top_k": 10}, headers=headers, timeout=60
    )


def test_headers_from_a_trusted_proxy(access_index: Path, access_service: QAService) -> None:
    with _server(access_index, access_service, auth="header", trusted_proxies="127.0.0.1") as base:
        hr = _search(base, {"X-Forwarded-User": "ann", "X-Forwarded-Groups": "hr, staff"})
        assert hr.status_code == 200 and HR_WORDS in hr.text and ENG_WORDS not in hr.text
        eng = _search(base, {"X-Forwarded-User": "ben", "X-Forwarded-Groups": "eng"})
        assert ENG_WORDS in eng.text and HR_WORDS not in eng.text
        assert _search(base, {}).status_code == 401  # no user: nobody
        ben = {"X-Forwarded-User": "ben", "X-Forwarded-Groups": "eng"}
        hidden = httpx.get(f"{base}/v1/documents/hr/salaries.md", headers=ben, timeout=30)
        missing = httpx.get(f"{base}/v1/documents/hr/nothing.md", headers=ben, timeout=30)
        assert hidden.status_code == missing.status_code == 404
        listed = httpx.get(f"{base}/v1/collections", headers=ben, timeout=30).json()
        counts = {c["name"]: c["documents"] for c in listed["collections"]}
        assert counts == {"team": 3, "other": 1}  # eng.md, kites, public.md; other's public.md
        page = httpx.get(f"{base}/", timeout=30)
        assert page.status_code == 200  # the chat page itself holds no documents


def test_headers_from_anyone_else_are_ignored(
    access_index: Path, access_service: QAService
) -> None:
    with _server(
        access_index, access_service, auth="header", trusted_proxies="10.9.8.7/32"
    ) as base:
        spoofed = {"X-Forwarded-User": "ann", "X-Forwarded-Groups": "hr"}
        assert _search(base, spoofed).status_code == 401
    with _server(
        access_index, access_service, auth="header", trusted_proxies="10.9.8.7", public_read=True
    ) as base:
        spoofed = _search(base, {"X-Forwarded-User": "ann", "X-Forwarded-Groups": "hr,eng"})
        assert spoofed.status_code == 200  # read as an anonymous caller: public documents only
        assert HR_WORDS not in spoofed.text and ENG_WORDS not in spoofed.text
        assert "people team" in spoofed.text


def test_none_mode_reads_everything(access_index: Path, access_service: QAService) -> None:
    with _server(access_index, access_service) as base:
        everything = _search(base, {"X-Forwarded-User": "x", "X-Forwarded-Groups": "nothing"})
        assert HR_WORDS in everything.text and ENG_WORDS in everything.text
        write = httpx.post(
            f"{base}/v1/collections/team/documents",
            json={"id": "n", "text": "x"},
            timeout=30,
        )
        assert write.status_code == 403 and write.json()["error"]["code"] == "write_disabled"
