"""The ``qa`` command: a thin shell over the library, one module per command (index, ask,
serve, collections, eval). Every :class:`~qa.errors.QAError` a command raises ends the same
way: one ``error:`` line and the error's exit status."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from qa.cli.ask import ask
from qa.cli.collections import collections
from qa.cli.eval import eval_command
from qa.cli.feedback import feedback_app, report
from qa.cli.index import index
from qa.cli.keys import keys_app
from qa.cli.optimize import optimize
from qa.cli.serve import serve
from qa.cli.sources import sources
from qa.cli.tune import tune
from qa.cli.watch import watch
from qa.errors import QAError

__all__ = ["app", "main"]


class _Commands(TyperGroup):
    """The command group; the one place a user's error becomes an ``error:`` line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QAError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="qa",
    cls=_Commands,
    help="Question answering over your own documents, with exact citations.\n\n"
    'Index a folder with `qa index PATH`, ask with `qa ask "QUESTION"`, serve the web '
    "chat and HTTP API with `qa serve`, measure with `qa eval DATASET`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command()(index)
app.command()(ask)
app.command()(serve)
app.command()(collections)
app.command("eval")(eval_command)
app.command()(tune)
app.command()(report)
app.add_typer(feedback_app, name="feedback")
app.command()(optimize)
app.command()(sources)
app.command()(watch)
app.add_typer(keys_app, name="keys")


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log each step")] = False,
) -> None:
    """Configure logging for every command."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s" if not verbose else "%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("sentence_transformers", "transformers", "httpx", "faiss", "bm25s", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
