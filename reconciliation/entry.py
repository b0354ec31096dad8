"""The ``atm-recon`` command's entry point, light to import.

A run with worker processes starts them with multiprocessing's ``spawn``, which
runs the parent's main script (this command) again in each of them before their
first batch: it imports this module, so a worker does not import the command
line's own libraries (Typer, Rich) to do its work.
"""

from __future__ import annotations


def main() -> None:
    from reconciliation.cli import main as command

    command()
