"""BM25 over segments with collection-wide statistics.

Each segment stores term frequencies, not scores (bm25s precomputes scores from one
index's idf and average length, which can't be merged): a vocabulary ordered by hash, postings
(rows and term frequencies, grouped by term) and each passage's length in tokens. At
query time the document frequency of each query term, the number of live passages and
their average length are taken over the live rows of every segment, so a passage scores
exactly as it would in one fresh index over the same live passages, whatever segment it
sits in. The formula is bm25s's default ("lucene"), so scores equal the single index the
collection used before segments.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import mmap
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.store.layout import load_array

if TYPE_CHECKING:
    import Stemmer

K1, B = 1.2, 0.75  # the usual BM25 defaults (Robertson & Zaragoza); not tuned per collection
TERMS, OFFSETS = "terms.bin", "term_offsets.npy"  # UTF-8 terms, and where each starts
HASHES = "term_hashes.npy"  # uint64 hash of each term, ascending: terms are found by hash
INDPTR, ROWS, FREQS, LENGTHS = "indptr.npy", "rows.npy", "tf.npy", "lengths.npy"
CACHED_POSTINGS = 4_000_000  # scored postings remembered per loaded generation (~32 MB)
SAMPLE = 256  # rows sampled per wanted result to find the floor of the best (see Lexical.top)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    """The English Snowball stemmer, created once."""
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    """bm25s's English stopwords (NLTK's list)."""
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_WORDS = re.compile(r"(?u)\b\w\w+\b").findall  # bm25s's (and scikit-learn's) token pattern


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, English-stopword-free, Snowball-stemmed tokens of each text.

    The same tokens as ``bm25s.tokenize(texts, stopwords="en", stemmer=...)``, which built
    the stored postings, without its per-text set of stopwords and progress bars (5x faster
    on a question and its candidate sentences).
    """
    stopwords, stem = _stopwords(), _stemmer().stemWords
    return [stem([w for w in _WORDS(text.lower()) if w not in stopwords]) for text in texts]


def _idf(count: int, frequency: int) -> float:
    """BM25's (bm25s "lucene") inverse document frequency of a term in ``frequency`` of
    ``count`` passages."""
    return math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))


class PostingsBuilder:
    """Term frequencies of a segment's passages, gathered in batches, written once."""

    def __init__(self) -> None:
        self._vocabulary: dict[str, int] = {}
        self._terms: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._freqs: list[np.ndarray] = []
        self._lengths: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, lengths)
        self.size = 0  # rows: one past the highest row added

    def add(self, texts: Sequence[str], first_row: int) -> None:
        """Tokenize ``texts`` as rows ``first_row``, ``first_row + 1``, ..."""
        self.add_tokens(tokenize(texts), first_row)

    def add_tokens(self, documents: Sequence[Sequence[str]], first_row: int) -> None:
        """Add tokenized passages as rows ``first_row``, ``first_row + 1``, ..."""
        vocabulary = self._vocabulary
        batch: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for row, tokens in enumerate(documents, start=first_row):
            if not tokens:
                continue
            ids = np.fromiter(
                (vocabulary.setdefault(t, len(vocabulary)) for t in tokens), dtype=np.int32
            )
            terms, counts = np.unique(ids, return_counts=True)
            batch.append((terms, np.full(len(terms), row, dtype=np.int32), counts))
        if batch:  # three arrays a batch, not three a passage
            self._append(*(np.concatenate(column) for column in zip(*batch)))
        lengths = np.fromiter((len(t) for t in documents), dtype=np.int32, count=len(documents))
        self._lengths.append((np.arange(first_row, first_row + len(documents)), lengths))
        self.size = max(self.size, first_row + len(documents))

    def add_segment(self, postings: Postings, new_rows: np.ndarray) -> None:
        """Copy another segment's postings, its row ``i`` becoming ``new_rows[i]`` (-1: dropped)."""
        words = postings.vocabulary()
        vocabulary = self._vocabulary
        local = np.fromiter(
            (vocabulary.setdefault(w, len(vocabulary)) for w in words),
            dtype=np.int32,
            count=len(words),
        )
        terms = np.repeat(local, np.diff(np.asarray(postings.indptr)))
        rows = new_rows[np.asarray(postings.rows)]
        keep = rows >= 0
        self._append(terms[keep], rows[keep].astype(np.int32), np.asarray(postings.freqs)[keep])
        kept = new_rows >= 0
        self._lengths.append((new_rows[kept], np.asarray(postings.lengths)[kept]))
        if kept.any():
            self.size = max(self.size, int(new_rows[kept].max()) + 1)

    def _append(self, terms: np.ndarray, rows: np.ndarray, freqs: np.ndarray) -> None:
        self._terms.append(terms.astype(np.int32, copy=False))
        self._rows.append(rows.astype(np.int32, copy=False))
        self._freqs.append(freqs.astype(np.float32))

    def save(self, folder: Path) -> None:
        """Write the vocabulary (ordered by hash) and postings grouped by term (``.npy``, no
        pickle). Called once: the gathered postings are released as they are written."""
        folder.mkdir(parents=True, exist_ok=True)
        encoded = sorted(
            (w.encode("utf-8") for w in self._vocabulary), key=lambda w: (term_hash(w), w)
        )
        words = [w.decode("utf-8") for w in encoded]
        rank = np.empty(len(words), dtype=np.int64)  # id in the vocabulary -> sorted position
        rank[[self._vocabulary[w] for w in words]] = np.arange(len(words))
        offsets = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        (folder / TERMS).write_bytes(b"".join(encoded))
        hashes = np.fromiter((term_hash(w) for w in encoded), dtype=np.uint64, count=len(encoded))
        np.save(folder / HASHES, hashes, allow_pickle=False)
        np.save(folder / OFFSETS, offsets, allow_pickle=False)
        # postings grouped by term, rows ascending within each: one sort of a 64-bit key
        # (term, row); columns are joined one at a time and dropped once used, so the peak
        # is about twice the postings' own size (they are a segment's largest part)
        key = rank[_joined(self._terms, np.int32)]  # term positions in the sorted vocabulary
        indptr = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(np.bincount(key, minlength=len(words)), out=indptr[1:])
        np.save(folder / INDPTR, indptr, allow_pickle=False)
        key <<= 32
        key |= _joined(self._rows, np.int32).astype(np.int64)
        order = np.argsort(key)  # keys are unique: no need for a stable sort
        np.save(folder / ROWS, (key[order] & 0xFFFFFFFF).astype(np.int32), allow_pickle=False)
        del key
        np.save(folder / FREQS, _joined(self._freqs, np.float32)[order], allow_pickle=False)
        del order
        lengths = np.zeros(self.size, dtype=np.int32)
        for positions, values in self._lengths:
            lengths[positions] = values
        np.save(folder / LENGTHS, lengths, allow_pickle=False)


