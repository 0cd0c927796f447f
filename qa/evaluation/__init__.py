"""Offline evaluation: datasets, cached collections, retrieval runs, metrics, reports, the gate.

Two dataset formats are read:

* a **BEIR folder**: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (judged at
  document level; a document's score is its best passage's score);
* a **question JSONL** for a user's own documents, one object per line::

      {"id": "q1", "question": "...", "history": [{"role": "user", "content": "..."}, ...],
       "gold_snippets": ["text that appears in a relevant passage"],
       "gold_documents": ["doc id"], "gold_passages": [12],
       "answer": "words the answering sentence should contain", "group": "g1"}

  Only ``question`` is required. Snippet and passage gold are judged at passage level (a
  passage is relevant when it contains a snippet, ignoring case and whitespace); document
  gold at document level. A question without gold means "the documents don't answer
  this": it is left out of the ranking metrics and scored on abstention instead.

Metrics come from ``ir_measures`` (pytrec_eval underneath): nDCG@10, RR@10, R@1/5/10/100 and
AP@100, reported under the keys of :data:`HEADLINE`, averaged over the questions with gold.

The collection is built once per (corpus files' hash, model fingerprint, passage settings)
under the name ``eval-<dataset>-<12 hex of that key>`` and reused while they are unchanged
(a cached collection that no longer loads, e.g. after a store format change, is rebuilt).

A report (one per retriever)::

    {"dataset", "split", "config": {"retriever", "collection", "model", "top_k", ...},
     "metrics": {"ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "map@100"},
     "latency_ms": {"p50", "p95", "mean"}, "qps",
     "queries": {"total", "ranked", "unanswerable", "failed"},
     "abstention": {...}, "answers": {...}, "followups": {...},   # question files only
     "per_query": [{"id", "question", "gold", "first_relevant_rank", "failed", "metrics",
                    "latency_ms", "retrieved": [{"rank", "id", "title", "score", "relevant"}, ...]}, ...]}

The JSON file holds that report when one retriever ran, and ``{"runs": [report, ...]}`` when
several did (:func:`bundle`); the gate reads both shapes and matches runs by retriever.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("qa.evaluation")

RETRIEVERS = ("dense", "bm25", "hybrid")
DEFAULT_RETRIEVER = "hybrid"  # the service default (dense and bm25 are the published baselines)
DEFAULT_TOP_K = 100
PASSAGE_DEPTH = 3  # passages retrieved per document wanted, before aggregating to documents
FAILURE_CUTOFF = 10  # a query "failed" when nothing relevant is in its top 10
REPORT_TOP = 10  # retrieved items kept per query in the JSON report
TEXT_CHARS = 160  # characters of each retrieved passage kept in the report

HEADLINE = ("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "map@100")
_MEASURE_NAMES = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "RR@10",
    "recall@1": "R@1",
    "recall@5": "R@5",
    "recall@10": "R@10",
    "recall@100": "R@100",
    "map@100": "AP@100",
}
QUESTION_FIELDS = {
    "id",
    "question",
    "history",
    "gold_snippets",
    "gold_documents",
    "gold_passages",
    "answer",
    "group",
    "note",
}


# --------------------------------------------------------------------------- errors


class DatasetError(Exception):
    """A dataset that can't be read, naming the file (and line) and what is wrong."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class BaselineError(Exception):
    """A baseline report that can't be compared with."""


# --------------------------------------------------------------------------- datasets


@dataclass
class Question:
    """One evaluation question and its gold."""

    id: str
    text: str
    history: list[dict[str, str]] = field(default_factory=list)
    gold_documents: dict[str, int] = field(default_factory=dict)  # document id -> grade
    gold_passages: dict[int, int] = field(default_factory=dict)  # passage id -> grade
    gold_snippets: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)  # any of these in the answer sentence
    group: str | None = None
    line: int | None = None

    @property
    def unit(self) -> str:
        """What the gold judges: ``"passage"`` or ``"document"``."""
        return "passage" if self.gold_passages or self.gold_snippets else "document"

    @property
    def answerable(self) -> bool:
        return bool(self.gold_documents or self.gold_passages or self.gold_snippets)

    @property
    def followup(self) -> bool:
        return bool(self.history)


@dataclass
class Dataset:
    """Questions with gold, and where their documents come from."""

    name: str
    path: Path
    format: str  # "beir" or "jsonl"
    split: str | None
    questions: list[Question]
    corpus_paths: list[Path] = field(default_factory=list)
    collection: str | None = None  # an existing collection to search instead of building one

    @property
    def with_answers(self) -> bool:
        """Whether the answer step is run (abstention and answer-sentence checks need it)."""
        return self.format == "jsonl"


