"""Check each generated sentence against the passages it cites.

A claim's support is a blend of two views of the cited passages:

* **meaning**: the claim embedded on its own (the question encoder's sentence path) against
  the passages' stored late-chunked sentence vectors, and against each pair of adjacent
  sentences (a model often merges two into one); the best cosine counts;
* **words**: the share of the claim's content words (stemmed, stopwords left out) that occur
  in the cited passages.

A number in the claim that no cited passage contains makes it unsupported whatever the
scores say (a changed figure is the commonest made-up fact and scores high otherwise).
The weight and the bar come from ``scripts/calibrate_verifier.py`` (see the README).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from qa.generation.claims import Claim
from qa.store.segment import late_vectors

if TYPE_CHECKING:
    import Stemmer

    from qa.encoding import Embedder
    from qa.store.collection import Sentences

Reason = Literal["no_citation", "unsupported", "number_not_in_sources"]
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Number words count as figures too: "twelve cities" for "nine cities" is a changed fact
# ("one" is not among them: it is as often a pronoun, "one of the cities").
_NUMBER_WORDS = frozenset(
    [
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "million",
        "billion",
        "trillion",
    ]
)


@dataclass(frozen=True)
class SupportParams:
    """How support is scored and where the bar is (calibrated; see the module docstring)."""

    # chosen on SciFact train (scripts/calibrate_verifier.py): the most recall at >= 0.95
    # precision; 0.951 precision, 0.905 recall on SciFact test, 0.980 / 1.000 on the article
    min_support: float = 0.54
    meaning_weight: float = 0.4  # the rest is the word overlap


@dataclass(frozen=True)
class Source:
    """A passage the model was given: its text and its stored sentences."""

    text: str
    sentences: Sentences


@dataclass
class Verdict:
    """What the check found for one claim."""

    claim: Claim
    kept: bool
    support: float
    reason: Reason | None = None
    meaning: float = 0.0
    words: float = 0.0
    evidence: dict[int, tuple[int, int]] = field(default_factory=dict)  # n -> sentence span


@cache
def _stemmer() -> Stemmer.Stemmer:
    import Stemmer

    return Stemmer.Stemmer("english")


@cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def content_words(text: str) -> set[str]:
    """Stemmed, lower-cased words of ``text`` without stopwords."""
    stop = _stopwords()
    words = [w for w in _WORD.findall(text.lower()) if w not in stop]
    return set(_stemmer().stemWords(words))


def figures(text: str) -> set[str]:
    """The numbers of ``text``: digits (without thousands separators) and number words."""
    digits = {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}
    words = {w for w in _WORD.findall(text.lower()) if w in _NUMBER_WORDS}
    return digits | words


def word_overlap(claim: str, sources: str) -> float:
    """Share of the claim's content words found in ``sources`` (1.0 for a claim with none)."""
    words = content_words(claim)
    if not words:
        return 1.0
    return len(words & content_words(sources)) / len(words)


def _windows(vectors: np.ndarray) -> np.ndarray:
    """Each sentence vector and each adjacent pair's normalised sum."""
    if len(vectors) < 2:
        return vectors
    pairs = vectors[:-1] + vectors[1:]
    pairs = pairs / np.maximum(np.linalg.norm(pairs, axis=1, keepdims=True), 1e-12)
    return np.vstack([vectors, pairs])


def _meaning(
    vector: np.ndarray, cited: Sequence[int], sources: Sequence[Source]
) -> tuple[float, dict[int, tuple[int, int]]]:
    """Best cosine of the claim against the cited passages, and each one's closest sentence."""
    best = -1.0
    evidence: dict[int, tuple[int, int]] = {}
    for number in cited:
        spans, rows = sources[number - 1].sentences
        if not len(spans):
            continue
        vectors = late_vectors(rows, len(vector))
        single = vectors @ vector
        evidence[number] = spans[int(np.argmax(single))]
        best = max(best, float(np.max(_windows(vectors) @ vector)))
    return best, evidence


def judge(
    claims: Sequence[Claim],
    sources: Sequence[Source],
    embedder: Embedder,
    params: SupportParams,
) -> list[Verdict]:
    """A verdict for each claim: kept when its cited passages support it."""
    checked = [c for c in claims if c.cited]
    vectors = embedder.encode_sentences([c.text for c in checked]) if checked else []
    by_claim = {id(c): v for c, v in zip(checked, vectors)}
    verdicts = []
    for claim in claims:
        if not claim.cited:
            verdicts.append(Verdict(claim, kept=False, support=0.0, reason="no_citation"))
            continue
        verdicts.append(_verdict(claim, by_claim[id(claim)], sources, params))
    return verdicts


@dataclass(frozen=True)
class Measures:
    """What the check measures of one claim against its cited passages."""

    meaning: float
    words: float
    figures_found: bool
    evidence: dict[int, tuple[int, int]]

    def support(self, params: SupportParams) -> float:
        weight = params.meaning_weight
        return weight * max(self.meaning, 0.0) + (1 - weight) * self.words


def measure(
    text: str, vector: np.ndarray, cited: Sequence[int], sources: Sequence[Source]
) -> Measures:
    """Meaning, word overlap and figures of a claim (``text``, embedded as ``vector``)
    against the passages numbered ``cited`` (1-based) among ``sources``."""
    meaning, evidence = _meaning(vector, cited, sources)
    cited_text = "\n".join(sources[n - 1].text for n in cited)
    found = figures(text) <= figures(cited_text)
    return Measures(meaning, word_overlap(text, cited_text), found, evidence)


def _verdict(
    claim: Claim, vector: np.ndarray, sources: Sequence[Source], params: SupportParams
) -> Verdict:
    measures = measure(claim.text, vector, claim.cited, sources)
    meaning, words, evidence = measures.meaning, measures.words, measures.evidence
    support = measures.support(params)
    reason: Reason | None = None
    if not measures.figures_found:
        reason = "number_not_in_sources"
    elif support < params.min_support:
        reason = "unsupported"
    return Verdict(
        claim,
        kept=reason is None,
        support=round(support, 4),
        reason=reason,
        meaning=round(meaning, 4),
        words=round(words, 4),
        evidence=evidence,
    )
