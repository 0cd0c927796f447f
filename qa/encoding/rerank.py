"""The optional cross-encoder reranker a user can plug in (``QA_RERANKER``)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from qa.encoding.model import offline_environment
from qa.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

log = logging.getLogger("qa.encoding.rerank")


class CrossEncoderReranker:
    """Any sentence-transformers CrossEncoder folder a user supplies (``QA_RERANKER``)."""

    def __init__(self, path: str) -> None:
        offline_environment()
        try:
            from sentence_transformers import CrossEncoder

            self.model: CrossEncoder = CrossEncoder(path, device="cpu", local_files_only=True)
        except Exception as exc:
            raise ModelError(f"could not load the reranker from {path}: {exc}") from exc
        self.path = path
        self._lock = threading.Lock()

    def scores(self, question: str, texts: list[str]) -> np.ndarray:
        """Relevance of each text to the question (higher is better)."""
        with self._lock:
            values = self.model.predict(
                [(question, text) for text in texts], show_progress_bar=False
            )
        return np.asarray(values, dtype=np.float32).reshape(len(texts), -1)[:, -1]
