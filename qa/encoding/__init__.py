"""Texts to vectors: the model's identity, passage and sentence vectors, the fast question
encoder (ONNX, cache, micro-batching), and the optional cross-encoder reranker."""

from qa.encoding.embedder import Embedder
from qa.encoding.model import ModelIdentity, resolve_model_path
from qa.encoding.rerank import CrossEncoderReranker

__all__ = ["CrossEncoderReranker", "Embedder", "ModelIdentity", "resolve_model_path"]
