"""Grounded generation: the model writes from the top passages, every sentence is checked.

Abstention comes first: when the extractive answer abstains the model is never called.
A sentence without a citation, or whose cited passages don't support it, is dropped and
counted; a citation of a passage that wasn't given is removed. When the model fails, runs
out of time or writes nothing that survives the check, the extractive answer stands, with
a notice saying why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import anyio
import numpy as np

from qa.config import Settings
from qa.generation.claims import split_claims
from qa.generation.client import ChatClient, ModelServerError
from qa.generation.prompt import build_messages
from qa.generation.sources import CitedSource, cite
from qa.generation.verify import Source, SupportParams, Verdict, judge
from qa.search import RankedPassage, Reply, Turn
from qa.service import QAService

Status = Literal["written", "abstained", "fallback"]
QUOTED = "the answer below is the sentence quoted from the documents"


@dataclass
class CheckedSentence:
    """A sentence the model wrote, and what the check made of it."""

    text: str  # with its valid citations, as shown when kept
    raw: str  # as the model wrote it (what a stream showed)
    citations: list[int]
    kept: bool
    support: float
    reason: str | None = None


@dataclass
class Generated:
    """The model's answer after the check (``text`` is ``None`` unless ``written``)."""

    status: Status
    model: str
    text: str | None = None
    notice: str | None = None
    sentences: list[CheckedSentence] = field(default_factory=list)
    dropped: int = 0
    removed_citations: int = 0
    citations: list[CitedSource] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def drop_notice(dropped: int, removed: int) -> str | None:
    """What the reply says about sentences and citations the check took out."""
    parts = []
    if dropped:
        parts.append(
            f"{_plural(dropped, 'sentence')} of the generated answer "
            f"{'was' if dropped == 1 else 'were'} dropped: no cited passage supports "
            f"{'it' if dropped == 1 else 'them'}"
        )
    if removed:
        parts.append(f"{_plural(removed, 'citation')} of passages that weren't given removed")
    return "; ".join(parts) + "." if parts else None


class Writer:
    """Writes answers with the configured model server and checks them against the passages."""

    def __init__(self, service: QAService, client: ChatClient, settings: Settings) -> None:
        self.service = service
        self.client = client
        self.max_tokens = settings.llm_max_tokens
        self.passages = settings.llm_passages
        self.params = SupportParams(min_support=settings.llm_min_support)

    @classmethod
    def from_settings(cls, service: QAService, settings: Settings) -> Writer | None:
        """The writer ``QA_LLM_*`` configures, or ``None`` when no model server is set."""
        if not settings.llm_url or not settings.llm_model:
            return None
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        client = ChatClient(settings.llm_url, settings.llm_model, key, settings.llm_timeout_s)
        return cls(service, client, settings)

    @property
    def model(self) -> str:
        return self.client.model

    def _options(self, max_tokens: int | None, temperature: float | None) -> dict[str, Any]:
        tokens = min(max_tokens or self.max_tokens, self.max_tokens)
        return {"max_tokens": tokens, "temperature": 0.0 if temperature is None else temperature}

    def given(self, reply: Reply) -> list[RankedPassage]:
        """The passages the model is given (the top ones), numbered from 1 in this order."""
        return reply.passages[: self.passages]

    def abstained(self) -> Generated:
        return Generated("abstained", self.model)

    def fallback(self, error: ModelServerError) -> Generated:
        return Generated("fallback", self.model, notice=f"{_capital(error.reason)}; {QUOTED}.")

    async def write(
        self,
        question: str,
        history: Sequence[Turn],
        reply: Reply,
        collection: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Generated:
        """The checked answer, or why there is none (the model never runs on an abstention)."""
        if reply.answer is None:
            return self.abstained()
        passages = self.given(reply)
        messages = build_messages(question, history, passages)
        try:
            text = await self.client.complete(messages, **self._options(max_tokens, temperature))
        except ModelServerError as error:
            return self.fallback(error)
        return await self.check(text, passages, collection)

    async def stream(
        self,
        question: str,
        history: Sequence[Turn],
        reply: Reply,
        collection: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[str | Generated]:
        """The model's text as it arrives, then the checked answer (always last)."""
        if reply.answer is None:
            yield self.abstained()
            return
        passages = self.given(reply)
        messages = build_messages(question, history, passages)
        pieces: list[str] = []
        try:
            async for piece in self.client.stream(
                messages, **self._options(max_tokens, temperature)
            ):
                pieces.append(piece)
                yield piece
        except ModelServerError as error:
            yield self.fallback(error)
            return
        yield await self.check("".join(pieces), passages, collection)

    async def check(self, text: str, passages: list[RankedPassage], collection: str) -> Generated:
        """``text`` checked sentence by sentence against ``passages`` (in a worker thread:
        the claims are embedded)."""
        return await anyio.to_thread.run_sync(self._check, text, passages, collection)

    def _check(self, text: str, passages: list[RankedPassage], collection: str) -> Generated:
        stored = self.service.collection(collection).sentences(p.passage_id for p in passages)
        empty = ([], np.zeros((0, 1), dtype=np.float32))
        sources = [Source(p.text, stored.get(p.passage_id, empty)) for p in passages]
        claims = split_claims(text, len(passages))
        verdicts = judge(claims, sources, self.service.embedder, self.params)
        return self._result(verdicts, passages)

    def _result(self, verdicts: list[Verdict], passages: list[RankedPassage]) -> Generated:
        sentences = [
            CheckedSentence(
                text=v.claim.with_markers(),
                raw=v.claim.raw,
                citations=v.claim.cited,
                kept=v.kept,
                support=v.support,
                reason=v.reason,
            )
            for v in verdicts
        ]
        dropped = sum(1 for v in verdicts if not v.kept)
        removed = sum(len(v.claim.invalid) for v in verdicts)
        kept = [v for v in verdicts if v.kept]
        if not kept:
            why = (
                "wrote nothing" if not verdicts else "wrote no sentence its cited passages support"
            )
            notice = f"The language model {why}; {QUOTED}."
            return Generated("fallback", self.model, notice=notice, sentences=sentences)
        return Generated(
            "written",
            self.model,
            text=" ".join(s.text for s in sentences if s.kept),
            notice=drop_notice(dropped, removed),
            sentences=sentences,
            dropped=dropped,
            removed_citations=removed,
            citations=_citations(kept, passages),
        )


def _citations(kept: list[Verdict], passages: list[RankedPassage]) -> list[CitedSource]:
    """Each passage a kept sentence cites, quoting its sentence closest to the first claim
    that cites it."""
    quoted: dict[int, tuple[int, int] | None] = {}
    for verdict in kept:
        for number in verdict.claim.cited:
            quoted.setdefault(number, verdict.evidence.get(number))
    return [cite(n, passages[n - 1], quoted[n]) for n in sorted(quoted)]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
