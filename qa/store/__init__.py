"""The on-disk collection: immutable generations (SQLite text, FAISS vectors, BM25, sentence
arrays and a manifest) written by the indexer beside the live one and switched in atomically,
and read back as a :class:`Collection`."""

from qa.store.collection import Collection
from qa.store.indexer import Indexer, IndexReport
from qa.store.layout import UPLOADS, current_generation, list_collections, writer_lock
from qa.store.manifest import FORMAT_VERSION, Manifest, ModelInfo, read_manifest
from qa.store.sql import DocumentRow, PassageRow

__all__ = [
    "FORMAT_VERSION",
    "UPLOADS",
    "Collection",
    "DocumentRow",
    "IndexReport",
    "Indexer",
    "Manifest",
    "ModelInfo",
    "PassageRow",
    "current_generation",
    "list_collections",
    "read_manifest",
    "writer_lock",
]
