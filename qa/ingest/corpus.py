"""Rules that look at a whole corpus rather than one document.

* **Near-duplicate documents**: a documentation build ships its sources
  (``_sources/library/functools.rst.txt``) beside every page; the same text in two formats
  is indexed once, keeping the version a reader should be sent to. Within one format only
  exact copies (the same words) count: pages built from one template with different facts
  (one per river, one per API class) are different documents.
* **Shared title suffixes**: "functools — … — Python 3.11.2 documentation" on every page is
  the site's name, not the page's title.
* **Repeated paragraphs**: see :func:`qa.ingest.layout.repeated_paragraphs`.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np

from qa.ingest.documents import Document, Skip
from qa.ingest.layout import repeated_paragraphs

SHINGLE_WORDS = 4
# Two documents in different formats are copies when this share of the smaller one's
# sampled word 4-grams is in the larger one. Measured on the Python docs (490 pages and
# their reStructuredText sources): a page shares 0.82 with its source (median; 5th
# percentile 0.59, markup roles and directives differ), a page and a random other source at
# most 0.06; 0.4 catches 99.4% of the copies.
DUPLICATE_CONTAINMENT = 0.4
SAMPLE = 4  # keep the shingles whose hash is 0 mod SAMPLE: a quarter of them decide
MIN_SHINGLES = 8  # shorter documents are never called copies
# a shingle more documents hold than this is boilerplate: it proposes no candidate copies
MAX_POSTINGS = 16
# A title suffix shared by at least this share of the documents is the site's name.
SUFFIX_MIN_SHARE = 0.5
SUFFIX_MIN_DOCUMENTS = 5
_SEPARATORS = (" \u2014 ", " | ", " - ", " \u2013 ", " :: ")
# Which copy a reader should be sent to: a rendered page before its source.
_FORMAT_RANK = {"html": 0, "pdf": 1, "markdown": 2, "text": 3, "jsonl": 4}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _fingerprint(text: str) -> tuple[set[int], int]:
    """The text's sampled shingles, and a hash of all its words (equal for exact copies)."""
    words = _words(text)
    return _shingles(words), zlib.crc32(" ".join(words).encode())


def _shingles(words: list[str]) -> set[int]:
    """Hashes of a sample of the words' 4-grams (a rolling combination of word hashes,
    computed with numpy: a few seconds for the whole Python documentation)."""
    if len(words) < SHINGLE_WORDS:
        return set()
    hashes = np.fromiter((zlib.crc32(w.encode()) for w in words), np.uint64, len(words))
    grams = np.zeros(len(words) - SHINGLE_WORDS + 1, np.uint64)
    for offset in range(SHINGLE_WORDS):  # wrap-around multiplication mixes the four words
        grams = grams * np.uint64(1_000_003) + hashes[offset : offset + len(grams)]
    sampled = grams[(grams >> np.uint64(23)) % np.uint64(SAMPLE) == 0]
    return set(np.unique(sampled).tolist())


def _preference(document: Document) -> tuple[int, int, int, str]:
    """Lower is better: a rendered format, outside folders like ``_sources``, a short id."""
    hidden = any(part.startswith("_") for part in document.id.split("/")[:-1])
    return (_FORMAT_RANK.get(document.format, 5), int(hidden), len(document.id), document.id)


def _is_copy(a: Document, b: Document, shared: int, sizes: tuple[int, int], same: bool) -> bool:
    """``same``: the two have the same words (an exact copy once markup is removed)."""
    if min(sizes) < MIN_SHINGLES or shared < DUPLICATE_CONTAINMENT * min(sizes):
        return False
    return a.format != b.format or same


def drop_duplicates(documents: list[Document]) -> tuple[list[Document], list[Skip]]:
    """The documents without near-duplicates, and a skip for each copy left out.

    Candidate pairs come from an inverted index of sampled shingles in which shingles held by
    more than :data:`MAX_POSTINGS` kept documents (boilerplate every page has) are not
    followed, so the cost grows with the corpus' size, not its square; the few candidates
    are then compared on all their sampled shingles.
    """
    fingerprints = [_fingerprint(d.text) for d in documents]  # each text tokenised once
    signatures = [shingles for shingles, _ in fingerprints]
    keys = [key for _, key in fingerprints]
    order = sorted(range(len(documents)), key=lambda i: _preference(documents[i]))
    owners: dict[int, list[int]] = defaultdict(list)  # shingle -> kept documents holding it
    dropped: dict[int, int] = {}  # copy -> the document kept instead
    for index in order:
        signature = signatures[index]
        votes = Counter(
            owner
            for shingle in signature
            if len(owners.get(shingle, ())) <= MAX_POSTINGS
            for owner in owners.get(shingle, ())
        )
        twin = next(
            (
                other
                for other, _ in votes.most_common(3)
                if _is_copy(
                    documents[index],
                    documents[other],
                    len(signature & signatures[other]),
                    (len(signature), len(signatures[other])),
                    keys[index] == keys[other],
                )
            ),
            None,
        )
        if twin is not None:
            dropped[index] = twin
            continue
        for shingle in signature:
            owners[shingle].append(index)
    kept = [i for i in range(len(documents)) if i not in dropped]
    skips = [
        Skip(
            documents[i].source,
            f"duplicate of {documents[twin].source} (the same text once markup is removed); kept that one",
        )
        for i, twin in sorted(dropped.items())
    ]
    return [documents[i] for i in kept], skips


def strip_shared_title_suffix(documents: Iterable[Document]) -> str:
    """Remove the title suffix most documents share (the site's name); returns it ('' if none)."""
    documents = list(documents)
    counts: Counter[str] = Counter()
    for document in documents:
        for separator in _SEPARATORS:
            if separator in document.title:
                counts[separator + document.title.rsplit(separator, 1)[1]] += 1
    if not counts:
        return ""
    suffix, count = counts.most_common(1)[0]
    if count < max(SUFFIX_MIN_DOCUMENTS, SUFFIX_MIN_SHARE * len(documents)):
        return ""
    for document in documents:
        if document.title.endswith(suffix) and len(document.title) > len(suffix):
            document.title = document.title[: -len(suffix)]
    return suffix


def prepare_corpus(
    documents: Iterable[Document],
) -> tuple[list[Document], list[Skip], frozenset[str]]:
    """A whole corpus read for indexing: the documents without copies (and the skips saying
    so), their shared title suffix removed, and the paragraphs they repeat (furniture)."""
    kept, copies = drop_duplicates(list(documents))
    strip_shared_title_suffix(kept)
    return kept, copies, repeated_paragraphs(kept)
