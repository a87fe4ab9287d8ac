"""The ``avfuse`` entry point: single-clip commands from ``pipeline`` plus batch jobs."""

from __future__ import annotations

import sys

import typer

from pipeline.cli import register
from pipeline.errors import AvfuseError

app = typer.Typer(
    name="avfuse",
    help="Audio-visual event detection for video: which events happen, when, and whether sound or sight drove them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register(app)


def main() -> None:
    """Run the CLI; user errors print one line and exit 1, without a traceback."""
    try:
        app()  # standalone mode: usage errors print click's message and exit 2
    except AvfuseError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
