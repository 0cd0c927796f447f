"""The OpenAI-compatible API driven by the official ``openai`` client against real servers:
the models list, completions plain and streamed, citations as data, follow-ups, "not in
the documents", errors in OpenAI's shape, and a real ``qa serve`` writing with a model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from qa.config import Settings
from qa.http.app import create_app
from qa.service import QAService
from tests.conftest import make_settings
from tests.fake_llm import Script, fake_model_server, passage_number
from tests.helpers import running, serve_in_thread

Q1 = "How many cities does the G60 corridor connect?"
Q2 = "Which of them are in Zhejiang?"
OFF_TOPIC = "How do I bake sourdough bread at home?"


def client_for(base: str, **options: Any) -> openai.OpenAI:
    # OpenAI clients always send a key; this service's public routes don't need one
    return openai.OpenAI(base_url=f"{base}/v1", api_key="any", max_retries=0, **options)


def ask(client: openai.OpenAI, *messages: tuple[str, str], model: str = "default") -> Any:
    return client.chat.completions.create(
        model=model, messages=[{"role": r, "content": c} for r, c in messages]
    )


@pytest.fixture(scope="module")
def client(live_server: str) -> openai.OpenAI:
    return client_for(live_server)


def test_models_are_the_collections(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["default"]
    assert models.data[0].object == "model" and models.data[0].created > 0
    assert client.models.retrieve("default").id == "default"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("nope")
    assert caught.value.code == "model_not_found"


def test_completion_with_citations(client: openai.OpenAI, live_server: str) -> None:
    completion = ask(client, ("user", Q1), model="default")
    assert completion.object == "chat.completion" and completion.model == "default"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content
    assert "nine cities" in content and "[1]" in content and "Sources:" in content
    assert completion.usage.completion_tokens > 0
    citations = completion.model_extra["citations"]
    assert citations[0]["index"] == 1 and "nine cities" in citations[0]["quote"]
    assert set(citations[0]) >= {
        "passage_id",
        "document_id",
        "title",
        "source",
        "paragraph",
        "char_start",
        "char_end",
    }
    document = httpx.get(f"{live_server}/v1/documents/{citations[0]['document_id']}").json()
    assert (
        document["text"][citations[0]["char_start"] : citations[0]["char_end"]]
        == (citations[0]["quote"])
    )
    assert completion.model_extra["qa"]["answer"] == "extractive"


def test_streamed_completion(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": Q1}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "nine cities" in text and "Sources:" in text
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    assert final.model_extra["citations"][0]["index"] == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_follow_up_conversation(client: openai.OpenAI) -> None:
    first = ask(client, ("user", Q1))
    answer = first.choices[0].message.content
    follow = ask(client, ("system", "Be brief."), ("user", Q1), ("assistant", answer), ("user", Q2))
    content = follow.choices[0].message.content
    assert "Zhejiang" in content
    assert Q1 in follow.model_extra["qa"]["query"]  # searched with the earlier question


def test_not_in_the_documents(client: openai.OpenAI) -> None:
    completion = ask(client, ("user", OFF_TOPIC))
    content = completion.choices[0].message.content
    assert content.startswith("The documents don't answer this question.")
    citations = completion.model_extra["citations"]
    assert len(citations) >= 3 and f"[{len(citations)}]" in content
    assert completion.model_extra["qa"]["answer"] == "abstained"


def test_a_name_the_documents_never_mention_is_said(client: openai.OpenAI) -> None:
    completion = ask(client, ("user", "What does the --fast-track option of the G60 corridor do?"))
    content = completion.choices[0].message.content
    assert content.startswith("The documents never mention --fast-track.")
    assert completion.model_extra["qa"]["answer"] == "abstained"


def test_content_parts_are_read(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": [{"type": "text", "text": Q1}]}]
    )
    assert "nine cities" in completion.choices[0].message.content


@pytest.mark.parametrize(
    ("request_options", "error", "param"),
    [
        ({"model": "nope"}, openai.NotFoundError, "model"),
        (
            {"messages": [{"role": "assistant", "content": "hi"}]},
            openai.BadRequestError,
            "messages",
        ),
        ({"messages": [{"role": "user", "content": " "}]}, openai.BadRequestError, "messages"),
        ({"messages": []}, openai.BadRequestError, "messages"),
        ({"temperature": 5}, openai.BadRequestError, "temperature"),
        ({"messages": [{"role": "user", "content": "x" * 2001}]}, openai.BadRequestError, None),
    ],
    ids=["unknown-model", "last-not-user", "blank", "no-messages", "temperature", "too-long"],
)
def test_errors_in_openai_shape(
    client: openai.OpenAI, request_options: dict[str, Any], error: type, param: str | None
) -> None:
    options = {"model": "default", "messages": [{"role": "user", "content": Q1}]}
    with pytest.raises(error) as caught:
        client.chat.completions.create(**{**options, **request_options})
    body = caught.value.body
    assert set(body) == {"message", "type", "param", "code"}
    assert body["type"] == "invalid_request_error" and body["message"]
    if param:
        assert body["param"] == param


def test_gate_errors_in_openai_shape(live_server: str) -> None:
    """Malformed JSON, a body over the limit, the wrong method: OpenAI's shape too."""
    url = f"{live_server}/v1/chat/completions"
    headers = {"content-type": "application/json"}
    for response, status in [
        (httpx.post(url, content=b"{nope", headers=headers), 400),
        (httpx.post(url, content=b"x" * 70_000, headers=headers), 413),
        (httpx.get(url), 405),
        (httpx.post(url, content=b"{}", headers={"content-type": "text/plain"}), 415),
    ]:
        assert response.status_code == status, response.text
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_rate_limit_in_openai_shape(seed_settings: Settings, seed_service: QAService) -> None:
    settings = make_settings(seed_settings.index_dir, rate_limit_per_minute=1, rate_limit_burst=1)
    with serve_in_thread(create_app(settings, seed_service)) as base:
        client = client_for(base)
        ask(client, ("user", Q1))
        with pytest.raises(openai.RateLimitError) as caught:
            ask(client, ("user", Q1))
    assert caught.value.body["type"] == "rate_limit_error"
    assert caught.value.response.headers["retry-after"]


