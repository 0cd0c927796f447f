"""``qa tune``: fit a collection's search settings on its own labelled questions, print the
before/after table, and store the values with the collection (``tuning.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qa.cli.common import CollectionOption, Interrupted, make_settings, open_service

if TYPE_CHECKING:
    from qa.store.tuning import Tuning

MaxFalseAbstain = Annotated[
    float,
    typer.Option(
        "--max-false-abstain",
        min=0.0,
        max=0.5,
        help="share of answerable questions the abstention threshold may refuse",
    ),
]


def tune(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="labelled questions (.jsonl, as `qa eval` and `qa feedback export`) or a "
            "BEIR folder",
            show_default=False,
        ),
    ],
    collection: CollectionOption = None,
    split: Annotated[str, typer.Option("--split", help="qrels split of a BEIR folder")] = "test",
    folds: Annotated[
        int, typer.Option("--folds", min=2, max=20, help="cross-validation folds")
    ] = 5,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="use only the first N questions")
    ] = None,
    max_false_abstain: MaxFalseAbstain = 0.05,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the table and the decision, store nothing")
    ] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="forget the collection's tuning and exit")
    ] = False,
) -> None:
    """Fit the fusion weight, sentence weight and abstention threshold of a collection with
    cross-validation; the defaults stay unless the gain beats the noise between folds. The
    threshold is the highest that refuses at most --max-false-abstain of the answerable
    questions (it needs questions the documents don't answer too)."""
    from qa.evaluation import load_dataset
    from qa.evaluation.tune import tune as fit
    from qa.store.tuning import remove_tuning, write_tuning

    settings = make_settings(collection=collection)
    name = settings.collection
    if reset:
        gone = remove_tuning(settings.collection_dir(name))
        typer.echo(f"collection {name!r}: " + ("tuning removed" if gone else "had no tuning"))
        return
    service = open_service(settings)
    loaded = service.collection(name)
    data = load_dataset(dataset, split, collection=name, limit=limit)
    say = lambda line: typer.echo(line, err=True)  # progress goes to stderr
    try:
        result = fit(
            service, loaded, data, folds, progress=say, max_false_abstain=max_false_abstain
        )
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; collection {name!r} keeps its settings") from None
    for line in table(result):
        typer.echo(line)
    if dry_run:
        typer.echo("dry run: nothing stored")
        return
    path = write_tuning(settings.collection_dir(name), result)
    typer.echo(f"stored in {path} (used by qa ask, qa serve and qa eval on {name!r})")


def table(result: Tuning) -> list[str]:
    """The before/after table, the values and the decision."""
    chosen = {**result.defaults, **result.values.given()}
    lines = [
        f"{result.questions} questions, {result.folds} folds",
        "",
        f"| {'setting':<22} | {'before':>8} | {'after':>8} |",
        f"|{'-' * 24}|{'-' * 10}|{'-' * 10}|",
    ]
    for key, before in result.defaults.items():
        lines.append(f"| {key:<22} | {before:>8.2f} | {chosen[key]:>8.2f} |")
    for key, before in result.before.items():
        after = result.after.get(key)
        lines.append(f"| {key:<22} | {_num(before):>8} | {_num(after):>8} |")
    lines += ["", f"decision: {result.decision}"]
    return lines


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
