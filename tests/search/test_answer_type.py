"""The kind of fact a question asks for, whether a sentence holds one, and the ranking bonus
for passages that do."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qa.encoding import Embedder
from qa.search import build_query
from qa.search.answer_type import Kind, expected, holds
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import assert_linear


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many cities does the G60 corridor link together?", Kind.QUANTITY),
        ("how often has the system served companies", Kind.QUANTITY),
        ("And how much time did it save?", Kind.QUANTITY),
        ("What's the maximum recursion depth?", Kind.QUANTITY),
        ("When was the walrus operator added?", Kind.TIME),
        ("In which version did dict keep insertion order?", Kind.TIME),
        ("What year was Python 2.0 released?", Kind.TIME),
        ("Who is the Party secretary of Songjiang?", Kind.PERSON),
        ("so who wrote the logging HOWTO?", Kind.PERSON),
        ("Where does pip put installed packages?", Kind.PLACE),
        ("In which city is the factory?", Kind.PLACE),
        # conditions and relative clauses ask for no typed fact
        ("When should I use a tuple instead of a list?", None),
        ("my key bindings don't fire when I press the key", None),
        ("How do I find the people who own a file?", None),
        ("How do I cache the results of an expensive function call?", None),
    ],
)
def test_expected_kind(question: str, kind: Kind | None) -> None:
    assert expected(question) == kind


@pytest.mark.parametrize(
    ("question", "sentence", "strength"),
    [
        # a count of the very things asked for beats any other number
        (
            "How many cities does the G60 corridor link?",
            "The G60 Corridor connects nine cities.",
            1,
        ),
        ("How many cities does the G60 corridor link?", "It has 1,600 companies.", 0.5),
        ("How many cities does the G60 corridor link?", "The G60 Corridor runs east.", 0),
        ("How often was it used?", "It was used over one million times.", 1),
        ("How often was it used?", "Nearly 90 windows serve the area.", 0.5),
        ("How much time did it save?", "The period was reduced by half a year.", 1),
        ("How much time did it save?", "Its floor area is 120,000 square meters.", 0.5),
        # "by how much" asks for an amount of change: "by" and the amount
        ("By how much was the building period shortened?", "It was cut by half a year.", 1),
        ("By how much was the building period shortened?", "It took 18 months.", 0.5),
        # documentation dates a change by version, a release by date
        ("When was the walrus operator added?", "New in version 3.8.", 1),
        ("When was the walrus operator added?", "It came out in October 2018.", 0.5),
        ("When was it released?", "It came out in October 2000.", 1),
        ("When was it released?", "Changed in version 3.2.", 0.5),
        ("When was it released?", "You may use it anywhere.", 0),  # "may" is not May
        ("Who wrote the HOWTO?", "This HOWTO was written by Vinay Sajip.", 1),
        ("Who wrote the HOWTO?", "Liu Fusheng said so.", 1),
        ("Who wrote the HOWTO?", "It mentions the Python Software Foundation.", 0.5),
        ("Who wrote the HOWTO?", "The HOWTO explains handlers.", 0),
        ("Where is the config file?", "It is read from ~/.config/tool/settings.toml first.", 1),
        ("Where is the factory?", "The factory was built in Songjiang.", 1),
        ("Where is the factory?", "The factory is very large.", 0),
        ("Where is the history saved?", "It supports history save/restore.", 0),
    ],
)
def test_holds(question: str, sentence: str, strength: float) -> None:
    kind = expected(question)
    assert kind is not None
    assert holds(kind, sentence, question) == strength


def test_a_number_the_question_names_is_not_an_answer() -> None:
    question = "How many cities does the G60 corridor link?"
    assert holds(Kind.QUANTITY, "The G60 corridor is long.", question) == 0


def test_time_is_linear_in_the_text() -> None:
    """No pattern backtracks: ten times the text takes about ten times as long."""

    def run(repeat: int) -> None:
        sentence = "9" * repeat + " a." * repeat + "/" * repeat + "Aa " * repeat
        question = "how many " + "x " * repeat
        for kind in Kind:
            holds(kind, sentence, question)
        expected(question + "when " * repeat)

    assert_linear(run)


def test_hybrid_ranking_favours_a_passage_holding_the_fact_asked_for(
    tmp_path: Path, embedder: Embedder
) -> None:
    service = QAService(make_settings(tmp_path / "index"), embedder)
    service.add_text("t", "log", "Log", "The keeper writes down when he feeds the cats.", None)
    service.add_text("t", "notes", "Notes", "The keeper feeds seventeen cats at dawn.", None)
    collection = service.collection("t")
    query = build_query("How many cats does the keeper feed?", (), embedder)
    base = service.params.of("t").fusion

    def scores(weight: float) -> dict[str, float]:
        fusion = dataclasses.replace(base, answer_type_weight=weight)
        hits = service.retriever(collection, "hybrid", fusion).search(query, 5)
        rows = collection.passages(h.passage_id for h in hits)
        return {rows[h.passage_id].document_id: h.score for h in hits}

    without, with_ = scores(0.0), scores(0.2)
    assert with_["notes"] == pytest.approx(without["notes"] + 0.2)
    assert with_["log"] == pytest.approx(without["log"])
