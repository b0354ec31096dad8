"""``atm-lock``: command-line entry point."""

from __future__ import annotations

import typer

from lockctl import __version__

app = typer.Typer(
    help=(
        "Safe-lock control: one-time codes, close seals, the key vault, and offline "
        "verification of lock-access log exports."
    ),
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Commands of this tool; --help on each says more."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"atm-lock {__version__}")


def main() -> None:
    app()
