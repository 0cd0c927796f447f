"""The steps of an indexing run after its plan: split the new documents, reuse or embed
their vectors, assemble the new generation's rows (kept documents first, then new ones)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from qa.encoding import Embedder
from qa.ingest.documents import Document
from qa.ingest.passages import (
    Passage,
    embedding_text,
    passage_contexts,
    split_document,
    title_for_embedding,
)
from qa.ingest.sentences import sentence_spans
from qa.store.changes import Plan, document_of, row_of
from qa.store.collection import Collection
from qa.store.manifest import BuildInfo, PassageSettings
from qa.store.progress import bar
from qa.store.sql import DocumentRow, PassageRow
from qa.store.writer import GenerationData, Hook


@dataclass(frozen=True)
class NewPassage:
    """A passage of a new or changed document, with what the model embeds for it."""

    document: Document
    passage: Passage
    embedded_text: str  # the title line (when embedded) and the passage's text
    embed_hash: str  # of the model and ``embedded_text``: passages with equal hashes share a vector


@dataclass
class PassageVectors:
    """By embed hash: each new passage's vector, its sentences' spans and vectors."""

    passages: dict[str, np.ndarray]
    sentences: dict[str, np.ndarray]
    spans: dict[str, list[tuple[int, int]]]  # inside the passage's text
    embedded: int = 0  # passages embedded now
    reused: int = 0  # passages whose vector was in the previous generation


@dataclass
class _Rows:
    """The generation being assembled: the kept rows first, then the new ones."""

    documents: list[DocumentRow] = field(default_factory=list)
    passages: list[PassageRow] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)  # blocks of rows, in passage order
    sentence_spans: list[tuple[int, int, int]] = field(default_factory=list)
    sentence_vectors: list[np.ndarray] = field(default_factory=list)


def embed_hash(model_fingerprint: str, text: str) -> str:
    """The key under which a passage's vector is reused: the model and the embedded text."""
    digest = hashlib.sha256(model_fingerprint.encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def split_documents(
    documents: Iterable[Document], embedder: Embedder, settings: PassageSettings
) -> tuple[list[DocumentRow], list[NewPassage], list[Document]]:
    """The rows and passages of ``documents``, and the documents that have no passage."""
    fingerprint = embedder.identity.fingerprint
    count = embedder.count_tokens
    repeated = frozenset(settings.repeated)
    rows: list[DocumentRow] = []
    pieces: list[NewPassage] = []
    empty: list[Document] = []
    for document in documents:
        title, _ = title_for_embedding(
            document, count, settings.max_tokens, settings.title_in_embedding
        )
        passages = split_document(
            document,
            count,
            max_tokens=settings.max_tokens,
            min_chars=settings.min_chars,
            title_in_embedding=settings.title_in_embedding,
            repeated=repeated,
        )
        if not passages:
            empty.append(document)
            continue
        rows.append(row_of(document))
        for passage in passages:
            text = embedding_text(title, passage.text, passage.context)
            pieces.append(NewPassage(document, passage, text, embed_hash(fingerprint, text)))
    return rows, pieces, empty


def passage_vectors(
    embedder: Embedder,
    previous: Collection | None,
    pieces: list[NewPassage],
    show: bool,
    step: Hook,
) -> PassageVectors:
    """Vectors of the new passages: reused by embedded-text hash, the rest embedded
    (``step("embed")`` after each chunk)."""
    hashes = [p.embed_hash for p in pieces]
    reusable = reusable_vectors(previous, hashes) if previous is not None else {}
    by_hash = {p.embed_hash: p for p in pieces}
    vectors = PassageVectors(
        passages={h: vector for h, (vector, _) in reusable.items()},
        sentences={h: sentences for h, (_, sentences) in reusable.items()},
        spans={h: sentences_of(p.passage.text) for h, p in by_hash.items()},
        reused=sum(1 for h in hashes if h in reusable),
    )
    missing = sorted(h for h in by_hash if h not in reusable)
    if not missing:
        return vectors
    embedder.model  # noqa: B018 - load before the progress bar starts timing
    meter = bar(show, len(missing), "Embedding", "passage")

    def advance(count: int) -> None:
        meter.update(count)
        step("embed")

    texts = [by_hash[h].embedded_text for h in missing]
    shifts = [len(by_hash[h].embedded_text) - len(by_hash[h].passage.text) for h in missing]
    spans = [shift(vectors.spans[h], moved) for h, moved in zip(missing, shifts)]
    embedded, sentence_vectors = embedder.encode_passages(texts, spans, progress=advance)
    meter.close()
    vectors.passages.update(zip(missing, embedded))
    vectors.sentences.update(zip(missing, sentence_vectors))
    vectors.embedded = len(missing)
    return vectors


def assemble(
    previous: Collection | None,
    plan: Plan,
    documents: list[DocumentRow],
    pieces: list[NewPassage],
    vectors: PassageVectors,
    first_id: int,
    build: BuildInfo,
) -> GenerationData:
    """The new generation: the kept documents' rows first, then ``documents`` and ``pieces``
    (numbered from ``first_id``)."""
    rows = _kept_rows(previous, plan) if previous is not None else _Rows()
    rows.documents += documents
    dimension = build.model.dimension
    _add_new_rows(rows, pieces, vectors, first_id, dimension)
    lexical = lexical_texts(rows, pieces, build.passage_settings)
    if rows.sentence_vectors:
        sentence_vectors = np.concatenate(rows.sentence_vectors)
    else:
        sentence_vectors = np.zeros((0, dimension), dtype=np.float32)
    return GenerationData(
        documents=rows.documents,
        passages=rows.passages,
        vectors=np.concatenate(rows.vectors),
        lexical_texts=lexical,
        sentence_spans=np.asarray(rows.sentence_spans, dtype=np.int64).reshape(-1, 3),
        sentence_vectors=sentence_vectors,
        build=build,
    )


def lexical_texts(rows: _Rows, pieces: list[NewPassage], settings: PassageSettings) -> list[str]:
    """What BM25 indexes for each row: like what the model embeds, the document's title (when
    embedded), the passage's context label and its text. The new rows are the last ones, in
    the order of ``pieces``; kept passages' labels are found again in their documents."""
    kept = rows.passages[: len(rows.passages) - len(pieces)]
    documents = {d.id: d for d in rows.documents}
    contexts = _kept_contexts(kept, documents, settings) + [p.passage.context for p in pieces]
    return [
        embedding_text(
            documents[row.document_id].title if settings.title_in_embedding else "",
            row.text,
            context,
        )
        for row, context in zip(rows.passages, contexts)
    ]


def _kept_contexts(
    passages: list[PassageRow], documents: dict[str, DocumentRow], settings: PassageSettings
) -> list[str]:
    """The context label of each kept passage, found again in its document's text."""
    starts: dict[str, list[int]] = {}
    for row in passages:
        starts.setdefault(row.document_id, []).append(row.char_start)
    repeated = frozenset(settings.repeated)
    found = {
        document_id: dict(
            zip(at, passage_contexts(document_of(documents[document_id]), at, repeated))
        )
        for document_id, at in starts.items()
    }
    return [found[row.document_id][row.char_start] for row in passages]


def _kept_rows(previous: Collection, plan: Plan) -> _Rows:
    """Rows, vectors and sentences of the kept documents, copied from the previous generation."""
    rows = _Rows()
    if not plan.kept:
        return rows
    kept = sorted(plan.kept)
    rows.documents = [plan.relocated.get(d.id, d) for d in previous.iter_documents(kept)]
    rows.passages = previous.passages_of(kept)
    if rows.passages:
        rows.vectors.append(previous.vectors(p.id for p in rows.passages))
        for passage_id, (spans, vectors) in previous.sentences(p.id for p in rows.passages).items():
            rows.sentence_spans.extend((passage_id, a, b) for a, b in spans)
            rows.sentence_vectors.append(vectors)
    return rows


def _add_new_rows(
    rows: _Rows, pieces: list[NewPassage], vectors: PassageVectors, next_id: int, dimension: int
) -> None:
    """Append the new passages to ``rows``, numbered from ``next_id``."""
    new_vectors = []
    for piece in pieces:
        passage = piece.passage
        rows.passages.append(
            PassageRow(
                id=next_id,
                document_id=piece.document.id,
                ordinal=passage.ordinal,
                paragraph=passage.paragraph,
                char_start=passage.char_start,
                char_end=passage.char_end,
                page=passage.page,
                text=passage.text,
                hash=passage.hash,
                embed_hash=piece.embed_hash,
                title=piece.document.title,
            )
        )
        new_vectors.append(vectors.passages[piece.embed_hash])
        rows.sentence_spans.extend((next_id, a, b) for a, b in vectors.spans[piece.embed_hash])
        rows.sentence_vectors.append(vectors.sentences[piece.embed_hash])
        next_id += 1
    rows.vectors.append(np.asarray(new_vectors, dtype=np.float32).reshape(-1, dimension))


def reusable_vectors(
    previous: Collection, hashes: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{embed_hash: (passage vector, sentence vectors)}`` already in the previous generation."""
    found = previous.ids_by_embed_hash(hashes)
    if not found:
        return {}
    vectors = previous.vectors(found.values())
    sentences = previous.sentences(found.values())
    return {
        digest: (vector, sentences[passage_id][1])
        for (digest, passage_id), vector in zip(found.items(), vectors)
        if passage_id in sentences
    }


def sentences_of(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a passage (the whole passage when it has no sentence boundary)."""
    return sentence_spans(text) or [(0, len(text))]


def shift(spans: list[tuple[int, int]], offset: int) -> list[tuple[int, int]]:
    """Spans inside the passage moved into the embedded text (the passage is its suffix)."""
    return [(start + offset, end + offset) for start, end in spans]