def load_dataset(
    path: Path,
    split: str = "test",
    corpus: Sequence[Path] | None = None,
    collection: str | None = None,
    default_corpus: Path | None = None,
    limit: int | None = None,
) -> Dataset:
    """A BEIR folder or a question JSONL; raises :class:`DatasetError` with file and line."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(
            path, "no such file or folder (give a BEIR folder or a question .jsonl file)"
        )
    if path.is_dir():
        dataset = load_beir(path, split)
        if corpus:
            dataset.corpus_paths = [Path(p) for p in corpus]
        dataset.collection = collection
    else:
        if path.suffix.lower() != ".jsonl":
            raise DatasetError(path, "not a BEIR folder or a .jsonl question file")
        questions = load_questions(path)
        paths = (
            [Path(p) for p in corpus]
            if corpus
            else ([] if collection else [default_corpus] if default_corpus else [])
        )
        if not paths and not collection:
            raise DatasetError(path, "question files need --corpus PATH or --collection NAME")
        for item in paths:
            if not Path(item).exists():
                raise DatasetError(item, "no such file or folder (given as the corpus)")
        dataset = Dataset(path.stem, path, "jsonl", None, questions, paths, collection)
    if limit is not None:
        dataset.questions = dataset.questions[:limit]
    if not dataset.questions:
        raise DatasetError(path, "no questions to evaluate")
    return dataset


def _read_json_lines(path: Path) -> Iterable[tuple[int, Any]]:
    """``(line number, parsed object)`` of each non-blank line; malformed lines raise."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DatasetError(path, f"unreadable ({exc.strerror or exc})") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except UnicodeDecodeError:
                raise DatasetError(path, "not valid UTF-8", number) from None
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    path, f"malformed JSON ({exc.msg} at column {exc.colno})", number
                ) from None


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR ``query-id corpus-id score`` (optional header) or TREC ``qid Q0 docid rel`` lines."""
    qrels: dict[str, dict[str, int]] = {}
    header_allowed = True
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(path, "not valid UTF-8") from None
    except OSError as exc:
        raise DatasetError(path, f"unreadable ({exc.strerror or exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [p.strip() for p in parts]
        if len(parts) == 4:
            query_id, _, doc_id, grade = parts
        elif len(parts) == 3:
            query_id, doc_id, grade = parts
        else:
            raise DatasetError(
                path,
                f"expected 3 tab-separated columns (query-id, corpus-id, score), found {len(parts)}",
                number,
            )
        try:
            value = int(float(grade))
        except (ValueError, OverflowError):
            if header_allowed:  # the header line ("query-id corpus-id score")
                header_allowed = False
                continue
            raise DatasetError(path, f"relevance score {grade!r} is not a number", number) from None
        header_allowed = False
        if not query_id or not doc_id:
            raise DatasetError(path, "empty query or document id", number)
        qrels.setdefault(query_id, {})[doc_id] = value
    if not qrels:
        raise DatasetError(path, "no judgements in this file")
    return qrels


def load_beir(folder: Path, split: str = "test") -> Dataset:
    """A BEIR dataset folder: the queries judged in ``qrels/<split>.tsv``, in qrels order."""
    corpus = folder / "corpus.jsonl"
    queries_file = folder / "queries.jsonl"
    qrels_file = folder / "qrels" / f"{split}.tsv"
    for needed in (corpus, queries_file):
        if not needed.is_file():
            raise DatasetError(
                folder,
                f"not a BEIR folder: {needed.name} is missing (expected corpus.jsonl, queries.jsonl, qrels/<split>.tsv)",
            )
    if not qrels_file.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise DatasetError(
            qrels_file, f"no such split {split!r}; available: {', '.join(splits) or 'none'}"
        )
    qrels = read_qrels(qrels_file)
    texts: dict[str, str] = {}
    for number, record in _read_json_lines(queries_file):
        if (
            not isinstance(record, dict)
            or "_id" not in record
            or not isinstance(record.get("text"), str)
        ):
            raise DatasetError(queries_file, 'not a BEIR query (needs "_id" and "text")', number)
        texts[str(record["_id"])] = record["text"]
    missing = [q for q in qrels if q not in texts]
    if missing:
        raise DatasetError(
            qrels_file,
            f"{len(missing)} judged queries are not in queries.jsonl (e.g. {missing[0]!r})",
        )
    questions = [Question(id=q, text=texts[q], gold_documents=dict(g)) for q, g in qrels.items()]
    return Dataset(folder.name, folder, "beir", split, questions, [corpus])


def validate_corpus_jsonl(path: Path) -> int:
    """Check every line of a BEIR ``corpus.jsonl`` before indexing; the number of documents."""
    count = 0
    for number, record in _read_json_lines(path):
        if not isinstance(record, dict) or "_id" not in record:
            raise DatasetError(
                path, 'not a BEIR document (needs "_id", "title" and "text")', number
            )
        count += 1
    if not count:
        raise DatasetError(path, "no documents")
    return count


def _strings(value: Any, path: Path, number: int, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DatasetError(path, f'"{name}" must be a list of non-empty strings', number)
    return list(value)


def _grades(value: Any, path: Path, number: int, name: str, as_int: bool) -> dict[Any, int]:
    if value is None:
        return {}
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((v, 1) for v in value)
    else:
        raise DatasetError(
            path, f'"{name}" must be a list of ids or an object {{id: grade}}', number
        )
    out: dict[Any, int] = {}
    for key, grade in items:
        if not isinstance(grade, int) or isinstance(grade, bool):
            raise DatasetError(path, f'"{name}": grade of {key!r} must be an integer', number)
        if as_int:
            try:
                key = int(key)
            except (TypeError, ValueError):
                raise DatasetError(
                    path, f'"{name}": passage id {key!r} is not an integer', number
                ) from None
        elif not isinstance(key, (str, int)) or not str(key):
            raise DatasetError(path, f'"{name}": document id {key!r} must be a string', number)
        out[key if as_int else str(key)] = grade
    return out


def _history(value: Any, path: Path, number: int) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DatasetError(
            path, '"history" must be a list of {"role", "content"} turns, oldest first', number
        )
    turns = []
    for turn in value:
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in {"user", "assistant"}
            or not isinstance(turn.get("content"), str)
        ):
            raise DatasetError(
                path,
                '"history" turns must be {"role": "user"|"assistant", "content": "..."}',
                number,
            )
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns


def load_questions(path: Path) -> list[Question]:
    """A question JSONL (see the module docstring)."""
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for number, record in _read_json_lines(path):
        if not isinstance(record, dict):
            raise DatasetError(path, "each line must be a JSON object", number)
        unknown = sorted(set(record) - QUESTION_FIELDS)
        if unknown:
            raise DatasetError(
                path,
                f"unknown field {unknown[0]!r} (known: {', '.join(sorted(QUESTION_FIELDS))})",
                number,
            )
        text = record.get("question")
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(path, '"question" is missing or empty', number)
        qid = str(record.get("id", f"line{number}"))
        if qid in seen:
            raise DatasetError(path, f"duplicate id {qid!r} (first on line {seen[qid]})", number)
        seen[qid] = number
        question = Question(
            id=qid,
            text=text,
            history=_history(record.get("history"), path, number),
            gold_documents=_grades(
                record.get("gold_documents"), path, number, "gold_documents", False
            ),
            gold_passages=_grades(record.get("gold_passages"), path, number, "gold_passages", True),
            gold_snippets=_strings(record.get("gold_snippets"), path, number, "gold_snippets"),
            answer=_strings(record.get("answer"), path, number, "answer"),
            group=None if record.get("group") is None else str(record["group"]),
            line=number,
        )
        if question.gold_documents and (question.gold_passages or question.gold_snippets):
            raise DatasetError(
                path, "give gold at one level: documents, or passages/snippets, not both", number
            )
        questions.append(question)
    if not questions:
        raise DatasetError(path, "no questions in this file")
    return questions


# --------------------------------------------------------------------------- text matching


_QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)


def normalise(text: str) -> str:
    """Case-, whitespace- and quote-style-insensitive form used for snippet matching."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold().split())


