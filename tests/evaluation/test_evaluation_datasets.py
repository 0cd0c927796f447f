"""Evaluation datasets: the question JSONL format, BEIR folders, and passage-level gold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qa.evaluation import Dataset, DatasetError, load_dataset
from qa.evaluation.datasets import (
    HistoryTurn,
    load_questions,
    read_qrels,
    validate_corpus_jsonl,
)
from qa.evaluation.prepare import snippet_qrels
from tests.evaluation.test_evaluation import QUESTIONS, FakeCollection, write_lines
from tests.helpers import SCIFACT

# the question format


def test_snippet_gold_format(tmp_path: Path) -> None:
    questions = load_questions(write_lines(tmp_path / "q.jsonl", QUESTIONS))
    a, b, c, d, e, f = questions
    assert (a.unit, a.answerable, a.answer, a.line) == ("passage", True, ["river"], 1)
    assert b.followup and b.history[1] == HistoryTurn(role="assistant", content="By the river.")
    assert (b.group, c.group, c.followup) == ("g", "g", False)
    assert not d.answerable
    assert e.unit == "passage" and e.gold_passages == {7: 1}
    assert f.unit == "document" and f.gold_documents == {"doc-2": 2}

    collection = FakeCollection(
        {
            3: "Down by the river the old Mill stands quietly.",
            4: "It is FORTY\n metres tall.",
            5: "Everyone knows the old   mill stands there; it is forty metres high.",
            7: "Unrelated.",
        }
    )
    dataset = Dataset("q", tmp_path / "q.jsonl", "jsonl", None, questions)
    gold = snippet_qrels(dataset, collection)  # type: ignore[arg-type]
    # case-, whitespace- and line-break-insensitive; every passage holding a snippet is relevant
    assert gold == {"a": {3: 1, 5: 1}, "b": {4: 1, 5: 1}, "c": {4: 1, 5: 1}, "e": {7: 1}}


def test_accepted_spellings_of_a_question_line(tmp_path: Path) -> None:
    rows = [
        {"id": 5, "question": "x?", "gold_passages": {"7": 2, " 8": 1}, "group": 3, "note": {}},
        {"question": "y?", "gold_documents": ["d", 12], "answer": ["a", "b"]},
        {"question": "z?", "history": [{"role": "user", "content": "hi", "at": 1}]},
    ]
    first, second, third = load_questions(write_lines(tmp_path / "q.jsonl", rows))
    assert (first.id, first.gold_passages, first.group) == ("5", {7: 2, 8: 1}, "3")
    assert (second.id, second.gold_documents, second.answer) == (
        "line2",
        {"d": 1, "12": 1},
        ["a", "b"],
    )
    assert third.history == [HistoryTurn(role="user", content="hi")]


def test_a_snippet_found_nowhere_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "q.jsonl", [QUESTIONS[0], {"question": "x?", "gold_snippets": ["no such words"]}]
    )
    dataset = Dataset("q", path, "jsonl", None, load_questions(path))
    with pytest.raises(
        DatasetError, match=r"q\.jsonl:2: gold snippet 'no such words' is not in any passage"
    ):
        snippet_qrels(dataset, FakeCollection({1: "the old mill stands"}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "ok?", "gold_snippets": ["x"]', "malformed JSON"),
        ('["not", "an", "object"]', "must be a JSON object"),
        ('{"gold_snippets": ["x"]}', '"question" is missing'),
        ('{"question": "  "}', '"question" is missing or empty'),
        ('{"question": "x?", "gold_snipets": ["x"]}', "unknown field 'gold_snipets'"),
        (
            '{"question": "x?", "zz": 1, "gold_snipets": ["x"]}',
            (
                r"unknown field 'gold_snipets' \(known: answer, gold_documents, gold_passages, "
                r"gold_snippets, group, history, id, note, question\)"
            ),
        ),
        (
            '{"question": "x?", "history": [{"role": "bot", "content": "hi"}]}',
            '"history" turns must be',
        ),
        ('{"question": "x?", "history": "earlier"}', '"history" must be a list'),
        (
            '{"question": "x?", "gold_snippets": "", "answer": 3}',
            '"gold_snippets" must be a list of non-empty strings',
        ),
        ('{"question": "x?", "answer": ["ok", 3]}', '"answer" must be a list of non-empty'),
        ('{"question": "x?", "gold_passages": ["seven"]}', "passage id 'seven' is not an integer"),
        ('{"question": "x?", "gold_documents": {"d": true}}', "grade of 'd' must be an integer"),
        ('{"question": "x?", "gold_documents": [""]}', "document id '' must be a string"),
        ('{"question": "x?", "gold_documents": 5}', "must be a list of ids or an object"),
        ('{"question": "x?", "id": ["q"]}', '"id" must be a string or a number'),
        (
            '{"question": "x?", "gold_documents": ["d"], "gold_snippets": ["s"]}',
            "give gold at one level",
        ),
        ('{"id": "q1", "question": "again?"}', "duplicate id 'q1' \\(first on line 1\\)"),
    ],
)
def test_malformed_question_lines_name_the_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write_lines(tmp_path / "bad.jsonl", ['{"id": "q1", "question": "fine?"}', "", line])
    with pytest.raises(DatasetError, match=rf"bad\.jsonl:3: .*{message}"):
        load_questions(path)


def test_a_dataset_error_is_a_usage_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", ['{"question": 1}'])
    with pytest.raises(DatasetError) as caught:
        load_questions(path)
    assert (caught.value.path, caught.value.line, caught.value.exit_code) == (str(path), 1, 2)
    assert caught.value.message == f'{path}:1: "question" is missing or empty'


# BEIR folders


def _beir(folder: Path, corpus: list[dict[str, str]], queries: list[Any], qrels: str) -> Path:
    (folder / "qrels").mkdir(parents=True)
    write_lines(folder / "corpus.jsonl", corpus)
    write_lines(folder / "queries.jsonl", queries)
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


TINY_CORPUS = [
    {
        "_id": "photo",
        "title": "Photosynthesis",
        "text": "Green plants turn sunlight, water and carbon dioxide into sugar and oxygen in their leaves.",
    },
    {
        "_id": "volc",
        "title": "Stromboli",
        "text": "The volcano Stromboli off Sicily has been erupting almost continuously for two thousand years.",
    },
    {
        "_id": "jazz",
        "title": "Bebop",
        "text": "Bebop is a fast jazz style with complex harmonies that grew up in New York in the 1940s.",
    },
    {
        "_id": "tide",
        "title": "Tides",
        "text": "Ocean tides rise and fall twice a day, pulled by the gravity of the moon and the sun.",
    },
]
TINY_QUERIES = [
    {"_id": "1", "text": "How do plants make sugar from light?"},
    {"_id": "2", "text": "Which Italian volcano keeps erupting?"},
    {"_id": "3", "text": "What causes the tides of the sea?"},
    {"_id": "9", "text": "A query without judgements in this split."},
]
TINY_QRELS = "query-id\tcorpus-id\tscore\n1\tphoto\t1\n2\tvolc\t1\n3\ttide\t1\n"


def tiny_beir(folder: Path) -> Path:
    """A four-document BEIR folder with three easy judged queries."""
    return _beir(folder, TINY_CORPUS, TINY_QUERIES, TINY_QRELS)


def test_beir_folder_is_read_with_its_header_and_only_judged_queries(tmp_path: Path) -> None:
    folder = tiny_beir(tmp_path / "tiny")
    dataset = load_dataset(folder)
    assert (dataset.name, dataset.format, dataset.split) == ("tiny", "beir", "test")
    assert [q.id for q in dataset.questions] == ["1", "2", "3"]
    assert dataset.questions[1].gold_documents == {"volc": 1}
    assert dataset.corpus_paths == [folder / "corpus.jsonl"]
    assert load_dataset(folder, limit=2).questions[-1].id == "2"


def test_qrels_in_trec_format_and_graded(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("1 Q0 a 2\n1 Q0 b 0\n2 Q0 c 1\n", encoding="utf-8")
    assert read_qrels(path) == {"1": {"a": 2, "b": 0}, "2": {"c": 1}}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing", r"missing: no such file or folder"),
        (
            lambda d: (d / "empty").mkdir() or d / "empty",
            r"empty: not a BEIR folder: corpus\.jsonl is missing",
        ),
        (
            lambda d: _beir(d / "b", TINY_CORPUS, TINY_QUERIES, TINY_QRELS + "4\tphoto\n"),
            r"test\.tsv:5: expected 3 tab-separated columns",
        ),
        (
            lambda d: _beir(d / "b", TINY_CORPUS, TINY_QUERIES, TINY_QRELS + "4\tphoto\thigh\n"),
            r"test\.tsv:5: relevance score 'high' is not a number",
        ),
        (
            lambda d: _beir(
                d / "b", TINY_CORPUS, [*TINY_QUERIES[:2], "{oops", TINY_QUERIES[2]], TINY_QRELS
            ),
            r"queries\.jsonl:3: malformed JSON",
        ),
        (
            lambda d: _beir(d / "b", TINY_CORPUS, [{"_id": "1"}], TINY_QRELS),
            r"queries\.jsonl:1: not a BEIR query",
        ),
        (
            lambda d: _beir(d / "b", TINY_CORPUS, TINY_QUERIES[:1], TINY_QRELS),
            r"test\.tsv: 2 judged queries are not in queries\.jsonl",
        ),
        (lambda d: d / "notes.txt", r"notes\.txt: no such file"),
    ],
)
def test_bad_beir_folders_give_clear_errors(tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        load_dataset(make(tmp_path))


def test_a_missing_split_lists_the_available_ones(tmp_path: Path) -> None:
    folder = tiny_beir(tmp_path / "b")
    with pytest.raises(DatasetError, match=r"dev\.tsv: no such split 'dev'; available: test"):
        load_dataset(folder, split="dev")


def test_a_malformed_corpus_line_is_named_before_indexing(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "corpus.jsonl", [TINY_CORPUS[0], '{"_id": "x", "text": "cut off', TINY_CORPUS[1]]
    )
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:2: malformed JSON"):
        validate_corpus_jsonl(path)


@pytest.mark.skipif(
    not (SCIFACT / "corpus.jsonl").exists(), reason="SciFact is not in ../shared/datasets"
)
def test_scifact_test_split_is_read_as_published() -> None:
    dataset = load_dataset(SCIFACT, "test")
    assert len(dataset.questions) == 300
    assert sum(len(q.gold_documents) for q in dataset.questions) == 339
    assert len(load_dataset(SCIFACT, "train").questions) == 809
    assert validate_corpus_jsonl(SCIFACT / "corpus.jsonl") == 5183
