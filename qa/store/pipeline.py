"""The steps of an indexing run after its plan: split the new documents, reuse or embed
their vectors, assemble the new generation's rows (kept documents first, then new ones)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from qa.encoding import Embedder
from qa.ingest.documents import Document
from qa.ingest.passages import Passage, embedding_text, split_document, title_for_embedding
from qa.ingest.sentences import sentence_spans
from qa.store.changes import row_of
from qa.store.collection import Collection
from qa.store.manifest import PassageSettings
from qa.store.sql import DocumentRow, PassageRow


@dataclass(frozen=True)
class NewPassage:
    """A passage of a new or changed document, with what the model embeds for it."""

    document: Document
    passage: Passage
    embedded_text: str  # the title line (when embedded), the context label, the passage's text
    embed_hash: str  # of the model and ``embedded_text``: passages with equal hashes share a vector


@dataclass
class PassageVectors:
    """By embed hash: each new passage's vector, its sentences' spans and vectors."""

    passages: dict[str, np.ndarray]
    sentences: dict[str, np.ndarray]
    spans: dict[str, list[tuple[int, int]]]  # inside the passage's text
    embedded: int = 0  # passages embedded now
    reused: int = 0  # passages whose vector was in the previous generation


# bump when the vectors stored for the same text change, so that the next update embeds every
# passage again (2: sentence vectors really late-chunked; before, every passage shorter than
# the longest of its batch of 16 fell back to the passage vector; 3: each sentence also
# stores its vector embedded on its own, so answering runs no model beyond the question)
VECTORS_VERSION = 3


def embed_hash(model_fingerprint: str, text: str, own: bool = True) -> str:
    """The key under which a passage's vector is reused: the model, the vectors' version
    (:data:`VECTORS_VERSION`), whether sentences' own vectors are stored, and the embedded
    text."""
    kind = f"{model_fingerprint}/{VECTORS_VERSION}" + ("" if own else "/late")
    digest = hashlib.sha256(kind.encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def split_documents(
    documents: Iterable[Document], embedder: Embedder, settings: PassageSettings
) -> tuple[list[DocumentRow], list[NewPassage], list[Document]]:
    """The rows and passages of ``documents``, and the documents that have no passage."""
    fingerprint = embedder.identity.fingerprint
    own = settings.own_sentence_vectors
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
            pieces.append(NewPassage(document, passage, text, embed_hash(fingerprint, text, own)))
    return rows, pieces, empty


def passage_vectors(
    embedder: Embedder,
    previous: Collection | None,
    pieces: list[NewPassage],
    advance: Callable[[int], None],
    own: bool = True,
) -> PassageVectors:
    """Vectors of the new passages: reused by embedded-text hash, the rest embedded
    (``advance(n)`` after each chunk of ``n`` embedded; ``own``: each sentence's vector
    embedded on its own too)."""
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
    texts = [by_hash[h].embedded_text for h in missing]
    shifts = [len(by_hash[h].embedded_text) - len(by_hash[h].passage.text) for h in missing]
    spans = [shift(vectors.spans[h], moved) for h, moved in zip(missing, shifts)]
    embedded, sentence_vectors = embedder.encode_passages(texts, spans, advance, own=own)
    vectors.passages.update(zip(missing, embedded))
    vectors.sentences.update(zip(missing, sentence_vectors))
    vectors.embedded = len(missing)
    return vectors


@dataclass
class Rows:
    """A batch of new rows for a segment, in ascending passage id order."""

    passages: list[PassageRow]
    vectors: np.ndarray
    sentence_spans: np.ndarray  # (passage id, start, end)
    sentence_vectors: np.ndarray
    lexical_texts: list[str]


def new_rows(
    pieces: list[NewPassage], vectors: PassageVectors, first_id: int, settings: PassageSettings
) -> Rows:
    """Rows of ``pieces``, numbered from ``first_id``."""
    passages, spans, sentence_vectors, lexical = [], [], [], []
    for number, piece in enumerate(pieces, start=first_id):
        passage = piece.passage
        passages.append(
            PassageRow(
                id=number,
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
        spans += [(number, a, b) for a, b in vectors.spans[piece.embed_hash]]
        sentence_vectors.append(vectors.sentences[piece.embed_hash])
        title = piece.document.title if settings.title_in_embedding else ""
        # like what the model embeds: the title, the heading the passage sits under, its text
        lexical.append(embedding_text(title, passage.text, passage.context))
    dimension = len(vectors.passages[pieces[0].embed_hash]) if pieces else 0
    return Rows(
        passages=passages,
        vectors=np.asarray(
            [vectors.passages[p.embed_hash] for p in pieces], dtype=np.float32
        ).reshape(len(pieces), dimension),
        sentence_spans=np.asarray(spans, dtype=np.int64).reshape(-1, 3),
        sentence_vectors=np.concatenate(sentence_vectors) if sentence_vectors else np.zeros(0),
        lexical_texts=lexical,
    )


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