def _joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """The parts as one array, emptying the list (each part freed as soon as it is copied)."""
    out = np.empty(sum(len(p) for p in parts), dtype=dtype)
    at = 0
    while parts:
        part = parts.pop(0)
        out[at : at + len(part)] = part
        at += len(part)
    return out


def term_hash(word: bytes) -> int:
    """A 64-bit hash of a term (stable across processes, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(word, digest_size=8).digest(), "little")


class Postings:
    """One segment's term frequencies, memory-mapped."""

    def __init__(self, folder: Path) -> None:
        self._terms: bytes | mmap.mmap = b""
        if (folder / TERMS).stat().st_size:  # an empty file can't be mapped
            with (folder / TERMS).open("rb") as handle:
                self._terms = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._offsets = load_array(folder / OFFSETS)
        self._hashes = load_array(folder / HASHES)
        self.indptr = load_array(folder / INDPTR)
        self.rows = load_array(folder / ROWS)
        self.freqs = load_array(folder / FREQS)
        self.lengths = load_array(folder / LENGTHS)

    def term(self, position: int) -> bytes:
        """The term at ``position`` of the vocabulary."""
        return self._terms[int(self._offsets[position]) : int(self._offsets[position + 1])]

    def find(self, word: bytes) -> int:
        """Position of ``word`` in the vocabulary, or -1 (by its hash, then its bytes)."""
        key = term_hash(word)
        position = int(np.searchsorted(self._hashes, np.uint64(key)))
        while position < len(self._hashes) and int(self._hashes[position]) == key:
            if self.term(position) == word:
                return position
            position += 1
        return -1

    def postings(self, word: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Rows holding ``word`` and its frequency in each."""
        position = self.find(word)
        if position < 0:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        begin, end = int(self.indptr[position]), int(self.indptr[position + 1])
        return np.asarray(self.rows[begin:end]), np.asarray(self.freqs[begin:end])

    def vocabulary(self) -> list[str]:
        """Every term, in the vocabulary's order (for merges)."""
        data = bytes(self._terms)
        offsets = self._offsets.tolist()
        return [data[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]


@dataclass(frozen=True)
class Term:
    """A query term: its weight in the query, the live rows holding it (ascending) and its
    BM25 score in each."""

    weight: float
    rows: np.ndarray
    part: np.ndarray


@dataclass
class Lexical:
    """BM25 over the live rows of every segment; row numbers are the collection's rows."""

    segments: list[Postings]
    offsets: list[int]  # first collection row of each segment
    live: np.ndarray  # bool per collection row
    ids: np.ndarray  # passage id per collection row

    def __post_init__(self) -> None:
        lengths = [np.asarray(s.lengths, dtype=np.float64) for s in self.segments]
        total = np.concatenate(lengths) if lengths else np.zeros(0)
        self.count = int(self.live.sum())
        self.average_length = float(total[self.live].mean()) if self.count else 1.0
        # BM25's length normalisation of each row: K1 × (1 - B + B × length / average)
        self._norm = K1 * ((1 - B) + B * total.astype(np.float32) / self.average_length)
        self._row_of: np.ndarray | None = None
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cached = 0  # postings held by the cache
        self._lock = threading.Lock()

    def terms(self, query: str, context: Sequence[tuple[str, float]] = ()) -> list[Term]:
        """The query's terms found in live passages, with their weights and postings.

        ``context`` adds further query texts with their weights (a follow-up's history);
        a term repeated in the query counts again, as in bm25s.
        """
        weights: dict[str, float] = {}
        for text, weight in ((query, 1.0), *context):
            for word in tokenize([text])[0]:
                weights[word] = weights.get(word, 0.0) + weight
        if not self.count:
            return []
        found = (Term(weight, *self._term(word)) for word, weight in sorted(weights.items()))
        return [term for term in found if len(term.rows)]

    def scores(
        self,
        query: str,
        context: Sequence[tuple[str, float]] = (),
        allowed: np.ndarray | None = None,
    ) -> np.ndarray:
        """BM25 score of every row for ``query`` (zero for deleted rows and rows not
        ``allowed``; zeros everywhere when no term matches)."""
        total = np.zeros(len(self.ids), dtype=np.float32)
        for term in self.terms(query, context):  # a term's rows are live and unique
            rows, part = term.rows, term.part
            if allowed is not None:
                keep = allowed[rows]
                rows, part = rows[keep], part[keep]
            np.add.at(total, rows, term.weight * part)  # faster than total[rows] += ...
        return total

    def rows_with(self, words: Sequence[str]) -> np.ndarray:
        """The live rows holding every one of ``words`` (tokens as :func:`tokenize` makes
        them), in row order."""
        rows: np.ndarray | None = None
        for word in dict.fromkeys(words):
            found = self._term(word)[0]  # intersect1d sorts: only a lone list needs sorting
            rows = (
                np.sort(found) if rows is None else np.intersect1d(rows, found, assume_unique=True)
            )
            if not len(rows):
                break
        return np.zeros(0, np.int64) if rows is None else rows.astype(np.int64)

    def idf(self, word: str) -> float:
        """BM25's inverse document frequency of ``word`` (a token as :func:`tokenize` makes
        it) over the live passages."""
        return _idf(self.count, len(self._term(word)[0]))

    def _term(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """The live rows holding ``word`` and its BM25 score in each, remembered: they depend
        only on this generation's statistics."""
        with self._lock:
            known = self._cache.get(word)
            if known is not None:
                self._cache.move_to_end(word)
                return known
        rows, freqs = self._postings(word.encode("utf-8"))
        if self.count < len(self.live):  # some rows are deleted
            alive = self.live[rows]
            rows, freqs = rows[alive], freqs[alive]
        idf = np.float32(_idf(self.count, len(rows)))  # document frequency over live rows
        part = self._norm[rows]  # idf × tf / (norm + tf), computed in place
        part += freqs
        np.divide(np.multiply(freqs, idf, out=freqs), part, out=part)
        with self._lock:
            self._cache[word] = rows, part
            self._cached += len(rows)
            while self._cached > CACHED_POSTINGS and len(self._cache) > 1:
                _, (old, _) = self._cache.popitem(last=False)
                self._cached -= len(old)
        return rows, part

    def _postings(self, word: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Collection rows holding ``word`` (in every segment) and its frequency in each."""
        found = [s.postings(word) for s in self.segments]
        if not found:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        rows = [r + np.int32(offset) for (r, _), offset in zip(found, self.offsets)]
        return np.concatenate(rows), np.concatenate([f for _, f in found])

    def top(self, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and scores of the best ``k`` rows with a positive score.

        In a long score vector only rows scoring at least a floor are ranked: the ``k``-th
        best score of an evenly spaced sample of rows, which no ``k``-th best of all rows
        can be below.
        """
        floor = np.float32(0)
        stride = len(scores) // (SAMPLE * max(k, 1))
        if stride > 1 and k > 0:
            floor = max(floor, np.partition(scores[::stride], -k)[-k])
        candidates = np.flatnonzero(scores >= floor if floor > 0 else scores > 0)
        k = min(k, len(candidates))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        values = scores[candidates]
        kth = np.partition(values, len(values) - k)[len(values) - k]
        best = np.flatnonzero(values >= kth)  # every row tied with the k-th too
        # ties by row, as a stable sort of the whole score vector would order them
        best = best[np.lexsort((candidates[best], -values[best]))][:k]
        return self.ids[candidates[best]], values[best]

    def search(
        self,
        query: str,
        k: int,
        context: Sequence[tuple[str, float]] = (),
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and scores of the best ``k`` matches with a positive score."""
        return self.top(self.scores(query, context, allowed), k)

    def rows(self, passage_ids: np.ndarray) -> np.ndarray:
        """Row of each live passage id, -1 for other ids (a lookup table is built once)."""
        if self._row_of is None:
            live = np.flatnonzero(self.live)
            size = int(self.ids[live].max()) + 1 if len(live) else 0
            table = np.full(size + 1, -1, dtype=np.int64)  # the last entry: any other id
            table[self.ids[live]] = live
            self._row_of = table
        wanted = np.asarray(passage_ids, dtype=np.int64)
        known = len(self._row_of) - 1
        return self._row_of[np.where((wanted >= 0) & (wanted < known), wanted, known)]
