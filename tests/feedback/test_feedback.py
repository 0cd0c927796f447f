"""Feedback over HTTP: what is stored, who may read it, limits, concurrency with a
generation switch, the report, and the export read back by ``qa eval``."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from qa.encoding import Embedder
from qa.evaluation import evaluate, load_dataset
from qa.feedback import FEEDBACK
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import serve_in_thread

KEY = "feedback-admin-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
Q_CITIES = "How many cities does the G60 corridor connect?"
Q_BRAND = "What brand is the Haier factory for?"


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path, embedder: Embedder
) -> Any:
    """A private copy of the seed index, its service, and an app with an admin key."""
    index = tmp_path_factory.mktemp("feedback") / "index"
    shutil.copytree(seed_index_dir, index)
    settings = make_settings(index, api_key=KEY, feedback_max_comment_chars=50)
    service = QAService(settings, embedder)
    return settings, service, TestClient(create_app(settings, service))


def verdict(service: QAService, question: str, **extra: object) -> dict[str, object]:
    """The body a client sends about the reply it showed for ``question``."""
    reply = service.ask(question)
    answer = reply.answer
    body: dict[str, object] = {
        "question": question,
        "passage_ids": [p.passage_id for p in reply.passages],
        "generation": reply.generation,
        "answer": None
        if answer is None
        else {"passage_id": answer.passage_id, "start": answer.start, "end": answer.end},
    }
    return {**body, **extra}


def test_stored_fields_are_what_was_sent_and_admin_reads_them(setup: Any) -> None:
    _, service, client = setup
    history = [{"role": "user", "content": "Tell me about Songjiang."}]
    body = verdict(
        service,
        Q_CITIES,
        rating="not_helpful",
        reason="incomplete",
        comment="which cities?",
        history=history,
    )
    saved = client.post(
        "/v1/feedback", json=body, headers={"User-Agent": "spy", "X-Real-IP": "9.9.9.9"}
    )
    assert saved.status_code == 201, saved.text
    record = service.feedback.store("default").get(saved.json()["id"])
    assert record is not None
    stored = record.model_dump(mode="json")
    assert set(stored) == {
        "id",
        "created_at",
        "kind",
        "rating",
        "reason",
        "comment",
        "question",
        "history",
        "passage_ids",
        "answer",
        "collection",
        "generation",
    }
    assert (record.question, record.rating, record.reason, record.comment) == (
        Q_CITIES,
        "not_helpful",
        "incomplete",
        "which cities?",
    )
    assert [t.model_dump() for t in record.history] == history
    assert record.passage_ids == body["passage_ids"] and record.generation == body["generation"]
    assert record.collection == "default" and record.kind == "feedback"
    raw = (service.settings.collection_dir("default") / FEEDBACK).read_bytes()
    assert b"spy" not in raw and b"9.9.9.9" not in raw and b"testclient" not in raw

    assert client.get("/v1/feedback").status_code == 401
    assert client.get("/v1/feedback", headers={"Authorization": "Bearer wrong"}).status_code == 401
    page = client.get("/v1/feedback?limit=1", headers=AUTH).json()
    assert page["records"][0]["question"] == Q_CITIES and page["next_after"] is not None


def test_bad_feedback_is_refused_and_nothing_stored(setup: Any) -> None:
    _, service, client = setup
    before = service.feedback.store("default").count()
    too_long = verdict(service, Q_BRAND, rating="not_helpful", comment="x" * 51)
    error = client.post("/v1/feedback", json=too_long)
    assert error.status_code == 422 and "at most 50 characters" in error.json()["error"]["message"]
    for body in (
        {"question": " ", "rating": "helpful"},
        {"question": Q_BRAND, "rating": "great"},
        {"question": Q_BRAND, "rating": "helpful", "reason": "other"},
        {"question": Q_BRAND, "rating": "helpful", "generation": "../x"},
        {"question": Q_BRAND, "rating": "helpful", "collection": "nope"},
    ):
        response = client.post("/v1/feedback", json=body)
        assert 400 <= response.status_code < 500, (body, response.text)
        assert set(response.json()["error"]) == {"code", "message"}
    assert service.feedback.store("default").count() == before


def test_feedback_is_rate_limited_and_can_be_switched_off(
    tmp_path: Path, seed_index_dir: Path, embedder: Embedder
) -> None:
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    settings = make_settings(index, rate_limit_per_minute=6, rate_limit_burst=3)
    client = TestClient(create_app(settings, QAService(settings, embedder)))
    codes = [
        client.post("/v1/feedback", json={"question": Q_BRAND, "rating": "helpful"}).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [201, 201, 201] and codes[3:] == [429, 429]
    off = make_settings(index, feedback=False)
    client = TestClient(create_app(off, QAService(off, embedder)))
    refused = client.post("/v1/feedback", json={"question": Q_BRAND, "rating": "helpful"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "feedback_disabled"


def test_concurrent_posts_during_a_generation_switch(setup: Any) -> None:
    settings, service, _ = setup
    store = service.feedback.store("default")
    before = store.count()
    errors: list[str] = []
    with serve_in_thread(create_app(settings, service)) as base:

        def post(n: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                for i in range(10):
                    body = {"question": f"question {n}-{i}", "rating": "helpful"}
                    response = http.post("/v1/feedback", json=body)
                    if response.status_code != 201:
                        errors.append(response.text)

        threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        old = service.collection("default").generation
        service.add_text("default", "extra", "Extra", "Ferries cross the lake every hour.", None)
        for thread in threads:
            thread.join()
    assert errors == []
    assert service.collection("default").generation != old
    assert store.count() == before + 40  # every post kept, none lost to the switch
    assert (settings.collection_dir("default") / FEEDBACK).exists()


def test_report_groups_and_export_is_read_back_by_eval(
    setup: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.cli import app

    settings, service, client = setup
    for question in (Q_BRAND, "Which brand is Haier's factory making?"):
        client.post(
            "/v1/feedback",
            json=verdict(service, question, rating="not_helpful", reason="wrong_passage"),
        )
    client.post("/v1/feedback", json=verdict(service, Q_CITIES, rating="helpful"))
    client.post(
        "/v1/feedback",
        json=verdict(
            service,
            "Who won the 1998 world cup?",
            rating="not_helpful",
            reason="should_have_answered",
        ),
    )
    for module in ("qa.cli.feedback",):
        monkeypatch.setattr(f"{module}.open_service", lambda _settings: service)
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    runner = CliRunner()
    shown = runner.invoke(app, ["report", "-c", "default", "--since", "1d"])
    assert shown.exit_code == 0, shown.output
    assert "Which brand is Haier's factory making?" in shown.output  # grouped with its paraphrase
    assert "wrong passage" in shown.output or "wrong_passage" in shown.output

    out = tmp_path / "labelled.jsonl"
    exported = runner.invoke(app, ["feedback", "export", "-c", "default", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    data = load_dataset(out, collection="default")
    by_question = {q.text: q for q in data.questions}
    assert by_question[Q_CITIES].gold_snippets  # helpful: the answer sentence is gold
    assert set(by_question[Q_BRAND].gold_passages.values()) == {0}  # wrong passage: not relevant
    left = (tmp_path / "labelled.to-label.jsonl").read_text()
    assert "1998 world cup" in left and "1998" not in out.read_text()
    (report,) = evaluate(service, data, progress=False)
    assert report.metrics["ndcg@10"] is not None


def test_unanswered_questions_are_kept_only_when_asked_to(
    tmp_path: Path, seed_index_dir: Path, embedder: Embedder
) -> None:
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    question = {"question": "Who won the 1998 football world cup?"}
    for record, expected in ((False, 0), (True, 1)):
        settings = make_settings(index, record_unanswered=record)
        service = QAService(settings, embedder)
        reply = TestClient(create_app(settings, service)).post("/v1/ask", json=question).json()
        assert reply["answer"] is None
        assert service.feedback.store("default").count() == expected
    (kept,) = service.feedback.records("default")
    assert (kept.kind, kept.rating, kept.question) == ("unanswered", None, question["question"])
