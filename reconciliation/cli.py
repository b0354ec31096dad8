"""``atm-recon``: reconcile folders of field files and write the reports.

``atm-recon run --ej DIR --paper DIR --host DIR --counters DIR --out DIR``
shows a progress bar, writes ``discrepancies.jsonl``, ``summary.json``, CSV,
XLSX and HTML reports into ``--out`` and prints a short summary. The exit
status is 0 whenever the input could be used, discrepancies or skipped lines
notwithstanding; 2 with a message when it could not.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from reconciliation import __version__
from reconciliation.engine import reconcile
from reconciliation.errors import ReconciliationError
from reconciliation.options import Options
from reconciliation.options import Progress as RunProgress
from reconciliation.reports import money, write_reports
from reconciliation.sources import Sources

app = typer.Typer(
    help=(
        "Reconcile ATM electronic journals, paper journals, host (switch) records and "
        "cash-unit counters, and report every discrepancy with its evidence."
    ),
    no_args_is_help=True,
    add_completion=False,
)

Folder = Annotated[Path | None, typer.Option(file_okay=False, resolve_path=False)]

_PHASES = {
    "host": "Reading host files",
    "terminals": "Reconciling terminals",
}


@app.callback()
def _group() -> None:
    """Commands of this tool; --help on each says more."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"atm-recon {__version__}")


@app.command()
def run(
    out: Annotated[Path, typer.Option(help="Folder for the reports (created if needed).")],
    ej: Annotated[
        Path | None, typer.Option(help="Folder of EJ files <TID>_<YYYYMMDD>.txt.")
    ] = None,
    paper: Annotated[
        Path | None, typer.Option(help="Folder of OCR paper journals <TID>_<YYYYMMDD>.txt.")
    ] = None,
    host: Annotated[
        Path | None, typer.Option(help="Folder of host files <YYYYMMDD>.iso / .csv.")
    ] = None,
    counters: Annotated[
        Path | None, typer.Option(help="Folder of counters files <TID>_<YYYYMMDD>.json.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Parser processes (default: up to 2 when large).")
    ] = None,
    window: Annotated[
        int, typer.Option(min=0, help="Seconds a receipt time may differ from DE12.")
    ] = 120,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Reconcile the given folders and write the reports into --out."""
    # A run builds millions of acyclic tuples and dicts: the cyclic garbage
    # collector's passes over them would only cost time. Back on afterwards, for
    # callers that run the command in their own process (tests).
    enabled = gc.isenabled()
    gc.disable()
    try:
        _run(out, ej, paper, host, counters, workers, window, quiet)
    finally:
        if enabled:
            gc.enable()


def _run(
    out: Path,
    ej: Path | None,
    paper: Path | None,
    host: Path | None,
    counters: Path | None,
    workers: int | None,
    window: int,
    quiet: bool,
) -> None:
    console = Console(stderr=True)
    try:
        sources = Sources.from_dirs(ej=ej, paper=paper, host=host, counters=counters)
        options = Options(time_window_seconds=window, workers=workers)
        with Progress(
            TextColumn("{task.description:<26}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
            transient=False,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def report(update: RunProgress) -> None:
                task = tasks.get(update.phase)
                if task is None:
                    task = tasks[update.phase] = bar.add_task(
                        _PHASES.get(update.phase, update.phase), total=max(update.total, 1)
                    )
                bar.update(task, completed=update.done, total=max(update.total, 1))

            result = reconcile(sources, options=options, progress=report)
        paths = write_reports(result, out, fork=True)
    except ReconciliationError as exc:
        typer.echo(f"atm-recon: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:
        typer.echo(f"atm-recon: cannot write the reports in {out}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    owed = result.owed_totals()
    typer.echo(
        f"{result.terminal_days} terminal-days, {result.transactions} EJ transactions, "
        f"{result.host_messages} host messages, {len(result.discrepancies)} discrepancies"
    )
    amounts = result.amount_by_kind()
    for kind, count in result.counts_by_kind().items():
        typer.echo(f"  {kind:<30} {count:>6}  {money(amounts[kind])}")
    typer.echo(f"owed to customers {money(owed['customer'])}; bank at risk {money(owed['bank'])}")
    if result.skipped:
        typer.echo(f"{len(result.skipped)} line(s)/record(s) skipped; listed in summary.json")
        for line in result.skipped[:10]:
            typer.echo(f"  {line.source}:{line.line}: {line.reason}")
    for note in result.observations[:10]:
        typer.echo(f"note: {note}")
    for name, why in result.ignored_files[:10]:
        typer.echo(f"ignored {name}: {why}")
    typer.echo("reports: " + ", ".join(path.name for path in paths) + f" in {out}")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
