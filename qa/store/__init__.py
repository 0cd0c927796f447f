"""The on-disk collection: generations switched atomically, FAISS + BM25 + SQLite, and the
indexer that writes them."""
