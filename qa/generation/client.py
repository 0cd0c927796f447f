"""A small client for any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp's server).

Only ``POST {base}/chat/completions`` is used, plain or streamed (Server-Sent Events of
``chat.completion.chunk`` objects ending with ``data: [DONE]``). Every failure, a time-out
included, is a :class:`ModelServerError` saying what happened, so callers fall back in one place.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import anyio
import httpx

Messages = list[dict[str, str]]


class ModelServerError(Exception):
    """The model server failed, answered with something unusable, or ran out of time."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


@cache
def _tls() -> ssl.SSLContext:
    """The certificate store, loaded once: building it is most of the cost of a new
    ``httpx.AsyncClient`` (about 0.2 s here), which every answer would otherwise pay."""
    return httpx.create_ssl_context(trust_env=False)


@dataclass(frozen=True)
class ChatClient:
    """Where the model server is, which model, and how long an answer may take in all."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 20.0

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _body(self, messages: Messages, max_tokens: int, temperature: float, stream: bool) -> dict:
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }

    def _http(self) -> httpx.AsyncClient:
        # one client per answer: the server runs questions on several event loops (and tests
        # on several servers), and a pooled client belongs to the loop that made it
        timeout = httpx.Timeout(self.timeout_s)
        return httpx.AsyncClient(timeout=timeout, trust_env=False, verify=_tls())

    async def complete(self, messages: Messages, *, max_tokens: int, temperature: float) -> str:
        """The assistant's whole reply."""
        try:
            with anyio.fail_after(self.timeout_s):
                async with self._http() as http:
                    body = self._body(messages, max_tokens, temperature, stream=False)
                    response = await http.post(self.url, json=body, headers=self._headers())
        except (TimeoutError, httpx.TimeoutException):
            raise self._late() from None
        except httpx.HTTPError as exc:
            raise ModelServerError(
                f"cannot reach the model server ({type(exc).__name__})"
            ) from None
        _check_status(response.status_code)
        try:
            return str(response.json()["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise ModelServerError("the model server sent a reply that is not a chat completion")

    async def stream(
        self, messages: Messages, *, max_tokens: int, temperature: float
    ) -> AsyncIterator[str]:
        """The reply's text as the server sends it, piece by piece."""
        deadline = time.monotonic() + self.timeout_s
        body = self._body(messages, max_tokens, temperature, stream=True)
        try:
            async with self._http() as http:
                request = http.build_request("POST", self.url, json=body, headers=self._headers())
                response = await http.send(request, stream=True)
                try:
                    _check_status(response.status_code)
                    async for line in response.aiter_lines():
                        if time.monotonic() > deadline:
                            raise self._late()
                        piece = _piece(line)
                        if piece is None:
                            return
                        if piece:
                            yield piece
                finally:
                    await response.aclose()
        except httpx.TimeoutException:
            raise self._late() from None
        except httpx.HTTPError as exc:
            raise ModelServerError(
                f"cannot reach the model server ({type(exc).__name__})"
            ) from None

    def _late(self) -> ModelServerError:
        return ModelServerError(
            f"the model server did not answer within {self.timeout_s:g} s", timed_out=True
        )


def _check_status(status: int) -> None:
    if status >= 400:
        raise ModelServerError(f"the model server answered with HTTP {status}")


def _piece(line: str) -> str | None:
    """The text carried by one line of the event stream ('' for none); ``None`` at the end."""
    if not line.startswith("data:"):
        return ""  # blank lines, comments, event names
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        chunk: Any = json.loads(data)
        choices = chunk.get("choices") or []
        if not choices:
            return ""  # a usage-only chunk
        return str((choices[0].get("delta") or {}).get("content") or "")
    except (ValueError, AttributeError, TypeError):
        raise ModelServerError("the model server sent a stream that is not chat completion chunks")
