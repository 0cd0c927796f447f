"""Sources to documents to passages: files read (text, Markdown, HTML, PDF, JSONL) within a
parsing budget, page furniture left out, paragraphs split with exact character offsets."""

from qa.ingest.discovery import discover
from qa.ingest.documents import SUPPORTED_SUFFIXES, Document, Skip, decode_text
from qa.ingest.passages import Passage, split_document
from qa.ingest.readers import html_to_text, parse_bytes, read_file, read_jsonl_bytes
from qa.ingest.sentences import sentence_spans

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Document",
    "Passage",
    "Skip",
    "decode_text",
    "discover",
    "html_to_text",
    "parse_bytes",
    "read_file",
    "read_jsonl_bytes",
    "sentence_spans",
    "split_document",
]
