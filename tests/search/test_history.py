"""Release-notes pages rank below reference pages, unless the question asks about history."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

from qa.config import Settings
from qa.encoding import Embedder
from qa.search import build_query
from qa.search.history import asks_about_history
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import assert_linear


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("Are Python strings mutable?", False),
        ("does os.walk follow symlinks to directories?", False),
        ("what's the default recursion limit?", False),
        ("What's new in Python 3.11?", True),
        ("What\u2019s new in asyncio?", True),
        ("which version added pickle protocol 5?", True),
        ("When was Python 2.3 released?", True),
        ("who added the breakpoint() builtin?", True),
        ("is distutils deprecated?", True),
        ("how does 3.12 handle f-strings?", True),
    ],
)
def test_which_questions_ask_about_history(question: str, asks: bool) -> None:
    assert asks_about_history(question) is asks


def test_asking_is_linear_in_the_question() -> None:
    assert_linear(lambda repeat: asks_about_history("is it new " * repeat + "1." * repeat))


def test_a_release_note_ranks_below_the_reference_page_unless_asked_about_history(
    tmp_path: Path, embedder: Embedder
) -> None:
    service = QAService(make_settings(tmp_path / "index"), embedder)
    note = "The new cache decorator keeps the results of expensive function calls."
    service.add_text("t", "whatsnew/3.9", "What's New In Python 3.9", note, None)
    reference = (
        "Decorator to wrap a function with a memoizing callable that saves the most recent "
        "calls. It can save time when an expensive function is called with the same arguments."
    )
    service.add_text("t", "library/functools", "functools", reference, None)
    service.add_text("t", "changes", "Changelog", "Fixed a crash in the cache decorator.", None)
    collection = service.collection("t")
    base = service.params.of("t").fusion

    def scores(question: str, weight: float) -> dict[str, float]:
        fusion = dataclasses.replace(base, history_weight=weight)
        query = build_query(question, (), embedder)
        hits = service.retriever(collection, "hybrid", fusion).search(query, 5)
        rows = collection.passages(h.passage_id for h in hits)
        return {rows[h.passage_id].document_id: h.score for h in hits}

    how = "How do I cache the results of an expensive function call?"
    without, with_ = scores(how, 0.0), scores(how, 0.2)
    assert with_["whatsnew/3.9"] == pytest.approx(without["whatsnew/3.9"] - 0.2)
    assert with_["changes"] == pytest.approx(without["changes"] - 0.2)  # matched by its title
    assert with_["library/functools"] == pytest.approx(without["library/functools"])
    assert max(without, key=without.__getitem__) == "whatsnew/3.9"
    assert max(with_, key=with_.__getitem__) == "library/functools"

    when = "Which version added the cache decorator?"
    assert scores(when, 0.2) == pytest.approx(scores(when, 0.0))


def test_release_note_pages_are_configurable(tmp_path: Path) -> None:
    assert make_settings(tmp_path, history_pages="").history_pages == ""
    with pytest.raises(ValidationError, match="history_pages"):
        Settings(index_dir=tmp_path, history_pages="what(s new")
