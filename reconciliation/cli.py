"""``atm-recon``: command-line entry point."""

from __future__ import annotations

import typer

from reconciliation import __version__

app = typer.Typer(
    help=(
        "Reconcile ATM electronic journals, paper journals, host (switch) records and "
        "cash-unit counters, and report every discrepancy with its evidence."
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
    typer.echo(f"atm-recon {__version__}")


def main() -> None:
    app()
