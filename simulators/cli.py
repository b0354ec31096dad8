"""``atm-sim``: command-line entry point."""

from __future__ import annotations

import typer

from simulators import __version__

app = typer.Typer(
    help=(
        "Simulated ATMs, host/switch and safe locks for development, demos, load and "
        "fault tests without hardware."
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
    typer.echo(f"atm-sim {__version__}")


def main() -> None:
    app()
