"""``atm-agent``: command-line entry point."""

from __future__ import annotations

import typer

from device_agent import __version__

app = typer.Typer(
    help=(
        "Agent that runs on an ATM: reads the electronic journal, cash-unit counters and "
        "device status over the serial link, spools them durably and uploads them to the "
        "central service."
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
    typer.echo(f"atm-agent {__version__}")


def main() -> None:
    app()