@pytest.fixture(scope="module")
def model_server() -> Iterator[Any]:
    with fake_model_server() as server:
        yield server


def test_qa_serve_writes_with_a_model_server(seed_index_dir: Path, model_server: Any) -> None:
    """A real ``qa serve`` configured with QA_LLM_* streams the model's tokens to an OpenAI
    client, then the citations and the retraction of a sentence no passage supports."""
    nine = "The seven-year-old G60 Corridor connects nine cities"

    def reply(messages: list[dict[str, Any]]) -> str:
        n = passage_number(messages, nine)
        return f"The G60 Corridor connects nine cities [{n}]. It has a purple flag [{n}]."

    model_server.answer(Script(reply))
    env = {"QA_LLM_URL": model_server.base_url, "QA_LLM_MODEL": "fake", "QA_LLM_TIMEOUT_S": "10"}
    with running(seed_index_dir, **env) as (_, base, _log):
        client = client_for(base)
        plain = ask(client, ("user", Q1))
        assert plain.model_extra["qa"]["answer"] == "written"
        assert "purple" not in plain.choices[0].message.content
        assert plain.model_extra["qa"]["dropped"] == 1
        chunks = list(
            client.chat.completions.create(
                model="default", messages=[{"role": "user", "content": Q1}], stream=True
            )
        )
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len(pieces) > 8 and "purple flag" in "".join(pieces)  # the tokens passed through
    final = chunks[-1].model_extra
    assert [r["reason"] for r in final["retractions"]] == ["unsupported"]
    assert "purple" in final["retractions"][0]["text"]
    assert final["citations"] and final["qa"]["answer"] == "written"
    assert "~~It has a purple flag" in "".join(pieces)  # plain clients see it struck out
