"""Question answering over your own documents: sentence-transformers + FAISS + BM25, with exact citations."""

__version__ = "0.1.0"
