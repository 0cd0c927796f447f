"""Micro-batching: concurrent callers' texts encoded together, which is cheaper than one call
each, with no waiting when the encoder is idle."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False)
class Job:
    """One caller's texts, and what became of them."""

    texts: list[str]
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    event: threading.Event = field(default_factory=threading.Event)  # set when done or leading
    lead: bool = False  # handed the lead while its own texts are still pending

    @property
    def done(self) -> bool:
        """True once the job has its vectors or its error."""
        return self.vectors is not None or self.error is not None


class MicroBatcher:
    """Runs ``encode`` for concurrent callers in merged batches of at most ``max_texts`` texts.

    The first caller to arrive leads: it encodes batches of whatever is pending until its own
    texts are done, then hands the lead to the next waiting caller.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_texts: int = 64) -> None:
        self.encode = encode
        self.max_texts = max_texts
        self._lock = threading.Lock()
        self._pending: deque[Job] = deque()
        self._running = False

    def submit(self, texts: list[str]) -> np.ndarray:
        """Vectors for ``texts``, encoded in a batch with whatever else is pending."""
        job = Job(texts)
        with self._lock:
            self._pending.append(job)
            leader = not self._running
            if leader:
                self._running = True
        while True:
            if leader:
                self._drain(job)
            job.event.wait()
            if not job.lead:
                break
            job.lead = False
            job.event.clear()  # handed the lead: this caller's texts are still pending
            leader = True
        if job.error is not None:
            raise job.error
        assert job.vectors is not None  # done, without an error
        return job.vectors

    def _drain(self, own: Job) -> None:
        """Encode pending batches until ``own`` is done or nothing is pending."""
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    return
                if own.done:
                    # Our own texts are done: hand the lead to the next waiting caller instead of
                    # encoding for others for as long as they keep coming (under steady load that
                    # held one request for ever).
                    successor = self._pending[0]
                    successor.lead = True
                    successor.event.set()
                    return
                batch = self._next_batch()
            self._run(batch)

    def _next_batch(self) -> list[Job]:
        """The oldest pending jobs, up to ``max_texts`` texts (at least one job); lock held."""
        batch: list[Job] = []
        count = 0
        while self._pending and (
            not batch or count + len(self._pending[0].texts) <= self.max_texts
        ):
            job = self._pending.popleft()
            batch.append(job)
            count += len(job.texts)
        return batch

    def _run(self, batch: list[Job]) -> None:
        """Encode ``batch`` in one call and give each job its rows (or the error), then wake it."""
        try:
            vectors = self.encode([text for job in batch for text in job.texts])
            position = 0
            for job in batch:
                job.vectors = vectors[position : position + len(job.texts)]
                position += len(job.texts)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
            for job in batch:
                job.error = exc
        for job in batch:
            job.event.set()
