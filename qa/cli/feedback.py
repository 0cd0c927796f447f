"""``qa report`` (what went wrong, grouped) and ``qa feedback export`` (readers' verdicts as
labelled questions for ``qa eval``, ``qa tune`` and ``qa index --gate``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qa.cli.common import CollectionOption, make_settings, open_service
from qa.errors import InvalidInput

if TYPE_CHECKING:
    from qa.feedback.grouping import Group, Report

SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="only records of the last 30m, 12h, 7d, 2w, or since a date"),
]
feedback_app = typer.Typer(
    help="Readers' feedback: export it as labelled questions.", no_args_is_help=True
)


def report(
    collection: CollectionOption = None,
    since: SinceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Unanswered questions and not-helpful answers, grouped by similar questions, largest
    groups first."""
    settings = make_settings(collection=collection)
    result = open_service(settings).feedback.report(settings.collection, since)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    for line in report_lines(result):
        typer.echo(line)


def report_lines(result: Report) -> list[str]:
    """The report as text for a terminal."""
    period = f" since {result.since}" if result.since else ""
    head = f"collection {result.collection!r}{period}: {result.records} records, "
    lines = [head + f"{result.helpful} helpful, {result.not_helpful} not helpful"]
    for title, groups in (
        ("Unanswered (the service abstained)", result.unanswered),
        ("Not helpful", result.not_helpful_answers),
    ):
        total = sum(g.count for g in groups)
        lines += ["", f"{title}: {total} in {len(groups)} groups"]
        lines += [line for group in groups for line in _group_lines(group)]
    return lines


def _group_lines(group: Group) -> list[str]:
    """One group: count and example, then reasons, other wordings and comments."""
    lines = [f"  {group.count:>4} x  {group.example}"]
    if group.reasons:
        reasons = ", ".join(f"{name} {n}" for name, n in group.reasons.items())
        lines.append(f"          reasons: {reasons}")
    lines += [f"          also: {q}" for q in group.questions]
    lines += [f"          comment: {c}" for c in group.comments]
    return lines


@feedback_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="labelled questions (JSONL)")],
    collection: CollectionOption = None,
    since: SinceOption = None,
    to_label: Annotated[
        Path | None,
        typer.Option(
            "--to-label", help="questions left for a person (default: OUT with .to-label.jsonl)"
        ),
    ] = None,
) -> None:
    """Write the feedback that can be labelled as questions `qa eval` reads: helpful answers
    give a relevant passage, "wrong passage" a non-relevant one; the rest (it should have
    answered, incomplete, unanswered) goes to a second file for a person to label."""
    settings = make_settings(collection=collection)
    result = open_service(settings).feedback.export(settings.collection, since)
    rest = to_label or out.with_name(out.name.removesuffix(".jsonl") + ".to-label.jsonl")
    if rest.resolve() == out.resolve():
        raise InvalidInput("--to-label must be another file than --out")
    _write_lines(out, result.labelled)
    _write_lines(rest, result.to_label)
    typer.echo(
        f"{len(result.labelled)} labelled questions -> {out}; {len(result.to_label)} to label "
        f"-> {rest}; {result.repeats} repeated verdicts left out (the latest kept)"
    )


def _write_lines(path: Path, lines: list[dict[str, object]]) -> None:
    """One JSON object per line (a usage error naming the path when it can't be written)."""
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"could not write {path}: {exc.strerror or exc}") from None
