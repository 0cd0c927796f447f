"""Metadata filters: each field, combinations (AND across fields, OR within one), no match
(no passages and a notice, never unfiltered results), unknown fields (422), and top_k filled
from inside the filter even when the best passages are outside it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from qa.errors import InvalidInput
from qa.http.app import create_app
from qa.search.scope import NO_MATCH_NOTICE, Scope, parse_filters
from qa.service import QAService
from tests.access.conftest import settings_of
from tests.helpers import serve_in_thread

QUESTION = "When is the salary review?"


def _documents(service: QAService, filters: dict, groups: frozenset[str] | None = None) -> set:
    scope = Scope(groups, parse_filters(filters))
    reply = service.search(QUESTION, "team", top_k=10, scope=scope)
    return {p.citation.document_id for p in reply.passages}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"document_id": "kites"}, {"kites"}),
        ({"document_id": ["kites", "eng.md"]}, {"kites", "eng.md"}),
        ({"source_prefix": "docs/hr/"}, {"hr/salaries.md"}),
        ({"format": "jsonl"}, {"kites"}),
        ({"title_contains": "OFFICE"}, {"public.md"}),
        ({"tags": ["deploy", "hobby"]}, {"eng.md", "kites"}),
        ({"date": ["2024-01-01", "2024-12-31"]}, {"eng.md"}),
        ({"date": "..2023-12-31"}, {"kites"}),
        ({"format": "markdown", "tags": "infra"}, {"eng.md"}),  # AND across fields
        ({"format": ["jsonl", "markdown"], "title_contains": "kite"}, {"kites"}),
    ],
)
def test_each_field_and_combinations(
    access_service: QAService, filters: dict, expected: set
) -> None:
    assert _documents(access_service, filters) == expected


def test_filters_and_permissions_together(access_service: QAService) -> None:
    assert _documents(access_service, {"format": "markdown"}, frozenset({"hr"})) == {
        "hr/salaries.md",
        "public.md",
    }


def test_no_match_gives_nothing_and_a_notice(access_service: QAService) -> None:
    scope = Scope(None, parse_filters({"tags": "no-such-tag"}))
    reply = access_service.ask(QUESTION, "team", top_k=5, scope=scope)
    assert reply.passages == [] and reply.answer is None and reply.notice == NO_MATCH_NOTICE
    hidden = Scope(frozenset({"eng"}), parse_filters({"document_id": "hr/salaries.md"}))
    assert access_service.search(QUESTION, "team", scope=hidden).passages == []


def test_unknown_fields_and_bad_values() -> None:
    for raw in ({"colour": "red"}, {"page": "x..2"}, {"date": ["2024-13", None]}, {"tags": [1]}):
        with pytest.raises(InvalidInput):
            parse_filters(raw)


def test_top_k_is_filled_inside_the_filter(access_service: QAService) -> None:
    """The best unfiltered passage (the HR one) is outside: every result is inside, and as
    many as the filter holds."""
    unfiltered = access_service.search(QUESTION, "team", top_k=1)
    assert unfiltered.passages[0].citation.document_id == "hr/salaries.md"
    scope = Scope(None, parse_filters({"document_id": ["kites", "public.md", "eng.md"]}))
    reply = access_service.search(QUESTION, "team", top_k=3, scope=scope)
    assert len(reply.passages) == 3
    assert {p.citation.document_id for p in reply.passages} == {"kites", "public.md", "eng.md"}


def test_filters_over_http(access_index: Path, access_service: QAService) -> None:
    with serve_in_thread(create_app(settings_of(access_index), access_service)) as base:
        ask = httpx.post(
            f"{base}/v1/ask",
            json={"question": QUESTION, "filters": {"format": "jsonl"}},
            timeout=60,
        )
        assert {p["citation"]["document_id"] for p in ask.json()["passages"]} == {"kites"}
        search = httpx.get(
            f"{base}/v1/search",
            params={"q": QUESTION, "filters": '{"tags": "nothing"}'},
            timeout=60,
        )
        assert search.json()["passages"] == [] and search.json()["notice"] == NO_MATCH_NOTICE
        nothing = httpx.post(
            f"{base}/v1/ask",
            json={"question": QUESTION, "filters": {"tags": "nothing"}},
            timeout=60,
        ).json()
        assert nothing["passages"] == [] and nothing["notice"] == NO_MATCH_NOTICE
        unknown = httpx.post(
            f"{base}/v1/ask", json={"question": QUESTION, "filters": {"colour": "red"}}, timeout=60
        )
        assert unknown.status_code == 422 and "colour" in unknown.json()["error"]["message"]
        bad = httpx.get(f"{base}/v1/search", params={"q": "x", "filters": "[1]"}, timeout=60)
        assert bad.status_code == 422
