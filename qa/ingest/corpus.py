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
from collections import Counter, deque
from collections.abc import Iterable, Iterator

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


def _fingerprint(text: str) -> tuple[np.ndarray, int]:
    """The text's sampled shingles, and a hash of all its words (equal for exact copies)."""
    words = _words(text)
    return _shingles(words), zlib.crc32(" ".join(words).encode())


def _shingles(words: list[str]) -> np.ndarray:
    """Hashes of a sample of the words' 4-grams (a rolling combination of word hashes,
    computed with numpy: a few seconds for the whole Python documentation), sorted, unique."""
    if len(words) < SHINGLE_WORDS:
        return np.zeros(0, np.uint64)
    hashes = np.fromiter((zlib.crc32(w.encode()) for w in words), np.uint64, len(words))
    grams = np.zeros(len(words) - SHINGLE_WORDS + 1, np.uint64)
    for offset in range(SHINGLE_WORDS):  # wrap-around multiplication mixes the four words
        grams = grams * np.uint64(1_000_003) + hashes[offset : offset + len(grams)]
    return np.unique(grams[(grams >> np.uint64(23)) % np.uint64(SAMPLE) == 0])


def _preference(document: Document) -> tuple[int, int, int, str]:
    """Lower is better: a rendered format, outside folders like ``_sources``, a short id."""
    hidden = any(part.startswith("_") for part in document.id.split("/")[:-1])
    return (_FORMAT_RANK.get(document.format, 5), int(hidden), len(document.id), document.id)


def _is_copy(a: Document, b: Document, shared: int, sizes: tuple[int, int], same: bool) -> bool:
    """``same``: the two have the same words (an exact copy once markup is removed)."""
    if min(sizes) < MIN_SHINGLES or shared < DUPLICATE_CONTAINMENT * min(sizes):
        return False
    return a.format != b.format or same


class _Postings:
    """Which documents hold each shingle, in judging order: flat arrays (about 30 bytes a
    shingle), not a dictionary of lists, so memory stays small for big corpora."""

    def __init__(self, signatures: list[np.ndarray]) -> None:
        sizes = np.fromiter((len(s) for s in signatures), np.int64, len(signatures))
        self.offsets = np.concatenate(([0], np.cumsum(sizes)))
        shingles = np.concatenate(signatures) if signatures else np.zeros(0, np.uint64)
        holders = np.repeat(np.arange(len(signatures), dtype=np.int32), sizes)
        order = np.lexsort((holders, shingles))
        self.shingles, self.holders = shingles[order], holders[order]
        self.where = np.empty(len(order), np.int64)  # a (document, shingle) pair's sorted place
        self.where[order] = np.arange(len(order))

    def signature(self, position: int) -> np.ndarray:
        """The sorted shingles of the document judged at ``position``."""
        return self.shingles[self._places(position)]

    def owners(self, position: int, kept: np.ndarray) -> Counter[int]:
        """Votes for the kept documents judged before ``position`` sharing its shingles,
        shingles with more than :data:`MAX_POSTINGS` such documents (boilerplate) left out."""
        ends = self._places(position)
        starts = np.searchsorted(self.shingles, self.shingles[ends], "left")
        votes: Counter[int] = Counter()
        for start, end in zip(starts[ends > starts].tolist(), ends[ends > starts].tolist()):
            earlier = self.holders[start:end]  # judged before this one
            owners = earlier[kept[earlier]]
            if len(owners) <= MAX_POSTINGS:
                votes.update(owners.tolist())
        return votes

    def _places(self, position: int) -> np.ndarray:
        """Where the document judged at ``position`` has its shingles in the sorted arrays."""
        return self.where[self.offsets[position] : self.offsets[position + 1]]


def drop_duplicates(documents: list[Document]) -> tuple[list[Document], list[Skip]]:
    """The documents without near-duplicates, and a skip for each copy left out.

    Documents are judged best first (:func:`_preference`). Candidate copies of one come from
    the kept documents sharing its sampled shingles, where shingles held by more than
    :data:`MAX_POSTINGS` kept documents (boilerplate every page has) are not followed, so the
    cost grows with the corpus' size, not its square; the few candidates are then compared
    on all their sampled shingles.
    """
    fingerprints = [_fingerprint(d.text) for d in documents]  # each text tokenised once
    order = sorted(range(len(documents)), key=lambda i: _preference(documents[i]))
    keys = [fingerprints[i][1] for i in order]  # by judging position from here on
    postings = _Postings([fingerprints[i][0] for i in order])
    del fingerprints
    kept = np.zeros(len(order), dtype=bool)
    dropped: dict[int, int] = {}  # copy -> the document kept instead
    for position in range(len(order)):
        votes = postings.owners(position, kept)
        signature = postings.signature(position)
        twin = next(
            (
                other
                for other, _ in votes.most_common(3)
                if _is_copy(
                    documents[order[position]],
                    documents[order[other]],
                    len(np.intersect1d(signature, postings.signature(other), assume_unique=True)),
                    (len(signature), len(postings.signature(other))),
                    keys[position] == keys[other],
                )
            ),
            None,
        )
        if twin is None:
            kept[position] = True
        else:
            dropped[order[position]] = order[twin]
    skips = [
        Skip(
            documents[i].source,
            f"duplicate of {documents[twin].source} (the same text once markup is removed); kept that one",
        )
        for i, twin in sorted(dropped.items())
    ]
    return [d for i, d in enumerate(documents) if i not in dropped], skips


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
) -> tuple[Iterator[Document], list[Skip], frozenset[str]]:
    """A whole corpus read for indexing: the documents without copies (and the skips saying
    so), their shared title suffix removed, and the paragraphs they repeat (furniture).

    The documents come one at a time, each released once handed out, so the texts held for
    these rules shrink as the build consumes them.
    """
    kept, copies = drop_duplicates(list(documents))
    strip_shared_title_suffix(kept)
    repeated = repeated_paragraphs(kept)
    return _let_go(kept), copies, repeated


def _let_go(documents: list[Document]) -> Iterator[Document]:
    """``documents`` one at a time, the list emptied and each released once handed out."""
    waiting = deque(documents)
    documents.clear()
    while waiting:
        yield waiting.popleft()
