"""Citations as chat clients get them: numbered, with the quoted text and where it is.

``document.text[char_start:char_end] == quote``: the offsets locate the quote itself (the
answering sentence, or the passage when no sentence is singled out) in its document.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from qa.search import RankedPassage, Reply


@dataclass(frozen=True)
class CitedSource:
    """One numbered source of an answer (``[index]`` in its text)."""

    index: int
    passage_id: int
    document_id: str
    title: str
    source: str
    paragraph: int
    char_start: int
    char_end: int
    quote: str
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cite(index: int, passage: RankedPassage, span: tuple[int, int] | None = None) -> CitedSource:
    """Source ``index``: ``passage``, quoting ``span`` of it (all of it when ``None``)."""
    start, end = span if span is not None else (0, len(passage.text))
    where = passage.citation
    return CitedSource(
        index=index,
        passage_id=passage.passage_id,
        document_id=where.document_id,
        title=where.title,
        source=where.source,
        paragraph=where.paragraph,
        char_start=where.char_start + start,
        char_end=where.char_start + end,
        quote=passage.text[start:end],
        page=where.page,
    )


def extractive_sources(reply: Reply) -> list[CitedSource]:
    """The one source of an extractive answer ([1], quoting the answer sentence), or, when
    the documents don't answer, the closest passages ([1]..[n], quoted whole)."""
    answer = reply.answer
    if answer is None:
        return [cite(n, p) for n, p in enumerate(reply.passages, start=1)]
    passage = next(p for p in reply.passages if p.passage_id == answer.passage_id)
    return [cite(1, passage, (answer.start, answer.end))]
