"""Datasets: questions with gold, read from a BEIR folder or a question JSONL file.

Two formats are read:

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

Every problem is a :class:`~qa.errors.DatasetError` naming the file (and line).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    JsonValue,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from qa.errors import DatasetError
from qa.search import Turn


def _listed(value: object) -> object:
    """A lone string stands for a list of one."""
    return [value] if isinstance(value, str) else value


def _graded(value: object) -> object:
    """A list of ids stands for ``{id: 1}``."""
    if isinstance(value, list) and all(isinstance(v, Hashable) for v in value):
        return dict.fromkeys(value, 1)
    return value


def _scalar_text(value: object) -> object:
    """Numbers and booleans are accepted where a label is wanted, as their text."""
    return str(value) if isinstance(value, (int, float)) else value


NonBlank = Annotated[StrictStr, StringConstraints(pattern=r"\S")]
Texts = Annotated[list[NonBlank], BeforeValidator(_listed)]
Label = Annotated[str, BeforeValidator(_scalar_text)]
DocumentId = Annotated[str, BeforeValidator(_scalar_text), StringConstraints(min_length=1)]
Grade = StrictInt  # booleans and floats are not grades


class HistoryTurn(Turn):
    """One earlier turn of a conversation in a question file: as in the API, but other keys
    in the object are ignored and a turn may be of any length."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    role: Literal["user", "assistant"]
    content: StrictStr


class QuestionLine(BaseModel):
    """One line of a question JSONL file, exactly as written (the fields in check order)."""

    model_config = ConfigDict(extra="forbid")

    question: NonBlank
    id: Label | None = None
    history: list[HistoryTurn] | None = None
    gold_documents: Annotated[dict[DocumentId, Grade], BeforeValidator(_graded)] | None = None
    gold_passages: Annotated[dict[int, Grade], BeforeValidator(_graded)] | None = None
    gold_snippets: Texts | None = None
    answer: Texts | None = None
    group: Label | None = None
    note: JsonValue = None  # for the people keeping the file; not read

    @model_validator(mode="after")
    def _one_level(self) -> QuestionLine:
        """Gold is judged per document or per passage, not both."""
        if self.gold_documents and (self.gold_passages or self.gold_snippets):
            raise PydanticCustomError(
                "gold_levels", "give gold at one level: documents, or passages/snippets, not both"
            )
        return self


_FIELDS = list(QuestionLine.model_fields)


def _explain(exc: ValidationError) -> str:
    """The message for the first problem of a question line, in the order fields are checked."""
    errors = exc.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return f"unknown field {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})"
    first = min(errors, key=lambda e: _FIELDS.index(str(e["loc"][0])) if e["loc"] else -1)
    return _message(first)


def _message(error: ErrorDetails) -> str:
    """One validation error in the file format's own words."""
    loc = error["loc"]
    if not loc:
        return "each line must be a JSON object" if error["type"] == "model_type" else error["msg"]
    name = str(loc[0])
    if name == "question":
        return '"question" is missing or empty'
    if name == "history":
        if len(loc) == 1:
            return '"history" must be a list of {"role", "content"} turns, oldest first'
        return '"history" turns must be {"role": "user"|"assistant", "content": "..."}'
    if name in ("gold_documents", "gold_passages"):
        if len(loc) == 1:
            return f'"{name}" must be a list of ids or an object {{id: grade}}'
        if loc[-1] != "[key]":
            return f'"{name}": grade of {loc[1]!r} must be an integer'
        if name == "gold_passages":
            return f'"{name}": passage id {loc[1]!r} is not an integer'
        return f'"{name}": document id {loc[1]!r} must be a string'
    if name in ("gold_snippets", "answer"):
        return f'"{name}" must be a list of non-empty strings'
    return f'"{name}" must be a string or a number'


@dataclass
class Question:
    """One evaluation question and its gold."""

    id: str
    text: str
    history: list[HistoryTurn] = field(default_factory=list)
    gold_documents: dict[str, int] = field(default_factory=dict)  # document id -> grade
    gold_passages: dict[int, int] = field(default_factory=dict)  # passage id -> grade
    gold_snippets: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)  # any of these in the answer sentence
    group: str | None = None
    line: int | None = None

    @property
    def unit(self) -> Literal["passage", "document"]:
        """What the gold judges: ``"passage"`` or ``"document"``."""
        return "passage" if self.gold_passages or self.gold_snippets else "document"

    @property
    def answerable(self) -> bool:
        """Whether the question has gold (without, the documents should not answer it)."""
        return bool(self.gold_documents or self.gold_passages or self.gold_snippets)

    @property
    def followup(self) -> bool:
        """Whether the question continues a conversation."""
        return bool(self.history)


