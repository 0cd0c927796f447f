"""A question naming an API or option the documents never mention is not answered."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.encoding import Embedder
from qa.search.names import asked_names, unknown_name
from qa.service import QAService
from tests.conftest import make_settings
from tests.helpers import assert_linear

GLOB = (
    "glob.glob(pathname) returns a possibly empty list of path names that match pathname. "
    "The glob module finds all the path names matching a pattern."
)
FORMS = "Use str.join to build a string from many pieces; my_list.sort() sorts in place."


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("What does glob.translate() return?", ["glob.translate"]),
        ("What does the @typing.override decorator check?", ["typing.override"]),
        ("How do I use os.path.splitroot()?", ["os.path.splitroot"]),
        ("What does the --disable-gil configure option do?", ["--disable-gil"]),
        ("I patched mymodule.func with mock.patch", ["mymodule.func", "mock.patch"]),
        ("Why won't settings.yaml load from python.org, e.g. over HTTP?", []),
        ("What changed in 3.11.2 and is -v verbose?", []),
        ("Are Python strings mutable?", []),
    ],
)
def test_asked_names(question: str, names: list[str]) -> None:
    assert list(asked_names(question)) == names


def test_finding_names_is_linear_in_the_question() -> None:
    def run(repeat: int) -> None:
        list(asked_names("a.b" * repeat + " --x" * repeat + "@" * repeat + "--a" + "-" * repeat))
        list(asked_names("a.b-" * repeat + "a." * repeat))

    assert_linear(run)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> QAService:
    index = tmp_path_factory.mktemp("names") / "index"
    service = QAService(make_settings(index), embedder)
    service.add_text(
        "docs", "library/glob", "glob - Unix style pathname pattern expansion", GLOB, None
    )
    service.add_text("docs", "faq/forms", "Programming FAQ", FORMS, None)
    return service


@pytest.mark.parametrize(
    ("question", "unknown"),
    [
        ("What does glob.translate() return?", "glob.translate"),
        ("What does the --disable-gil option do?", "--disable-gil"),
        ("What does glob.glob() return?", None),  # documented
        ("What does GLOB.GLOB() return?", None),  # case ignored
        ("why does my_list = my_list.sort() leave me with None?", None),  # in the passages
        ("why is your_list.sort() None?", None),  # the reader's own name: its qualifier is nowhere
        ("does glob.translate work like str.join?", None),  # a documented name beside it
    ],
)
def test_unknown_name(service: QAService, question: str, unknown: str | None) -> None:
    assert unknown_name(question, service.collection("docs")) == unknown


def test_the_reply_says_the_documents_never_mention_it(service: QAService) -> None:
    reply = service.ask("What does glob.translate() return?", "docs")
    assert reply.answer is None
    assert reply.notice is not None and "never mention glob.translate" in reply.notice
    assert reply.passages[0].citation.document_id == "library/glob"  # the closest, still shown

    answered = service.ask("What does glob.glob() return?", "docs")
    assert answered.answer is not None and answered.notice is None


def test_only_passages_the_reader_may_see_count(service: QAService) -> None:
    collection = service.collection("docs")
    faq = [p.id for p in collection.passages_of(["faq/forms"])]
    question = "what is str.join for, is it like glob.translate?"
    assert unknown_name(question, collection) is None
    # a reader who may not see the FAQ: str.join is mentioned nowhere they may read
    assert unknown_name(question, collection, ~collection.allow(faq)) == "glob.translate"


def test_a_question_of_many_names_looks_up_a_few(service: QAService) -> None:
    question = " ".join(f"glob.name{n}" for n in range(200)) + " glob.glob"
    assert unknown_name(question, service.collection("docs")) == "glob.name0"


def test_it_can_be_turned_off(tmp_path: Path, embedder: Embedder) -> None:
    service = QAService(make_settings(tmp_path / "index", unknown_names=False), embedder)
    service.add_text(
        "docs", "library/glob", "glob - Unix style pathname pattern expansion", GLOB, None
    )
    reply = service.ask("What does glob.translate() return?", "docs")
    assert reply.notice is None
