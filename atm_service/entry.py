"""The ``atm-service`` command's entry point, light to import.

A reconciliation run with worker processes starts them with multiprocessing's
``spawn``, which runs the parent's main script again in each of them before
their first batch. For the service that script is the ``atm-service`` command:
it imports this module, so a worker imports nothing of the application (which
took about 3 s, in each worker of each run); the command itself is imported
when it runs.
"""

from __future__ import annotations


def main() -> None:
    from atm_service.cli import main as command

    command()
