"""Rules over a whole corpus (copies, shared title suffixes, repeated furniture) and the
passage rules they feed (labels as context, short fragments joined)."""

from __future__ import annotations

from qa.ingest import Document
from qa.ingest.corpus import drop_duplicates, strip_shared_title_suffix
from qa.ingest.layout import is_label, repeated_paragraphs
from qa.ingest.passages import split_document

PAGE = (
    "functools\n\nThe functools module is for higher-order functions: functions that act on "
    "or return other functions. In general, any callable object can be treated as a function "
    "for the purposes of this module. The lru_cache decorator wraps a function with a "
    "memoizing callable that saves up to the maxsize most recent calls."
)
SOURCE = (
    "functools\n\n:mod:`functools` --- Higher-order functions\n\nThe :mod:`functools` module is "
    "for higher-order functions: functions that act on or return other functions. In general, "
    "any callable object can be treated as a function for the purposes of this module. The "
    ":func:`lru_cache` decorator wraps a function with a memoizing callable that saves up to "
    "the *maxsize* most recent calls."
)


def _doc(doc_id: str, text: str, fmt: str = "text", title: str = "") -> Document:
    title = title or text.split("\n", 1)[0]
    return Document(doc_id, title, doc_id, text, fmt, body_start=len(text.split("\n", 1)[0]))


def test_a_page_and_its_markup_source_are_indexed_once() -> None:
    page = _doc("library/functools.html", PAGE, "html")
    source = _doc("_sources/library/functools.rst.txt", SOURCE, "text")
    kept, skips = drop_duplicates([source, page])
    assert [d.id for d in kept] == ["library/functools.html"]  # the page a reader wants
    assert len(skips) == 1 and skips[0].reason.startswith("duplicate of library/functools.html")


def test_template_pages_with_different_facts_are_all_kept() -> None:
    rivers = ["Danube", "Rhine", "Volga", "Loire", "Tagus", "Elbe"]
    docs = [
        _doc(
            f"{name}.txt",
            f"The {name}\n\nThe river {name} floods its valley after heavy spring rain. Barges "
            f"carry grain and timber along the river {name} to the sea. Anglers catch pike and "
            f"carp where the river {name} slows down near the old stone bridge in town.",
        )
        for name in rivers
    ]
    kept, skips = drop_duplicates(docs)
    assert len(kept) == len(rivers) and skips == []


def test_an_exact_copy_in_the_same_format_is_dropped() -> None:
    kept, skips = drop_duplicates([_doc("a.txt", PAGE), _doc("copy/a.txt", PAGE)])
    assert [d.id for d in kept] == ["a.txt"] and len(skips) == 1


def test_a_title_suffix_most_documents_share_is_removed() -> None:
    docs = [
        _doc(f"p{i}.html", f"x\n\ntext {i}", "html", f"Page {i} \u2014 Python 3.11.2 documentation")
        for i in range(6)
    ]
    docs.append(_doc("other.html", "x\n\ntext", "html", "Other page"))
    assert strip_shared_title_suffix(docs) == " \u2014 Python 3.11.2 documentation"
    assert [d.title for d in docs[:2]] == ["Page 0", "Page 1"]
    assert docs[-1].title == "Other page"


def test_paragraphs_repeated_across_many_documents_are_left_out() -> None:
    footer = "The Python Software Foundation is a non-profit corporation. Please donate."
    docs = [
        _doc(
            f"d{i}.txt",
            f"Topic {i}\n\nThe body of page {i} explains topic number {i} in full sentences "
            f"that a reader came for.\n\n{footer}\n",
        )
        for i in range(8)
    ]
    repeated = repeated_paragraphs(docs)
    passages = [p for d in docs for p in split_document(d, repeated=repeated)]
    assert passages and not any("non-profit" in p.text for p in passages)
    assert all("explains topic" in p.text for p in passages)
    alone = split_document(docs[0])  # without the collection's view the footer stays
    assert any("non-profit" in p.text for p in alone)


def test_short_fragments_join_neighbours_and_labels_become_context() -> None:
    text = (
        "Guide\n\nInstalling\n\n"
        "Run the installer and follow the prompts on the screen until it reports success.\n\n"
        "New in version 3.9.\n\n"
        "Configuring\n\n"
        "Edit the settings file in your home folder and restart the service to apply it.\n"
    )
    doc = Document("g", "Guide", "mem", text, "text", body_start=5)
    passages = split_document(doc)
    for passage in passages:  # citations keep exact offsets
        assert text[passage.char_start : passage.char_end] == passage.text
    assert not any(len(p.text) < 40 for p in passages)
    first = next(p for p in passages if "installer" in p.text)
    assert first.text.endswith("New in version 3.9.")  # a closing note joins backwards
    second = next(p for p in passages if "settings file" in p.text)
    assert second.text.startswith("Configuring")  # a heading joins forwards


def test_headings_and_faq_questions_join_the_answer_after_them() -> None:
    question = "How do I convert a string to a number?"  # shorter than min_chars
    long_heading = "What is the most efficient way to concatenate many strings together in Python"
    text = (
        "Programming FAQ\n\n"
        "The solution is to separate the literal from the period with a space or parentheses.\n\n"
        f"{question}\n\n"
        "For integers, use the built-in int() type constructor, e.g. int('144') == 144.\n\n"
        f"{long_heading}\n\n"
        "Accumulate the parts in a list and call str.join() once at the end of the loop.\n"
    )
    doc = Document("faq", "Programming FAQ", "mem", text, "text", body_start=16)
    passages = split_document(doc)
    answer = next(p for p in passages if "int()" in p.text)
    assert answer.text.startswith(question)  # not glued to the end of the paragraph before
    joined = next(p for p in passages if "str.join()" in p.text)
    assert joined.text.startswith(long_heading)  # a heading longer than min_chars joins too
    assert not any(p.text in (question, long_heading) for p in passages)


def test_a_line_with_a_sentence_inside_is_prose_not_a_label() -> None:
    assert is_label("What is the most efficient way to concatenate many strings together")
    assert is_label("3.1. Installation") and is_label("How do I convert a string to a number?")
    assert not is_label("The keeper feeds seventeen cats every morning at dawn. <img src=x>")