def contains(text: str, snippet: str) -> bool:
    return normalise(snippet) in normalise(text)


# --------------------------------------------------------------------------- the collection


def _hash_paths(paths: Sequence[Path]) -> str:
    """SHA-256 over the files under ``paths``: names relative to each root, and contents."""
    digest = hashlib.sha256()
    for root in sorted(Path(p).resolve() for p in paths):
        if root.is_file():
            files = [root]
        else:
            files = sorted(
                f
                for f in root.rglob("*")
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(root).parts)
            )
        for file in files:
            digest.update(
                (file.name if file == root else file.relative_to(root).as_posix()).encode()
            )
            digest.update(b"\x00")
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\x00")
    return digest.hexdigest()


def collection_key(corpus_paths: Sequence[Path], service: Any) -> str:
    """Changes whenever the corpus files, the model or the passage settings change."""
    parts = {
        "corpus": _hash_paths(corpus_paths),
        "model": service.embedder.identity.fingerprint,
        "passages": service.indexer.passage_settings(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def collection_name(dataset_name: str, key: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset_name).strip("-._")[:40] or "dataset"
    return f"eval-{slug}-{key[:12]}"


@dataclass
class Prepared:
    collection: str
    key: str | None
    built: bool
    seconds: float
    index_report: dict[str, Any] | None = None


def ensure_collection(service: Any, dataset: Dataset, progress: bool = True) -> Prepared:
    """The collection to search: the dataset's cached one (built if missing) or the one given."""
    from qa.store.collection import StoreError, current_generation

    started = time.perf_counter()
    if dataset.collection:
        service.collection(dataset.collection)  # raises UnknownCollection with the names available
        return Prepared(dataset.collection, None, False, 0.0)
    key = collection_key(dataset.corpus_paths, service)
    name = collection_name(dataset.name, key)
    full = False
    if current_generation(service.settings.collection_dir(name)) is not None:
        try:
            service.collection(name)
            log.info("reusing cached collection %r in %s", name, service.settings.index_dir)
            return Prepared(name, key, False, time.perf_counter() - started)
        except StoreError as exc:
            log.warning("rebuilding the cached collection: %s", exc)
            full = True
    for corpus in dataset.corpus_paths:
        if corpus.suffix.lower() == ".jsonl" and corpus.is_file():
            validate_corpus_jsonl(corpus)
    log.info(
        "building collection %r in %s (once; reused while corpus and model are unchanged)",
        name,
        service.settings.index_dir,
    )
    report = service.index(list(dataset.corpus_paths), name, full=full, progress=progress)
    for skip in report.skipped:
        log.warning("%s", skip)
    return Prepared(name, key, True, time.perf_counter() - started, report.to_dict())


def snippet_qrels(dataset: Dataset, collection: Any) -> dict[str, dict[int, int]]:
    """Passage-level gold of each question: snippet matches plus explicit passage ids."""
    wanted = [q for q in dataset.questions if q.unit == "passage"]
    if not wanted:
        return {}
    passages = collection.passages_of(sorted(collection.document_hashes()))
    known = {p.id for p in passages}
    texts = [(p.id, normalise(p.text)) for p in passages]
    out: dict[str, dict[int, int]] = {}
    for question in wanted:
        gold = dict(question.gold_passages)
        for passage_id in gold:
            if passage_id not in known:
                raise DatasetError(
                    dataset.path,
                    f"passage {passage_id} is not in collection {collection.name!r}",
                    question.line,
                )
        for snippet in question.gold_snippets:
            needle = normalise(snippet)
            matched = [pid for pid, text in texts if needle in text]
            if not matched:
                raise DatasetError(
                    dataset.path,
                    f"gold snippet {snippet!r} is not in any passage of collection {collection.name!r} "
                    "(a snippet must lie within one passage; shorten it)",
                    question.line,
                )
            for pid in matched:
                gold[pid] = max(gold.get(pid, 0), 1)
        out[question.id] = gold
    return out


# --------------------------------------------------------------------------- retrieval


@dataclass
class Item:
    """One ranked unit (a document or a passage) of one query."""

    id: str
    score: float
    title: str
    document_id: str
    passage_id: int
    text: str = ""  # the start of the (best) passage, for error analysis


def aggregate_documents(
    passages: Iterable[tuple[str, int, float, str] | tuple[str, int, float, str, str]],
) -> list[Item]:
    """``(document_id, passage_id, score, title[, text])`` hits to documents: a document's score
    is its best passage's score; ties keep the order of the documents' first appearance."""
    best: dict[str, Item] = {}
    order: dict[str, int] = {}
    for document_id, passage_id, score, title, *text in passages:
        if document_id not in order:
            order[document_id] = len(order)
        current = best.get(document_id)
        if current is None or score > current.score:
            best[document_id] = Item(
                document_id, float(score), title, document_id, passage_id, "".join(text)
            )
    return sorted(best.values(), key=lambda item: (-item.score, order[item.id]))


def passage_key(passage_id: int) -> str:
    return f"#{passage_id}"


def _turns(history: list[dict[str, str]]) -> list[Any]:
    from qa.search.followups import Turn

    return [Turn(turn["role"], turn["content"]) for turn in history]


@dataclass
class QueryResult:
    question: Question
    items: list[Item]
    latency_ms: float
    answer: Any = None  # AnswerSpan | None


def run_queries(
    service: Any,
    collection: str,
    dataset: Dataset,
    mode: str,
    top_k: int,
    progress: bool = True,
) -> tuple[list[QueryResult], float]:
    """Ask every question; ``(results, wall seconds)``. Latency is per ``QAService.search`` call."""
    from tqdm import tqdm

    results: list[QueryResult] = []
    warm = dataset.questions[0]
    service.search(
        warm.text, 5, collection, with_answer=dataset.with_answers, mode=mode
    )  # load and warm up
    started = time.perf_counter()
    bar = tqdm(
        dataset.questions,
        desc=f"Querying ({mode})",
        unit="q",
        disable=not progress,
        dynamic_ncols=True,
    )
    for question in bar:
        document_level = question.unit == "document"
        depth = top_k * PASSAGE_DEPTH if document_level else top_k
        began = time.perf_counter()
        reply = service.search(
            question.text,
            top_k=depth,
            collection=collection,
            history=_turns(question.history),
            with_answer=dataset.with_answers,
            mode=mode,
        )
        latency = (time.perf_counter() - began) * 1000
        hits = [
            (p.citation.document_id, p.passage_id, p.score, p.citation.title, p.text[:TEXT_CHARS])
            for p in reply.passages
        ]
        if document_level:
            items = aggregate_documents(hits)[:top_k]
        else:
            items = [
                Item(passage_key(pid), float(score), title, doc, pid, text)
                for doc, pid, score, title, text in hits
            ]
            items = items[:top_k]
        results.append(QueryResult(question, items, latency, reply.answer))
    bar.close()
    return results, time.perf_counter() - started


# --------------------------------------------------------------------------- metrics


def measures() -> dict[str, Any]:
    import ir_measures

    return {key: ir_measures.parse_measure(name) for key, name in _MEASURE_NAMES.items()}


def compute_metrics(
    qrels: dict[str, dict[str, int]], run: dict[str, list[str]]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Aggregate and per-query headline metrics with ``ir_measures``.

    ``run`` maps a query id to its ranked ids, best first. The library is given scores
    that decrease with rank, so the ranking evaluated is exactly the system's (pytrec_eval
    would otherwise re-sort tied scores by id). Queries in ``qrels`` with an empty ranking
    score zero; queries not in ``qrels`` are ignored.
    """
    import ir_measures

    wanted = measures()
    by_measure = {m: key for key, m in wanted.items()}
    qrel_rows = [
        ir_measures.Qrel(qid, did, int(grade))
        for qid, docs in qrels.items()
        for did, grade in docs.items()
    ]
    run_rows = [
        ir_measures.ScoredDoc(qid, did, float(len(ranked) - rank))
        for qid, ranked in run.items()
        if qid in qrels
        for rank, did in enumerate(ranked)
    ]
    evaluator = ir_measures.evaluator(list(wanted.values()), qrel_rows)
    per_query: dict[str, dict[str, float]] = {qid: {key: 0.0 for key in HEADLINE} for qid in qrels}
    for metric in evaluator.iter_calc(run_rows):
        per_query.setdefault(metric.query_id, {})[by_measure[metric.measure]] = float(metric.value)
    # ir_measures averages over every query in the qrels (one without a ranking counts as zero)
    aggregate = evaluator.calc_aggregate(run_rows)
    totals = {key: float(aggregate.get(wanted[key], 0.0)) for key in HEADLINE}
    return totals, per_query


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else 0.0


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rounded(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


# --------------------------------------------------------------------------- reports


def build_report(
    dataset: Dataset,
    mode: str,
    results: list[QueryResult],
    wall_seconds: float,
    passage_gold: dict[str, dict[int, int]],
    config: dict[str, Any],
    describe: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    """One retriever's report: metrics, latency, abstention, per-query details.

    ``describe(gold_id)`` names a gold document or passage (its title or text) for the
    failed queries, so the report can be read without opening the collection.
    """
    qrels: dict[str, dict[str, int]] = {}
    for question in dataset.questions:
        if not question.answerable:
            continue
        if question.unit == "passage":
            qrels[question.id] = {
                passage_key(p): g for p, g in passage_gold.get(question.id, {}).items()
            }
        else:
            qrels[question.id] = dict(question.gold_documents)
    run = {r.question.id: [item.id for item in r.items] for r in results}
    metrics, per_query_metrics = compute_metrics(qrels, run)
    latencies = [r.latency_ms for r in results]

    per_query = []
    for result in results:
        q = result.question
        gold = qrels.get(q.id, {})
        first = next(
            (rank for rank, item in enumerate(result.items, 1) if gold.get(item.id, 0) > 0), None
        )
        failed = q.answerable and (first is None or first > FAILURE_CUTOFF)
        with_text = q.unit == "passage" or failed
        entry: dict[str, Any] = {
            "id": q.id,
            "question": q.text,
            "unit": q.unit,
            "answerable": q.answerable,
            "followup": q.followup,
            "group": q.group,
            "gold": sorted(gold) if q.answerable else [],
            "first_relevant_rank": first,
            "results": len(result.items),
            "failed": failed,
            "metrics": per_query_metrics.get(q.id) if q.answerable else None,
            "latency_ms": result.latency_ms,
            "retrieved": [
                {
                    "rank": rank,
                    "id": item.id,
                    "document_id": item.document_id,
                    "passage_id": item.passage_id,
                    "title": item.title,
                    "score": item.score,
                    "relevant": gold.get(item.id, 0) > 0,
                    **({"text": item.text} if with_text else {}),
                }
                for rank, item in enumerate(result.items[:REPORT_TOP], 1)
            ],
        }
        if failed and describe is not None:
            entry["gold_described"] = {g: describe(g) for g in sorted(gold)[:5] if gold[g] > 0}
        if q.history:
            entry["history"] = q.history
        if dataset.with_answers:
            answer = result.answer
            entry["answer"] = {
                "text": answer.text if answer else None,
                "passage_id": answer.passage_id if answer else None,
                "score": answer.score if answer else None,
                "abstained": answer is None,
                "expected": q.answer,
                "correct": _answer_correct(q, answer),
            }
        per_query.append(entry)

    report: dict[str, Any] = {
        "dataset": dataset.name,
        "split": dataset.split,
        "config": {**config, "retriever": mode},
        "metrics": metrics,
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "mean": _mean(latencies) or 0.0,
        },
        "qps": len(results) / wall_seconds if wall_seconds > 0 else None,
        "queries": {
            "total": len(results),
            "ranked": len(qrels),
            "unanswerable": sum(1 for r in results if not r.question.answerable),
            "failed": sum(1 for e in per_query if e["failed"]),
        },
    }
    if dataset.with_answers:
        report["abstention"] = abstention_summary(results)
        report["answers"] = answer_summary(results)
        report["followups"] = followup_summary(per_query)
    report["per_query"] = per_query
    return _rounded(report)


def _answer_correct(question: Question, answer: Any) -> bool | None:
    """Whether the answer sentence holds one of the expected snippets (None when not labelled)."""
    if not question.answerable:
        return answer is None
    if not question.answer:
        return None
    return answer is not None and any(
        contains(answer.text, expected) for expected in question.answer
    )


def abstention_summary(results: list[QueryResult]) -> dict[str, Any]:
    """How well the system answers the answerable and abstains on the rest."""
    unanswerable = [r for r in results if not r.question.answerable]
    answerable = [r for r in results if r.question.answerable]
    abstained_u = sum(1 for r in unanswerable if r.answer is None)
    abstained_a = sum(1 for r in answerable if r.answer is None)
    total = len(results)
    return {
        "unanswerable": len(unanswerable),
        "answerable": len(answerable),
        # correct = abstained on an unanswerable question or answered an answerable one
        "accuracy": (abstained_u + len(answerable) - abstained_a) / total if total else None,
        "correct_abstain_rate": abstained_u / len(unanswerable) if unanswerable else None,
        "false_answer_rate": (len(unanswerable) - abstained_u) / len(unanswerable)
        if unanswerable
        else None,
        "false_abstain_rate": abstained_a / len(answerable) if answerable else None,
    }


def answer_summary(results: list[QueryResult]) -> dict[str, Any]:
    """Share of labelled answerable questions whose answer sentence holds the expected words."""
    labelled = [r for r in results if r.question.answerable and r.question.answer]
    correct = sum(1 for r in labelled if _answer_correct(r.question, r.answer))
    return {
        "labelled": len(labelled),
        "correct": correct,
        "accuracy": correct / len(labelled) if labelled else None,
    }


def followup_summary(per_query: list[dict[str, Any]]) -> dict[str, Any]:
    """Follow-ups next to their self-contained twins (questions sharing a ``group``)."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for entry in per_query:
        if entry["group"] is None or not entry["answerable"]:
            continue
        side = "followup" if entry["followup"] else "self_contained"
        groups.setdefault(entry["group"], {"followup": [], "self_contained": []})[side].append(
            entry
        )
    pairs = {
        g: sides for g, sides in groups.items() if sides["followup"] and sides["self_contained"]
    }

    def summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"questions": len(entries)}
        for key in ("ndcg@10", "mrr@10", "recall@1", "recall@5"):
            out[key] = _mean([e["metrics"][key] for e in entries])
        correct = [e["answer"]["correct"] for e in entries if e["answer"]["correct"] is not None]
        out["answer_accuracy"] = _mean([1.0 if c else 0.0 for c in correct])
        return out

    return {
        "groups": len(pairs),
        "followup": summary([e for sides in pairs.values() for e in sides["followup"]]),
        "self_contained": summary([e for sides in pairs.values() for e in sides["self_contained"]]),
    }


# --------------------------------------------------------------------------- the whole run


def evaluate(
    service: Any,
    dataset: Dataset,
    retrievers: Sequence[str] = (DEFAULT_RETRIEVER,),
    top_k: int = DEFAULT_TOP_K,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Build or reuse the collection, run each retriever, and return one report per retriever."""
    unknown = [r for r in retrievers if r not in RETRIEVERS]
    if unknown:
        raise ValueError(f"unknown retriever {unknown[0]!r}; choose from {', '.join(RETRIEVERS)}")
    if not dataset.questions:
        raise DatasetError(dataset.path, "no questions to evaluate")
    prepared = ensure_collection(service, dataset, progress=progress)
    collection = service.collection(prepared.collection)
    passage_gold = snippet_qrels(dataset, collection)
    identity = service.embedder.identity
    config = {
        "format": dataset.format,
        "dataset_path": str(dataset.path.resolve()),
        "corpus": [str(p.resolve()) for p in dataset.corpus_paths],
        "collection": prepared.collection,
        "collection_key": prepared.key,
        "index_dir": str(service.settings.index_dir),
        "collection_built_now": prepared.built,
        "index_seconds": prepared.seconds,
        "counts": collection.counts,
        "model": {
            "name": identity.name,
            "fingerprint": identity.fingerprint[:16],
            "max_seq_length": identity.max_seq_length,
        },
        "passage_settings": service.indexer.passage_settings(),
        "top_k": top_k,
        "passage_depth": top_k * PASSAGE_DEPTH,
        "aggregation": "document score = best passage score",
        "with_answers": dataset.with_answers,
        "fusion": asdict(service.fusion),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    reports = []
    for mode in retrievers:
        results, wall = run_queries(service, prepared.collection, dataset, mode, top_k, progress)
        report = build_report(
            dataset, mode, results, wall, passage_gold, config, _describer(collection)
        )
        if mode != "hybrid":
            report["config"].pop("fusion", None)
        reports.append(report)
    return reports


def _describer(collection: Any) -> Callable[[str], str | None]:
    """Title of a gold document, or the start of a gold passage (``#<id>``)."""

    def describe(gold_id: str) -> str | None:
        if gold_id.startswith("#") and gold_id[1:].isdigit():
            row = collection.passage(int(gold_id[1:]))
            return row.text[:TEXT_CHARS] if row is not None else None
        document = collection.document(gold_id)
        return document.title if document is not None else None

    return describe


def bundle(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """What the JSON file holds: the report itself for one retriever, ``{"runs": [...]}`` for several."""
    return reports[0] if len(reports) == 1 else {"runs": reports}


def unbundle(data: Any) -> list[dict[str, Any]]:
    """The reports in a JSON file written by :func:`bundle`."""
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        return data["runs"]
    if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
        return [data]
    raise BaselineError('not an evaluation report (expected "metrics" or "runs")')


# --------------------------------------------------------------------------- the gate


@dataclass
class Regression:
    retriever: str
    metric: str
    baseline: float
    current: float

    @property
    def drop(self) -> float:
        return self.baseline - self.current

    def __str__(self) -> str:
        return (
            f"{self.retriever}: {self.metric} fell by {self.drop:.4f} "
            f"({self.baseline:.4f} -> {self.current:.4f})"
        )


def load_baseline(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file") from None
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: unreadable baseline ({exc})") from None
    try:
        return unbundle(data)
    except BaselineError as exc:
        raise BaselineError(f"{path}: {exc}") from None


def compare(
    baseline: list[dict[str, Any]], current: list[dict[str, Any]], max_drop: float
) -> tuple[list[Regression], list[str]]:
    """Headline metrics that fell by more than ``max_drop`` (absolute), and notes on what was compared."""
    by_name = {r.get("config", {}).get("retriever"): r for r in baseline}
    regressions: list[Regression] = []
    notes: list[str] = []
    matched = 0
    for report in current:
        name = report["config"]["retriever"]
        old = by_name.get(name)
        if old is None:
            notes.append(
                f"{name}: not in the baseline (baseline has {', '.join(map(str, by_name)) or 'nothing'})"
            )
            continue
        matched += 1
        if (old.get("dataset"), old.get("split")) != (report.get("dataset"), report.get("split")):
            notes.append(
                f"{name}: baseline is {old.get('dataset')}/{old.get('split')}, "
                f"this run is {report.get('dataset')}/{report.get('split')}"
            )
        for metric in HEADLINE:
            before = old.get("metrics", {}).get(metric)
            after = report["metrics"].get(metric)
            if before is None or after is None:
                continue
            if before - after > max_drop + 1e-9:
                regressions.append(Regression(name, metric, float(before), float(after)))
    if not matched:
        raise BaselineError(
            "the baseline has no run for any retriever of this run; " + "; ".join(notes)
        )
    return regressions, notes


# --------------------------------------------------------------------------- markdown

_LABELS = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "MRR@10",
    "recall@1": "R@1",
    "recall@5": "R@5",
    "recall@10": "R@10",
    "recall@100": "R@100",
    "map@100": "MAP@100",
}


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _short(text: str, width: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown(reports: list[dict[str, Any]], max_failures: int = 100) -> str:
    """Side-by-side table, abstention and answers, and failed queries per retriever."""
    first = reports[0]
    config = first["config"]
    split = f" ({first['split']} split)" if first.get("split") else ""
    counts = config.get("counts", {})
    lines = [
        f"# Evaluation: {first['dataset']}{split}",
        "",
        (
            f"- collection `{config.get('collection')}` ({counts.get('documents', '?')} documents, "
            f"{counts.get('passages', '?')} passages), model {config.get('model', {}).get('name', '?')}"
        ),
        (
            f"- {first['queries']['total']} questions ({first['queries']['ranked']} with gold), "
            f"top-k {config.get('top_k', '?')}; " + _units(first)
        ),
        "",
        "| retriever | " + " | ".join(_LABELS[k] for k in HEADLINE) + " | p50 ms | p95 ms | q/s |",
        "|---|" + "---:|" * (len(HEADLINE) + 3),
    ]
    for report in reports:
        row = [report["config"]["retriever"]] + [_cell(report["metrics"][k]) for k in HEADLINE]
        row += [
            _cell(report["latency_ms"]["p50"], 1),
            _cell(report["latency_ms"]["p95"], 1),
            _cell(report["qps"], 1),
        ]
        lines.append("| " + " | ".join(row) + " |")
    if "abstention" in first:
        lines += [
            "",
            "## Answers and abstention",
            "",
            "| retriever | answer-sentence accuracy | abstention accuracy | correct abstain | false answer | false abstain |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for report in reports:
            a, s = report["answers"], report["abstention"]
            lines.append(
                f"| {report['config']['retriever']} | {_cell(a['accuracy'])} ({a['correct']}/{a['labelled']}) | "
                f"{_cell(s['accuracy'])} | {_cell(s['correct_abstain_rate'])} | {_cell(s['false_answer_rate'])} | "
                f"{_cell(s['false_abstain_rate'])} |"
            )
        lines += [
            "",
            "Unanswerable questions are left out of the ranking metrics; abstaining on them is correct.",
            "",
            "## Follow-ups vs their self-contained twins",
            "",
            "| retriever | questions | nDCG@10 | MRR@10 | R@1 | answer accuracy |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for report in reports:
            for side in ("followup", "self_contained"):
                s = report["followups"][side]
                lines.append(
                    f"| {report['config']['retriever']} | {side.replace('_', '-')} ({s['questions']}) | "
                    f"{_cell(s['ndcg@10'])} | {_cell(s['mrr@10'])} | {_cell(s['recall@1'])} | {_cell(s['answer_accuracy'])} |"
                )
    for report in reports:
        failed = [q for q in report["per_query"] if q["failed"]]
        lines += [
            "",
            (
                f"## Failed queries: {report['config']['retriever']} ({len(failed)} of "
                f"{report['queries']['ranked']} with nothing relevant in the top {FAILURE_CUTOFF})"
            ),
            "",
        ]
        if not failed:
            lines.append("None.")
        for entry in failed[:max_failures]:
            found = (
                f"first relevant at rank {entry['first_relevant_rank']}"
                if entry["first_relevant_rank"]
                else "no relevant result retrieved"
            )
            gold = ", ".join(
                f"`{g}` {_cell(_short(d, 60))}" if d else f"`{g}`"
                for g, d in (
                    entry.get("gold_described") or {g: None for g in entry["gold"][:5]}
                ).items()
            )
            lines.append(
                f"- **{_cell(entry['id'])}** {_cell(_short(entry['question']))} — gold {gold}; {found}. Got:"
            )
            for item in entry["retrieved"][:3]:
                label = item["title"] if entry["unit"] == "document" else item["text"]
                lines.append(
                    f"  {item['rank']}. `{item['id']}` {_cell(_short(label, 90))} ({_cell(item['score'])})"
                )
        if len(failed) > max_failures:
            lines.append(
                f"- … {len(failed) - max_failures} more in the JSON report (`per_query`, `failed: true`)."
            )
    return "\n".join(lines) + "\n"


def _units(report: dict[str, Any]) -> str:
    units = {q["unit"] for q in report["per_query"] if q["answerable"]}
    parts = []
    if "document" in units:
        parts.append("judged per document (document score = best passage score)")
    if "passage" in units:
        parts.append("judged per passage (snippet or passage-id gold)")
    return "; ".join(parts) or "no gold"


def summary_lines(reports: list[dict[str, Any]]) -> list[str]:
    """A short plain-text summary for the terminal."""
    out = []
    for report in reports:
        m = report["metrics"]
        metrics = "  ".join(f"{_LABELS[k]} {m[k]:.4f}" for k in HEADLINE)
        out.append(
            f"{report['config']['retriever']:<7} {metrics}  p50 {report['latency_ms']['p50']:.1f} ms  "
            f"p95 {report['latency_ms']['p95']:.1f} ms  {report['qps'] or 0:.1f} q/s  "
            f"failed {report['queries']['failed']}/{report['queries']['ranked']}"
        )
        if "abstention" in report:
            s, a = report["abstention"], report["answers"]
            out.append(
                f"        answers {a['correct']}/{a['labelled']} correct; abstention accuracy {_cell(s['accuracy'])}, "
                f"false answers {_cell(s['false_answer_rate'])} on {s['unanswerable']} unanswerable"
            )
    return out