@dataclass
class Dataset:
    """Questions with gold, and where their documents come from."""

    name: str
    path: Path
    format: Literal["beir", "jsonl"]
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
        dataset = _question_file(path, corpus, collection, default_corpus)
    if limit is not None:
        dataset.questions = dataset.questions[:limit]
    if not dataset.questions:
        raise DatasetError(path, "no questions to evaluate")
    return dataset


def _question_file(
    path: Path,
    corpus: Sequence[Path] | None,
    collection: str | None,
    default_corpus: Path | None,
) -> Dataset:
    """A question JSONL with the documents it is asked of (``--corpus``, or the collection)."""
    if path.suffix.lower() != ".jsonl":
        raise DatasetError(path, "not a BEIR folder or a .jsonl question file")
    questions = load_questions(path)
    if corpus:
        paths = [Path(p) for p in corpus]
    else:
        paths = [] if collection or default_corpus is None else [default_corpus]
    if not paths and not collection:
        raise DatasetError(path, "question files need --corpus PATH or --collection NAME")
    for item in paths:
        if not item.exists():
            raise DatasetError(item, "no such file or folder (given as the corpus)")
    return Dataset(path.stem, path, "jsonl", None, questions, paths, collection)


def read_json_lines(path: Path) -> Iterator[tuple[int, object]]:
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
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(path, "not valid UTF-8") from None
    except OSError as exc:
        raise DatasetError(path, f"unreadable ({exc.strerror or exc})") from None
    qrels: dict[str, dict[str, int]] = {}
    header_allowed = True
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in (line.split("\t") if "\t" in line else line.split())]
        if len(parts) not in (3, 4):
            raise DatasetError(
                path,
                "expected 3 tab-separated columns (query-id, corpus-id, score), "
                f"found {len(parts)}",
                number,
            )
        query_id, doc_id, grade = parts[0], parts[-2], parts[-1]  # TREC has "Q0" second
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
                f"not a BEIR folder: {needed.name} is missing "
                "(expected corpus.jsonl, queries.jsonl, qrels/<split>.tsv)",
            )
    if not qrels_file.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise DatasetError(
            qrels_file, f"no such split {split!r}; available: {', '.join(splits) or 'none'}"
        )
    qrels = read_qrels(qrels_file)
    texts: dict[str, str] = {}
    for number, record in read_json_lines(queries_file):
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
    for number, record in read_json_lines(path):
        if not isinstance(record, dict) or "_id" not in record:
            raise DatasetError(
                path, 'not a BEIR document (needs "_id", "title" and "text")', number
            )
        count += 1
    if not count:
        raise DatasetError(path, "no documents")
    return count


def load_questions(path: Path) -> list[Question]:
    """A question JSONL (see the module docstring)."""
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for number, record in read_json_lines(path):
        try:
            line = QuestionLine.model_validate(record)
        except ValidationError as exc:
            raise DatasetError(path, _explain(exc), number) from None
        qid = line.id if line.id is not None else f"line{number}"
        if qid in seen:
            raise DatasetError(path, f"duplicate id {qid!r} (first on line {seen[qid]})", number)
        seen[qid] = number
        questions.append(
            Question(
                id=qid,
                text=line.question,
                history=line.history or [],
                gold_documents=line.gold_documents or {},
                gold_passages=line.gold_passages or {},
                gold_snippets=line.gold_snippets or [],
                answer=line.answer or [],
                group=line.group,
                line=number,
            )
        )
    if not questions:
        raise DatasetError(path, "no questions in this file")
    return questions


_QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)


def normalise(text: str) -> str:
    """Case-, whitespace- and quote-style-insensitive form used for snippet matching."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold().split())


def contains(text: str, snippet: str) -> bool:
    """Whether ``snippet`` occurs in ``text``, compared in :func:`normalise` form."""
    return normalise(snippet) in normalise(text)
