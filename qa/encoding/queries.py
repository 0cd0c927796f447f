"""The question encoder: a few short texts at a time, with the fastest backend configured.

Questions go through ONNX (exported once per model, cached beside the indexes) unless the
configuration or the model rules it out, then torch. Concurrent calls share batches
(:class:`MicroBatcher`; the int8 encoder runs each text of a batch on its own,
:func:`one_per_run`, as its vectors would otherwise depend on their batch); document
sentences, which the answer step embeds again and again, are remembered in an LRU cache.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from qa.encoding.batcher import MicroBatcher
from qa.encoding.model import ModelIdentity
from qa.errors import ModelError

if TYPE_CHECKING:
    from qa.encoding.onnx import OnnxEncoder

log = logging.getLogger(__name__)

Encode = Callable[[list[str]], np.ndarray]
ONNX_BACKENDS = frozenset({"auto", "onnx", "onnx-int8"})


class VectorCache:
    """Vectors by text, least recently used dropped beyond ``size`` entries; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors known for any of ``texts``, each marked as just used."""
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in known:
                self._vectors.move_to_end(text)
        return known

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember ``vectors`` (one row per text), dropping the least recently used."""
        with self._lock:
            for text, vector in zip(texts, vectors):
                self._vectors[text] = vector
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)


class QueryEncoder:
    """Questions and document sentences to L2-normalised float32 vectors.

    ``torch_encode`` is the exact (passage) encoder, used when ONNX is not available;
    ``identity`` is called only when needed (loading ONNX, the width of an empty result), as
    it hashes the weights.
    """

    def __init__(
        self,
        identity: Callable[[], ModelIdentity],
        torch_encode: Encode,
        backend: str = "auto",
        onnx: Callable[[], Callable[[bool], OnnxEncoder]] | None = None,
        cache_size: int = 20_000,
        workers: int | None = None,
    ) -> None:
        self.backend = backend
        self.workers = workers or os.cpu_count() or 1  # int8 questions run side by side
        self._onnx = onnx  # the model's ONNX exports (float32, int8); None: torch only
        self._identity = identity
        self._torch_encode = torch_encode
        self._lock = threading.Lock()
        self._encode: Encode | None = None
        self._active = ""
        self._batcher = MicroBatcher(self._encode_batch)
        self.cache = VectorCache(cache_size)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of questions; concurrent calls are merged into one batch."""
        if not texts:
            return np.zeros((0, self._identity().dimension), dtype=np.float32)
        return self._batcher.submit(list(texts))

    def encode_sentences(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of document sentences, remembered by text (the answer step embeds the same
        sentences again and again)."""
        if not texts:
            return np.zeros((0, self._identity().dimension), dtype=np.float32)
        known = self.cache.get(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = self._batcher.submit(missing)
            self.cache.put(missing, fresh)
            known.update(zip(missing, fresh))
        return np.stack([known[t] for t in texts])

    @property
    def active_backend(self) -> str:
        """The backend in use ("onnx", "onnx-int8" or "torch"), loading it if needed."""
        self._encoder()
        return self._active

    @property
    def is_loaded(self) -> bool:
        """True once the backend is loaded."""
        return self._encode is not None

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._encoder()(texts)

    def _encoder(self) -> Encode:
        """The backend's encode function, loaded by the first caller."""
        with self._lock:
            if self._encode is None:
                self._encode, self._active = self._load()
        return self._encode

    def _load(self) -> tuple[Encode, str]:
        """ONNX when configured and possible ("auto" falls back to torch quietly), else torch.

        ``auto`` takes the int8 export when it agrees with float32 on this machine (see
        :func:`qa.encoding.onnx.recorded_agreement`), else the float32 one.
        """
        backend = self.backend
        if backend in ONNX_BACKENDS and self._onnx is not None:
            try:
                return self._load_onnx(backend)
            except Exception as exc:
                if backend != "auto":
                    raise ModelError(f"the ONNX query backend failed: {exc}") from exc
                log.info("ONNX query encoder unavailable (%s); using torch", exc)
        return self._torch_encode, "torch"

    def _load_onnx(self, backend: str) -> tuple[Encode, str]:
        """The ONNX encoder ``backend`` names (``auto``: int8 if it agrees, else float32)."""
        from qa.encoding.onnx import int8_agrees

        assert self._onnx is not None
        encoder = self._onnx()
        if backend == "onnx":
            return encoder(False).encode, "onnx"
        if backend == "auto" and not int8_agrees(encoder, "question"):
            return encoder(False).encode, "onnx"
        return one_per_run(encoder(True), encoder(True, 1), self.workers), "onnx-int8"


def one_per_run(whole: OnnxEncoder, single: OnnxEncoder, workers: int) -> Encode:
    """int8 question encoding, each text in a run of its own: the int8 export quantises
    activations with one scale per run, so a question batched with seven others moved to
    cosine 0.992 of its vector alone and 30 of 600 SciFact questions got another answer
    (README). A lone text runs on ``whole`` (every thread); several, as the micro-batcher
    merges concurrent questions, run side by side on the single-threaded ``single`` (the
    same vectors, bit for bit): 405-527 questions a second at 32 callers against 305-355 in
    one merged batch."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix="qa-question")

    def encode(texts: list[str]) -> np.ndarray:
        if len(texts) == 1:
            return whole.encode(texts)
        return single.encode_apart(texts, pool)

    return encode
