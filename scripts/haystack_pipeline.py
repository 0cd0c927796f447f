"""The Haystack tutorial pipeline that `compare_haystack.py` runs in a child process.

    python scripts/haystack_pipeline.py SPEC.json

SPEC: {"root", "pages" (relative to root), "questions" ([{"id", "question"}]), "model", "out"}.
Indexes the pages (HTMLToDocument -> DocumentSplitter(word, 200, 20) -> MiniLM document embedder
-> InMemoryDocumentStore), prints MARKER + {"cpu_s", "maxrss_mb"} the moment indexing is done,
then answers every question with the hybrid query pipeline (BM25 + embedding retrievers,
reciprocal rank fusion, top 10) and writes {"chunks": [{"page", "text"}], "chunks_over_window",
"answers": [{"id", "ms", "ranked": [{"page", "text"}]}]} to "out".
Needs `pip install 'haystack-ai<3' trafilatura lxml_html_clean`; run with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

MARKER = "haystack-indexed "
TOP_K = 10
COMPONENTS = (
    ("Pipeline", "haystack"),
    ("HTMLToDocument", "haystack.components.converters"),
    ("DocumentSplitter", "haystack.components.preprocessors"),
    ("DocumentWriter", "haystack.components.writers"),
    ("InMemoryDocumentStore", "haystack.document_stores.in_memory"),
    ("InMemoryBM25Retriever", "haystack.components.retrievers.in_memory"),
    ("InMemoryEmbeddingRetriever", "haystack.components.retrievers.in_memory"),
    ("DocumentJoiner", "haystack.components.joiners"),
)
EMBEDDERS = (  # haystack-ai 2.x, then 3.x with sentence-transformers-haystack
    "haystack.components.embedders",
    "haystack_integrations.components.embedders.sentence_transformers",
)
EMBEDDER_NAMES = ("SentenceTransformersDocumentEmbedder", "SentenceTransformersTextEmbedder")


def haystack_classes() -> dict[str, Any]:
    """The components used, by name; ImportError when Haystack or trafilatura is missing."""
    classes = {name: getattr(importlib.import_module(module), name) for name, module in COMPONENTS}
    for module in EMBEDDERS:
        try:
            embedders = importlib.import_module(module)
            classes.update({name: getattr(embedders, name) for name in EMBEDDER_NAMES})
            break
        except (ImportError, AttributeError):
            if module == EMBEDDERS[-1]:
                raise
    importlib.import_module("trafilatura")  # HTMLToDocument imports it lazily: fail here, early
    return classes


def index(h: dict[str, Any], spec: dict[str, Any]) -> Any:
    """The tutorial's indexing pipeline over the pages; returns the filled document store."""
    store = h["InMemoryDocumentStore"]()
    pipe = h["Pipeline"]()
    pipe.add_component("converter", h["HTMLToDocument"]())
    pipe.add_component(
        "splitter", h["DocumentSplitter"](split_by="word", split_length=200, split_overlap=20)
    )
    embedder = h["SentenceTransformersDocumentEmbedder"](model=spec["model"], progress_bar=False)
    pipe.add_component("embedder", embedder)
    pipe.add_component("writer", h["DocumentWriter"](document_store=store))
    pipe.connect("converter", "splitter")
    pipe.connect("splitter", "embedder")
    pipe.connect("embedder", "writer")
    sources = [Path(spec["root"]) / page for page in spec["pages"]]
    meta = [{"page": page} for page in spec["pages"]]
    pipe.run({"converter": {"sources": sources, "meta": meta}})
    return store


def query_pipeline(h: dict[str, Any], store: Any, model: str) -> Any:
    """The tutorial's hybrid retrieval: BM25 and embedding retrievers joined by RRF, top 10."""
    pipe = h["Pipeline"]()
    pipe.add_component(
        "text_embedder", h["SentenceTransformersTextEmbedder"](model=model, progress_bar=False)
    )
    embedding = h["InMemoryEmbeddingRetriever"](document_store=store, top_k=TOP_K)
    pipe.add_component("embedding_retriever", embedding)
    pipe.add_component(
        "bm25_retriever", h["InMemoryBM25Retriever"](document_store=store, top_k=TOP_K)
    )
    joiner = h["DocumentJoiner"](join_mode="reciprocal_rank_fusion", top_k=TOP_K)
    pipe.add_component("joiner", joiner)
    pipe.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
    pipe.connect("bm25_retriever", "joiner")
    pipe.connect("embedding_retriever", "joiner")
    return pipe


def answer(pipe: Any, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each question's top 10 chunks and its time in `pipeline.run`, after one warm-up query."""

    def ask(text: str) -> list[Any]:
        inputs = {"text_embedder": {"text": text}, "bm25_retriever": {"query": text}}
        return pipe.run(inputs)["joiner"]["documents"]

    ask("warm up")
    answers = []
    for question in questions:
        start = time.perf_counter()
        docs = ask(question["question"])
        ms = (time.perf_counter() - start) * 1000
        ranked = [{"page": d.meta.get("page"), "text": d.content or ""} for d in docs]
        answers.append({"id": question["id"], "ms": ms, "ranked": ranked})
    return answers


def over_window(model: str, texts: list[str]) -> int:
    """How many chunks are longer than the model's window (the embedder silently cuts them)."""
    from transformers import AutoTokenizer

    window = json.loads((Path(model) / "sentence_bert_config.json").read_text())["max_seq_length"]
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(model)(texts)["input_ids"]]
    return sum(1 for n in lengths if n > window)


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    h = haystack_classes()
    store = index(h, spec)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    own = {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mb": usage.ru_maxrss / 1024}
    print(MARKER + json.dumps(own), flush=True)
    chunks = [
        {"page": d.meta.get("page"), "text": d.content or ""} for d in store.filter_documents()
    ]
    result = {
        "chunks": chunks,
        "chunks_over_window": over_window(spec["model"], [c["text"] for c in chunks]),
    }
    result["answers"] = answer(query_pipeline(h, store, spec["model"]), spec["questions"])
    Path(spec["out"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
