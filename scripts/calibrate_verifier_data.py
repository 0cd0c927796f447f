"""Labelled sentences for calibrate_verifier.py: each cited to a gold passage among the
top passages of a labelled question, either supported by it or swapped in from elsewhere.

Per question (the top 5 passages are what the model would be given; a question whose gold
passage is not among them is skipped), with ``g`` the first gold passage:

* supported, **verbatim**: the gold passage's sentence closest to the question, and one
  other sentence of it, cited to ``g``;
* supported, **trimmed**: each of those with the outer 15% of its words cut off either
  side (a model shortening a sentence);
* unsupported, **other passage**: the sentence closest to the question among the top
  passages from other documents (on the one-document article: other passages), cited to
  ``g`` (the right topic, the wrong source);
* unsupported, **random document**: a random sentence of a random other document
  (the article: a random other passage), cited to ``g``;
* unsupported, **figure changed**: a verbatim sentence with its first figure changed;
* on SciFact, the claim itself, written by an expert in other words than the abstract's:
  cited to its gold abstract (**claim, gold abstract**: counted as supported, though the BEIR
  judgements don't say which abstracts support their claim and which contradict it, so
  this is the optimistic label), and cited to the best-ranked abstract that isn't gold
  (**claim, other abstract**: unsupported).

Without the paraphrased claims every supported sentence would be copied from its passage,
and the best rule would be "keep only copied words", which would drop every reworded
sentence a model writes.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import harness  # noqa: F401 - puts the checkout first on sys.path
import numpy as np

from qa.generation.verify import Source, measure
from qa.search import RankedPassage, Reply
from qa.service import QAService

TOP = 5
MIN_WORDS = 5  # shorter pieces (headings such as "BACKGROUND:") are not claims
_DIGITS = re.compile(r"\d+")
_WORD_SWAP = {"two": "three", "three": "four", "four": "five", "five": "six", "nine": "eleven"}


@dataclass(frozen=True)
class Example:
    """One labelled sentence and what the verifier measured of it."""

    dataset: str
    category: str
    supported: bool | None  # None: not labelled (measured for information)
    meaning: float
    words: float
    figures_found: bool


@dataclass(frozen=True)
class Item:
    """A labelled question: its text and which of its top passages are gold."""

    question: str
    gold: frozenset[str]  # gold document ids, or gold snippets on the article
    by_snippet: bool


def _sentences(service: QAService, collection: str, passage: RankedPassage) -> list[str]:
    stored = service.collection(collection).sentences([passage.passage_id])
    spans = stored.get(passage.passage_id, ([], None))[0]
    texts = [passage.text[a:b] for a, b in spans]
    return [t for t in texts if len(t.split()) >= MIN_WORDS]


def _is_gold(item: Item, passage: RankedPassage) -> bool:
    if item.by_snippet:
        return any(snippet in passage.text for snippet in item.gold)
    return passage.citation.document_id in item.gold


def _closest(service: QAService, question: str, texts: list[str]) -> int:
    vectors = service.embedder.encode_sentences(texts)
    return int(np.argmax(vectors @ service.embedder.encode_queries([question])[0]))


def trimmed(text: str) -> str | None:
    words = text.split()
    cut = round(len(words) * 0.15)
    if len(words) < 8 or cut < 1:
        return None
    return " ".join(words[cut : len(words) - cut])


def figure_changed(text: str, sources: str) -> str | None:
    """``text`` with its first figure changed to one ``sources`` doesn't have, or ``None``."""
    match = _DIGITS.search(text)
    if match:
        for step in (7, 13, 29):
            new = str(int(match.group(0)) + step)
            if new not in sources:
                return text[: match.start()] + new + text[match.end() :]
    for word, other in _WORD_SWAP.items():
        found = re.search(rf"\b{word}\b", text)
        if found and other not in sources:
            return text[: found.start()] + other + text[found.end() :]
    return None


