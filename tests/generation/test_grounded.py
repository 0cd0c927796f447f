"""Grounded generation end to end: a real server over the seed collection, writing answers
with a scripted OpenAI-compatible model server (tests/fake_llm.py) over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qa.config import Settings
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.fake_llm import FakeModelServer, Messages, Script, fake_model_server, passage_number
from tests.helpers import serve_in_thread

QUESTION = "How many cities does the G60 corridor connect?"
NINE = "The seven-year-old G60 Corridor connects nine cities"
OFF_TOPIC = "How do I bake sourdough bread at home?"
TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def model_server() -> Iterator[FakeModelServer]:
    with fake_model_server() as server:
        yield server


@pytest.fixture(scope="module")
def llm_settings(seed_settings: Settings, model_server: FakeModelServer) -> Settings:
    return make_settings(
        seed_settings.index_dir,
        llm_url=model_server.base_url,
        llm_model="fake-model",
        llm_api_key="model-key",
        llm_timeout_s=TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def server(llm_settings: Settings, seed_service: QAService) -> Iterator[str]:
    with serve_in_thread(create_app(llm_settings, seed_service)) as base:
        yield base


def cites(snippet: str, sentence: str) -> Any:
    """A scripted reply: ``sentence`` citing the given passage that holds ``snippet``."""

    def reply(messages: Messages) -> str:
        return sentence.replace("{n}", str(passage_number(messages, snippet)))

    return reply


def ask(base: str, question: str = QUESTION, **extra: object) -> dict[str, Any]:
    response = httpx.post(f"{base}/v1/ask", json={"question": question, **extra}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def events(base: str, question: str = QUESTION) -> list[tuple[str, Any]]:
    """The Server-Sent Events of a streamed ``/v1/ask``: (event, data) pairs."""
    out: list[tuple[str, Any]] = []
    body = {"question": question, "stream": True}
    with httpx.stream("POST", f"{base}/v1/ask", json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = "message"
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                out.append((name, json.loads(line[5:].strip())))
    return out


def test_faithful_answer_is_kept_whole(server: str, model_server: FakeModelServer) -> None:
    model_server.answer(Script(cites(NINE, "The G60 Corridor connects nine cities [{n}].")))
    out = ask(server)
    generated = out["generated"]
    assert generated["status"] == "written"
    assert generated["model"] == "fake-model"
    assert generated["dropped"] == 0 and generated["notice"] is None
    n = generated["sentences"][0]["citations"][0]
    assert generated["text"] == f"The G60 Corridor connects nine cities [{n}]."
    assert out["answer"] is not None  # the extractive answer still comes along
    # the model was given the top passages, numbered, and the key
    request = model_server.requests[-1]
    assert request["body"]["model"] == "fake-model"
    assert request["headers"]["authorization"] == "Bearer model-key"
    assert "[1] " in request["body"]["messages"][-1]["content"]
    citation = generated["citations"][0]
    assert citation["index"] == n and "nine cities" in citation["quote"]
    document = httpx.get(f"{server}/v1/documents/{citation['document_id']}").json()
    assert document["text"][citation["char_start"] : citation["char_end"]] == citation["quote"]


def test_unsupported_sentence_is_dropped(server: str, model_server: FakeModelServer) -> None:
    made_up = "The corridor was designed by a team of Martian architects in 1969 [{n}]."
    model_server.answer(
        Script(cites(NINE, "The G60 Corridor connects nine cities [{n}]. " + made_up))
    )
    generated = ask(server)["generated"]
    assert generated["status"] == "written"
    assert generated["dropped"] == 1
    assert "Martian" not in generated["text"] and "nine cities" in generated["text"]
    dropped = [s for s in generated["sentences"] if not s["kept"]]
    assert "Martian" in dropped[0]["raw"]
    assert "1 sentence" in generated["notice"] and "dropped" in generated["notice"]


def test_citation_out_of_range_is_removed(server: str, model_server: FakeModelServer) -> None:
    model_server.answer(Script(cites(NINE, "The G60 Corridor connects nine cities [{n}][9].")))
    generated = ask(server)["generated"]
    assert generated["status"] == "written"
    assert generated["removed_citations"] == 1 and generated["dropped"] == 0
    assert "[9]" not in generated["text"]
    assert [c["index"] for c in generated["citations"]] == generated["sentences"][0]["citations"]
    assert "citation" in generated["notice"]


def test_reply_without_citations_falls_back(server: str, model_server: FakeModelServer) -> None:
    model_server.answer(Script("The G60 Corridor connects nine cities."))
    out = ask(server)
    generated = out["generated"]
    assert generated["status"] == "fallback" and generated["text"] is None
    assert generated["sentences"][0]["reason"] == "no_citation"
    assert "quoted from the documents" in generated["notice"]
    assert "nine cities" in out["answer"]["text"]


@pytest.mark.parametrize(
    ("script", "said"),
    [
        (Script("late [1].", delay_s=TIMEOUT_S + 2), "did not answer within"),
        (Script(status=500), "HTTP 500"),
    ],
    ids=["slow", "error-500"],
)
def test_model_server_failure_falls_back(
    server: str, model_server: FakeModelServer, script: Script, said: str
) -> None:
    model_server.answer(script)
    out = ask(server)
    assert out["generated"]["status"] == "fallback"
    assert said in out["generated"]["notice"]
    assert out["answer"] is not None and out["passages"]
    stream = events(server)  # the stream falls back the same way, with a 200
    assert stream[-1][0] == "final"
    assert stream[-1][1]["generated"]["status"] == "fallback"


def test_model_not_called_when_retrieval_abstains(
    server: str, model_server: FakeModelServer
) -> None:
    model_server.answer(Script("Bake it at 250 degrees [1]."))
    out = ask(server, OFF_TOPIC)
    assert out["answer"] is None and out["notice"]
    assert out["generated"]["status"] == "abstained"
    assert [e for e, _ in events(server, OFF_TOPIC)] == ["reply", "final"]
    assert model_server.requests == []


def test_stream_passes_tokens_and_retracts(server: str, model_server: FakeModelServer) -> None:
    made_up = "It was built by a team of Martian architects in 1969 [{n}]."
    text = "The G60 Corridor connects nine cities [{n}]. " + made_up
    model_server.answer(Script(cites(NINE, text), piece_delay_s=0.01))
    stream = events(server)
    names = [name for name, _ in stream]
    assert names[0] == "reply" and names[-1] == "final"
    assert stream[0][1]["answer"] is not None  # the extractive answer comes first, at once
    deltas = [data["text"] for name, data in stream if name == "delta"]
    assert len(deltas) > 5 and "Martian" in "".join(deltas)  # tokens pass through
    final = stream[-1][1]["generated"]
    assert final["status"] == "written" and final["dropped"] == 1
    retracted = [s for s in final["sentences"] if not s["kept"]]
    assert retracted[0]["raw"] in "".join(deltas)  # the client can find it and strike it out


def test_config_says_answers_are_generated(server: str, live_server: str) -> None:
    assert httpx.get(f"{server}/v1/config").json()["generation"] is True
    assert httpx.get(f"{live_server}/v1/config").json()["generation"] is False
