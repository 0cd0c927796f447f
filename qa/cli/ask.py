"""``qa ask``: the best passages for a question, with citations and the answering sentence."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Annotated

import typer

from qa.cli.common import CollectionOption, ModelOption, make_settings, open_service
from qa.errors import InvalidInput
from qa.search.scope import Filters, Scope, parse_filters

if TYPE_CHECKING:
    from qa.search import Reply


def ask(
    question: Annotated[str, typer.Argument(help="the question, in quotes")],
    collection: CollectionOption = None,
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", min=1, max=50, help="passages to return")
    ] = 5,
    retriever: Annotated[
        str | None, typer.Option("--retriever", help="hybrid (default), dense or bm25")
    ] = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the reply as JSON")] = False,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="field=value (repeat; a field given twice matches either value): document_id, "
            "source_prefix, format, title_contains, tags, page=FROM..TO, date=FROM..TO",
        ),
    ] = None,
) -> None:
    """Ask a question: the best passages with their citations and the answering sentence."""
    if not question.strip():
        raise InvalidInput("the question is empty")
    scope = Scope(filters=_filters(filters or []))  # a bad filter fails before the model loads
    settings = make_settings(collection=collection, model=model, retriever=retriever)
    service = open_service(settings)
    if settings.collection == "default":
        service.ensure_default(progress=True)
    reply = service.ask(question, top_k=top_k, scope=scope)
    if as_json:
        typer.echo(json.dumps(reply.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(format_reply(reply))


def _filters(given: list[str]) -> Filters:
    """``--filter field=value`` flags as filters (values of one field are alternatives)."""
    raw: dict[str, object] = {}
    for item in given:
        field, sep, value = item.partition("=")
        if not sep or not field.strip():
            raise InvalidInput(f"--filter {item!r}: give it as field=value")
        field = field.strip()
        if field in {"page", "date"}:
            raw[field] = value.strip()
        else:
            raw.setdefault(field, []).append(value.strip())  # type: ignore[union-attr]
    return parse_filters(raw)


def format_reply(reply: Reply) -> str:
    """The reply for a terminal: the answer, then each passage with its citation."""
    lines = [f"Question: {reply.query}"]
    if reply.answer:
        ranks = (p.rank for p in reply.passages if p.passage_id == reply.answer.passage_id)
        lines.append(f"Answer:   {reply.answer.text} [{next(ranks, 1)}]")
    elif reply.passages:
        why = reply.notice or "The documents don't answer this. The nearest passages are below."
        lines.append(f"Answer:   {why}")
    else:
        lines.append(f"Answer:   {reply.notice or 'nothing in the collection matches.'}")
    for passage in reply.passages:
        c = passage.citation
        page = f", page {c.page}" if c.page else ""
        lines += [
            "",
            f"[{passage.rank}] score {passage.score:.3f}  {c.title} (paragraph {c.paragraph}{page})",
            f"    {c.source}  chars {c.char_start}-{c.char_end}",
            textwrap.fill(passage.text, width=100, initial_indent="    ", subsequent_indent="    "),
        ]
    return "\n".join(lines)