class Builder:
    """Makes and measures the examples of one dataset."""

    def __init__(self, service: QAService, collection: str, name: str, seed: int = 20) -> None:
        self.service = service
        self.collection = collection
        self.name = name
        self.random = random.Random(seed)
        self.examples: list[Example] = []
        loaded = service.collection(collection)
        import faiss

        self.ids = faiss.vector_to_array(loaded.dense.id_map).astype(np.int64).tolist()

    def add(self, category: str, supported: bool | None, text: str, given: list[Source]) -> None:
        vector = self.service.embedder.encode_sentences([text])[0]
        found = measure(text, vector, [1], given)
        self.examples.append(
            Example(self.name, category, supported, found.meaning, found.words, found.figures_found)
        )

    def random_sentence(self, avoid: set[str]) -> str | None:
        """A sentence of a random passage whose document (or text, on one document) isn't avoided."""
        loaded = self.service.collection(self.collection)
        for _ in range(20):
            row = loaded.passage(self.random.choice(self.ids))
            if row is None or row.document_id in avoid or row.text in avoid:
                continue
            pieces = [s for s in re.split(r"(?<=[.!?])\s+", row.text) if len(s.split()) >= 8]
            if pieces:
                return self.random.choice(pieces)
        return None

    def question(self, item: Item, claim: str | None = None) -> None:
        """The examples of one labelled question (none when no gold passage is in the top)."""
        reply: Reply = self.service.ask(item.question, collection=self.collection, top_k=TOP)
        given = reply.passages[:TOP]
        gold = [p for p in given if _is_gold(item, p)]
        if not gold:
            return
        target = gold[0]
        cited = [Source(target.text, self._stored(target))]
        texts = _sentences(self.service, self.collection, target)
        if texts:
            best = _closest(self.service, item.question, texts)
            others = [t for i, t in enumerate(texts) if i != best]
            chosen = [texts[best], *([self.random.choice(others)] if others else [])]
            for text in chosen:
                self.add("verbatim", True, text, cited)
                short = trimmed(text)
                if short:
                    self.add("trimmed", True, short, cited)
            changed = figure_changed(texts[best], target.text)
            if changed:
                self.add("figure changed", False, changed, cited)
        self._swapped(item, given, target, cited)
        if claim:
            self.add("claim, gold abstract", True, claim, cited)
            other = next((p for p in given if not _is_gold(item, p)), None)
            if other is not None:
                self.add(
                    "claim, other abstract", False, claim, [Source(other.text, self._stored(other))]
                )

    def _swapped(
        self, item: Item, given: list[RankedPassage], target: RankedPassage, cited: list[Source]
    ) -> None:
        wrong = [p for p in given if not _is_gold(item, p)]
        if item.by_snippet:
            wrong = [p for p in wrong if p.passage_id != target.passage_id]
        texts = [t for p in wrong for t in _sentences(self.service, self.collection, p)]
        if texts:
            self.add(
                "other passage", False, texts[_closest(self.service, item.question, texts)], cited
            )
        avoid = {target.text} if item.by_snippet else set(item.gold)
        random_text = self.random_sentence(avoid)
        if random_text:
            self.add("random document", False, random_text, cited)

    def _stored(self, passage: RankedPassage) -> tuple[list[tuple[int, int]], np.ndarray]:
        loaded = self.service.collection(self.collection)
        return loaded.sentences([passage.passage_id])[passage.passage_id]


def article_items(path: Path) -> list[Item]:
    """The answerable, self-contained questions of a labelled JSONL file (gold snippets)."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        if record.get("gold_snippets") and not record.get("history"):
            items.append(Item(record["question"], frozenset(record["gold_snippets"]), True))
    return items


def scifact_items(folder: Path, split: str, limit: int, seed: int = 20) -> list[Item]:
    """SciFact claims of a split with their gold abstracts (a seeded sample of ``limit``)."""
    texts = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        texts[record["_id"]] = record["text"]
    gold: dict[str, set[str]] = {}
    for line in (folder / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query, document, score = line.split("\t")
        if int(score) > 0:
            gold.setdefault(query, set()).add(document)
    items = [Item(texts[q], frozenset(d), False) for q, d in sorted(gold.items())]
    random.Random(seed).shuffle(items)
    return items[:limit]
