"""A scripted OpenAI-compatible model server for the tests (a service outside this project).

It speaks the real protocol over real HTTP (served by uvicorn): ``POST /v1/chat/completions``
answers with a ``chat.completion`` or, with ``stream: true``, Server-Sent Events of
``chat.completion.chunk`` objects ending with ``data: [DONE]``. What it answers is scripted
per test: a text (or a function of the messages), an HTTP status, delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.helpers import serve_in_thread

Messages = list[dict[str, Any]]


@dataclass
class Script:
    """One scripted answer."""

    text: str | Callable[[Messages], str] = ""
    status: int = 200
    delay_s: float = 0.0  # before anything is sent
    piece_delay_s: float = 0.0  # between streamed pieces


@dataclass
class FakeModelServer:
    """The scripted server's state: what it will answer and what it was asked."""

    script: Script = field(default_factory=Script)
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    def answer(self, script: Script) -> None:
        self.script = script
        self.requests.clear()

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"body": body, "headers": dict(request.headers)})
        script = self.script
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        if script.status != 200:
            error = {"error": {"message": "scripted failure", "type": "server_error"}}
            return JSONResponse(error, status_code=script.status)
        text = script.text(body["messages"]) if callable(script.text) else script.text
        if body.get("stream"):
            return StreamingResponse(self._chunks(text, script), media_type="text/event-stream")
        return JSONResponse(completion(body.get("model", ""), text))

    async def _chunks(self, text: str, script: Script) -> AsyncIterator[bytes]:
        for piece in re.findall(r"\S+\s*|\s+", text):
            chunk = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "fake",
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            if script.piece_delay_s:
                await asyncio.sleep(script.piece_delay_s)
        yield b"data: [DONE]\n\n"


def completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def passage_number(messages: Messages, snippet: str) -> int:
    """The ``[n]`` of the given passage that contains ``snippet`` (0 when none does)."""
    prompt = messages[-1]["content"]
    for match in re.finditer(
        r"^\[(\d+)\] [^\n]*\n(.*?)(?=\n\n\[\d+\] |\n\nQuestion: )", prompt, re.DOTALL | re.MULTILINE
    ):
        if snippet in match.group(2):
            return int(match.group(1))
    return 0


@contextlib.contextmanager
def fake_model_server() -> Iterator[FakeModelServer]:
    """A scripted model server on a free loopback port; ``base_url`` ends in ``/v1``."""
    state = FakeModelServer()
    app = Starlette(routes=[Route("/v1/chat/completions", state.completions, methods=["POST"])])
    with serve_in_thread(app) as base:
        state.base_url = f"{base}/v1"
        yield state
