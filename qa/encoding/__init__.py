"""The model: its identity, passage and sentence vectors, the fast question encoder, and the
optional cross-encoder reranker."""
