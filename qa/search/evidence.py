"""Which sentence answers: features of the candidate sentences, scored by fitted weights.

Every sentence of the top passages is a candidate. Nothing here runs the model: the
features are the stored (late-chunked) sentence vector's cosine with the question, how much
of the question's rare vocabulary the sentence and its passage hold, the passage's rank and
score, where the sentence sits, and whether it holds the kind of fact the question asks for
(:mod:`qa.search.answer_type`). A logistic regression fitted on the tuning half of the
Python-docs questions (``scripts/fit_answer_choice.py``) weighs them; the answer-type weight
was chosen on the tuning halves of those and the factoid questions; see the README.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from qa.search.answer_type import expected, holds
from qa.store.lexical import Lexical, tokenize

FEATURES = (
    "coverage",  # idf-weighted share of the question's terms found in the sentence
    "passage_coverage",  # ...and in the sentence's passage
    "rank",  # 1 for the top passage, falling by 1/considered per rank
    "first",  # 1 for a passage's first sentence (often a heading or a signature)
    "position",  # the sentence's place in its passage, 0 (first) to 1 (last)
    "length",  # log(1 + words)
    "passage_score",  # the passage's search score relative to the best considered
    "cosine",  # stored sentence vector · question vector
    "cosine_gap",  # cosine minus the best candidate's cosine
    "answer_type",  # 1 if the sentence holds the kind of fact the question asks for
)

ASKING = "what which who whom whose when where why how do does did can could would should will may might must"

# Fitted by scripts/fit_answer_choice.py on scripts/data/pydocs_questions_tune.jsonl
# (LogisticRegression, C=1); the order is FEATURES'. The last, answer_type, was chosen by
# the top candidate's hits on that file and pydocs_factoid_tune.jsonl (0 -> 76/304, 2.5 -> 86).
WEIGHTS = (2.42, -0.41, 0.56, -0.27, -0.68, 0.66, 2.50, 0.36, 1.77, 2.5)


@dataclass(frozen=True)
class Candidate:
    """One sentence of one considered passage."""

    passage: int  # index among the considered passages (0 = best ranked)
    start: int
    end: int
    cosine: float


def features(
    question: str,
    candidates: Sequence[Candidate],
    texts: Sequence[str],
    passage_scores: Sequence[float],
    sentence_counts: Sequence[int],
    positions: Sequence[int],
    lexical: Lexical,
) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate (``texts`` are the candidates' sentences,
    ``positions`` their place in their passage, ``sentence_counts`` per passage)."""
    terms = tokenize([question])[0]
    kind = expected(question)
    idf = {term: lexical.idf(term) for term in set(terms)}
    total = sum(idf.values()) or 1.0
    tokens = [set(t) for t in tokenize(list(texts))]
    in_passage: dict[int, set[str]] = {}
    for candidate, found in zip(candidates, tokens):
        in_passage.setdefault(candidate.passage, set()).update(found)
    considered = max(1, len(sentence_counts))
    best_score = max(passage_scores) if len(passage_scores) else 0.0
    best_cosine = max((c.cosine for c in candidates), default=0.0)
    rows = []
    for candidate, found, position, text in zip(candidates, tokens, positions, texts):
        sentences = sentence_counts[candidate.passage]
        score = passage_scores[candidate.passage]
        rows.append(
            (
                sum(idf[t] for t in found & idf.keys()) / total,
                sum(idf[t] for t in in_passage[candidate.passage] & idf.keys()) / total,
                1 - candidate.passage / considered,
                float(position == 0),
                position / max(1, sentences),
                math.log1p(len(text.split())),
                score / best_score if best_score > 0 else 1.0,
                candidate.cosine,
                candidate.cosine - best_cosine,
                float(kind is not None and holds(kind, text, question)),
            )
        )
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


def missing_idf(question: str, texts: Sequence[str], lexical: Lexical) -> float:
    """The highest inverse document frequency among the question's terms that none of
    ``texts`` (the considered passages) holds; 0 when they hold every term. A rare word of
    the question found nowhere near the answer ("population" asked of an article that never
    gives one) is the clearest sign, short of a reader model, that the documents don't answer."""
    terms = set(tokenize([question])[0]) - _asking()
    for found in tokenize(list(texts)):
        terms.difference_update(found)
    return max((lexical.idf(term) for term in terms), default=0.0)


@cache
def _asking() -> frozenset[str]:
    """The tokens of words that ask rather than name (BM25's stopword list keeps them)."""
    return frozenset(tokenize([ASKING])[0])


# what ends a line that is a sentence or a signature, not a heading
CLOSING = (".", "!", ":", ";", ")", "]", '"', "'", "\u201d", "\u2019")


def asks_or_heads(text: str, start: int, end: int) -> bool:
    """Whether the sentence at ``text[start:end]`` asks ("?") or heads what follows (a line of
    its own with more text after it and no closing punctuation: "BDFL", "6.16. Evaluation
    order", an FAQ's "How do you remove multiple items from a list"): it names the topic and
    is often closest to the question, but it never answers. A signature ("random.choices(...)")
    ends with ")" and stays a candidate."""
    sentence = text[start:end].rstrip()
    if sentence.endswith("?"):
        return True
    alone = (start == 0 or text[start - 1] == "\n") and text[end : end + 1] == "\n"
    return alone and bool(text[end:].strip()) and not sentence.endswith(CLOSING)


def scores(rows: np.ndarray, weights: Sequence[float] = WEIGHTS) -> np.ndarray:
    """The fitted model's log-odds that each candidate is the answering sentence."""
    return rows @ np.asarray(weights, dtype=np.float64)
