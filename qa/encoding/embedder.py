"""The embedder: passage vectors (with late-chunked sentence vectors) from torch or an ONNX
export, and the front door to the model's identity, its tokenizer and the question encoder.

torch and the model are loaded lazily, on the first call that needs vectors, so commands
that only read an index (or find nothing to re-embed) start fast.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.encoding.model import (
    ModelIdentity,
    load_sentence_transformer,
    read_identity,
    resolve_model_path,
)
from qa.encoding.queries import QueryEncoder
from qa.encoding.tokens import Span, Tokens

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from qa.encoding.onnx import OnnxEncoder

Progress = Callable[[int], None]

log = logging.getLogger(__name__)


class Embedder:
    """Turns texts into L2-normalised float32 vectors (inner product = cosine)."""

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 16,
        threads: int | None = None,
        query_backend: str = "auto",
        cache_dir: Path | None = None,
        passage_backend: str = "torch",  # the service passes QA_PASSAGE_BACKEND ("auto")
    ) -> None:
        self.path = resolve_model_path(model)
        self.batch_size = batch_size
        self.threads = threads
        self.query_backend = query_backend
        self.passage_backend = passage_backend
        self.cache_dir = cache_dir
        self._lock = threading.Lock()  # one torch forward pass at a time
        self._tokens = Tokens(self.path)
        self._queries = QueryEncoder(
            identity=lambda: self.identity,
            torch_encode=self._encode_torch,
            backend=query_backend,
            onnx=None if cache_dir is None else lambda: self._onnx,
            workers=threads,
        )

    @cached_property
    def identity(self) -> ModelIdentity:
        """What an index records about this model (hashes the weights once)."""
        return read_identity(self.path)

    @property
    def max_tokens(self) -> int:
        """Word pieces that fit in the model's window, without [CLS] and [SEP]."""
        return self.identity.max_seq_length - 2

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, special tokens excluded."""
        return self._tokens.count(texts)

    @cached_property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model, loaded on first use."""
        return load_sentence_transformer(self.path, self.threads)

    def encode(
        self, texts: Sequence[str], progress: Progress | None = None, chunk: int = 256
    ) -> np.ndarray:
        """Embed many texts; ``progress(n)`` after each chunk of ``n``."""
        out = np.empty((len(texts), self.identity.dimension), dtype=np.float32)
        for idx in _longest_first(texts, chunk, progress):
            out[idx] = self._encode_torch([texts[i] for i in idx])
        return out

    def encode_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[Span]],
        progress: Progress | None = None,
        chunk: int = 256,
        own: bool = True,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors plus a row for each span (sentence) of each text.

        A sentence's row holds its late-chunked vector, the mean of the model's contextual
        token embeddings inside it (free: it comes from the passage's pass), then (``own``;
        rows ``2 * dimension`` wide) its vector embedded on its own, as a question is: what
        the answer step compares when the late-chunked signals can't decide, at the cost of
        one more model pass over the sentences. torch runs the model unless
        ``passage_backend`` names an ONNX export (see the README's "Indexing faster").
        """
        dimension = self.identity.dimension
        vectors = np.zeros((len(texts), dimension), dtype=np.float32)
        width = 2 * dimension if own else dimension
        pieces = [np.zeros((0, width), dtype=np.float32)] * len(texts)
        tokens_of = self._onnx_tokens if self._passage_onnx is not None else self._torch_tokens
        for idx in _longest_first(texts, chunk, progress):
            late: dict[int, np.ndarray] = {}
            for i, (vector, tokens, offsets) in zip(idx, tokens_of([texts[i] for i in idx])):
                vectors[i] = vector / max(float(np.linalg.norm(vector)), 1e-12)
                late[i] = _pool_spans(tokens, offsets, spans[i], vectors[i])
            if not own:
                for i in idx:
                    pieces[i] = late[i]
                continue
            sentences = [texts[i][a:b] for i in idx for a, b in spans[i]]
            unique = list(dict.fromkeys(sentences))  # a site repeats some sentences
            by_text = dict(zip(unique, self._encode_alone(unique)))
            for i in idx:
                alone = [by_text[texts[i][a:b]] for a, b in spans[i]]
                pieces[i] = np.hstack([late[i], np.reshape(alone, (-1, dimension))])
        return vectors, pieces

    def _encode_alone(self, texts: list[str]) -> np.ndarray:
        """Each text embedded on its own by the passage backend, like a question."""
        if not texts:
            return np.zeros((0, self.identity.dimension), dtype=np.float32)
        encoder = self._passage_onnx
        if encoder is None:
            return self._encode_torch(texts)
        return encoder.encode_apart(texts, self._side_by_side)

    def _torch_tokens(
        self, batch: list[str]
    ) -> Iterator[tuple[np.ndarray, np.ndarray, list[Span]]]:
        """Each text's vector, token embeddings and token offsets, from sentence-transformers."""
        with self._lock:
            outputs = self.model.encode(
                batch,
                batch_size=self.batch_size,
                output_value=None,
                show_progress_bar=False,
                convert_to_numpy=False,
                normalize_embeddings=True,
            )
        for output, offsets in zip(outputs, self._tokens.offsets(batch)):
            vector = output["sentence_embedding"].float().numpy()
            # sentence-transformers pads every text of a batch to the longest one's length
            length = int(output["attention_mask"].sum())
            yield vector, output["token_embeddings"][:length].float().numpy(), offsets

    def _onnx_tokens(self, batch: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray, list[Span]]]:
        """:meth:`_torch_tokens` from the ONNX export, one text per run (see
        :attr:`_side_by_side`)."""
        encoder = self._passage_onnx
        assert encoder is not None
        for hidden, mask, offsets in self._side_by_side.map(encoder.hidden, ([t] for t in batch)):
            pooled = encoder.pool(hidden, mask)
            for row, length in enumerate(mask.sum(axis=1)):
                yield pooled[row], hidden[row, :length], offsets[row][:length]

    @property
    def active_passage_backend(self) -> str:
        """What embeds passages: "torch", "onnx" or "onnx-int8" (``auto`` decided)."""
        encoder = self._passage_onnx
        if encoder is None:
            return "torch"
        return "onnx-int8" if encoder.int8 else "onnx"

    @cached_property
    def _side_by_side(self) -> ThreadPoolExecutor:
        """Threads running ONNX passages and sentences side by side on a single-threaded
        session, one text per run: no padding, and with int8 (activations quantised with one
        scale per run) a text's vector never depends on the texts embedded with it. 2,000
        docs passages: 10.3-11.5 s against 17.5-17.9 s in runs of 16 (mean cosine to float32
        0.9940 against 0.9936); side by side rather than one session on every core, as small
        matrices don't split well across threads (10-12% less wall time, measured on 2 cores)."""
        workers = self.threads or os.cpu_count() or 1
        return ThreadPoolExecutor(workers, thread_name_prefix="qa-embed")

    @cached_property
    def _onnx(self) -> Callable[..., OnnxEncoder]:
        """``_onnx(int8)``: the model's ONNX export (float32 or int8), each loaded once and
        shared by questions and passages."""
        from qa.encoding.onnx import encoders

        assert self.cache_dir is not None
        identity = self.identity
        return encoders(
            self.path, self.cache_dir, identity.fingerprint, identity.max_seq_length, self.threads
        )

    @cached_property
    def _passage_onnx(self) -> OnnxEncoder | None:
        """The ONNX encoder for passages, or ``None`` for torch. ``auto`` takes the int8
        export where it agrees with float32 on this machine (the check the question encoder
        makes, recorded once), else torch; a model ONNX can't run falls back to torch."""
        backend = self.passage_backend
        if backend == "torch" or self.cache_dir is None:
            return None
        from qa.encoding.onnx import int8_agrees

        encoder = self._onnx
        if backend != "auto":
            return encoder(backend == "onnx-int8", 1)
        try:
            return encoder(True, 1) if int8_agrees(encoder, "passage") else None
        except Exception as exc:  # noqa: BLE001 - auto: torch always works
            log.info("ONNX passage encoder unavailable (%s); using torch", exc)
            return None

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a few questions with the fastest backend configured (see :class:`QueryEncoder`)."""
        return self._queries.encode_queries(texts)

    def encode_sentences(self, texts: Sequence[str]) -> np.ndarray:
        """Embed document sentences like questions, remembered by text (an LRU cache)."""
        return self._queries.encode_sentences(texts)

    @property
    def active_query_backend(self) -> str:
        """The backend queries actually use ("onnx", "onnx-int8" or "torch")."""
        return self._queries.active_backend

    @property
    def is_warm(self) -> bool:
        """True once the query encoder is loaded."""
        return self._queries.is_loaded

    def warm_up(self) -> None:
        """Load the query encoder and run it once so the first real request is not slow."""
        self.encode_queries(["warm up"])

    def _encode_torch(self, texts: Sequence[str]) -> np.ndarray:
        """Exact vectors from the sentence-transformers model, one forward pass at a time."""
        model = self.model
        with self._lock:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _longest_first(
    texts: Sequence[str], chunk: int, progress: Progress | None
) -> Iterator[np.ndarray]:
    """Indices of ``texts`` in chunks of ``chunk``, longest texts first so batches pad little.

    Calls ``progress(n)`` once the caller has handled a chunk of ``n``.
    """
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for begin in range(0, len(texts), chunk):
        idx = order[begin : begin + chunk]
        yield idx
        if progress:
            progress(len(idx))


def _pool_spans(
    tokens: np.ndarray,
    offsets: Sequence[Span],
    spans: Sequence[Span],
    fallback: np.ndarray,
) -> np.ndarray:
    """Mean of the token embeddings inside each character span, L2-normalised.

    Falls back to ``fallback`` (the passage vector) for a span with no tokens, or when the
    tokenizer's view doesn't line up with the model's output.
    """
    out = np.tile(fallback, (len(spans), 1)).astype(np.float32)
    if len(offsets) != len(tokens):
        return out
    starts = np.array([a for a, _ in offsets])
    ends = np.array([b for _, b in offsets])
    real = ends > starts  # special tokens have empty offsets
    for row, (start, end) in enumerate(spans):
        inside = real & (starts >= start) & (ends <= end)
        if inside.any():
            vector = tokens[inside].mean(axis=0)
            out[row] = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return out
