"""``reconcile()``: the run, from sources to findings, in two phases.

1. ``host``: the switch files (large, all terminals) are cut into pieces on
   record or line boundaries, parsed and combined into one Polars frame, in
   this process;
2. ``terminals``: terminals are packed into batches of about
   ``Options.batch_bytes`` of EJ, paper and counters files (every day of a
   terminal in the same batch, so replenishment cycles settle whole); each
   batch gets its terminals' slice of the host frame and is reconciled
   completely (:mod:`reconciliation.batch`). Only findings, settlement rows
   and accounting come back.

With worker processes (a large input), the batches are handed to them before
phase 1 starts: parsing a batch's own files needs no host record, so the
workers parse while this process reads the switch's files, and each batch
then waits for its share of them (:mod:`reconciliation.handoff`): its ISO
8583 records, gathered whole for its process to read again, and the messages
read otherwise (:func:`~reconciliation.hostload.route`). Each worker's
first batch is larger (up to eight batches' worth, sized by the host files),
so that it is still parsing rather than waiting when its host messages come.
With one process, phase 1 simply comes first.

Blocking by terminal keeps every worker independent and the data that crosses
processes small. Nothing here reads the environment or the clock; the caller
passes :class:`Options` and, if it wants them, a progress callback.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

import polars as pl

from reconciliation.batch import BatchResult, run_batch, run_batch_handed
from reconciliation.errors import UnusableInput
from reconciliation.handoff import HostHandoff, folder_place
from reconciliation.hostload import PieceResult, combine, parse_piece, pieces, route
from reconciliation.model import SkippedLine, SourceAccount
from reconciliation.options import Options, Progress, ProgressCallback
from reconciliation.result import Discrepancy, RunResult
from reconciliation.sources import Source, Sources

T = TypeVar("T")


def _executor(workers: int) -> ProcessPoolExecutor:
    # spawn: a forked child of a process that has used Polars' thread pool can deadlock
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(),),
    )


def _start_worker(parent: int) -> None:
    """A worker process of the run, before its first batch.

    - Its priority is a little below its parent's: while the parent reads the
      host files (which every batch waits for), the workers start and parse on
      what CPU it leaves, instead of taking it from it. Afterwards the parent
      mostly waits, and the workers have the machine as before (a 2,000-terminal
      day: the host files read in 1.1-1.2 s instead of 1.3, the run 0.15 s shorter).
    - The cyclic garbage collector is off for its life: batches build hundreds
      of thousands of acyclic tuples, and a collection after each batch walked
      them and every module's objects again. A worker lives as long as its run.
    - It ends when its parent does: a worker whose run was killed would
      otherwise wait for ever to send its result, as every worker holds both
      ends of the pool's result pipe, so that a write to it never fails.
    """
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):  # not allowed here: the same priority
            os.nice(_WORKER_NICENESS)
    gc.disable()
    threading.Thread(
        target=_exit_with, args=(parent,), name="exit-with-parent", daemon=True
    ).start()


def _exit_with(parent: int, interval: float = 0.5) -> None:
    """Wait until ``parent`` is no longer this process's parent, then end the process."""
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


_WORKER_NICENESS = 5
_HOST_THREADS = 2


def _pack(
    groups: dict[str, list[Source]], limit: int, first: tuple[int, int] = (0, 0)
) -> list[list[str]]:
    """Terminals into batches of about ``limit`` bytes, largest first; the first
    ``first[0]`` batches of about ``first[1]`` bytes when that is more."""
    sized = sorted(
        ((sum(source.size() for source in items), terminal) for terminal, items in groups.items()),
        reverse=True,
    )
    batches: list[list[str]] = []
    current: list[str] = []
    total = 0
    for size, terminal in sized:
        current.append(terminal)
        total += size
        if total >= (max(limit, first[1]) if len(batches) < first[0] else limit):
            batches.append(current)
            current, total = [], 0
    if current:
        batches.append(current)
    return batches


def _as_completed_in_order(futures: list[Future[T]]) -> Iterator[T]:
    for future in futures:
        yield future.result()


def reconcile(
    sources: Sources | Iterable[Source],
    *,
    options: Options | None = None,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Reconcile everything in ``sources`` and return the findings with evidence.

    Raises :class:`~reconciliation.errors.UnusableInput` when nothing can be
    reconciled (no EJ and no host file, or no file readable); malformed lines
    and records are listed in the result, never raised.
    """
    chosen = options or Options()
    chosen.check()
    if not isinstance(sources, Sources):
        sources = Sources(items=list(sources))
    report = progress or (lambda _update: None)
    items = sources.items
    if not items:
        detail = "; ".join(f"{name}: {why}" for name, why in sources.ignored[:5])
        raise UnusableInput("no usable input files" + (f" ({detail})" if detail else ""))
    if not any(source.kind in ("ej", "iso", "csv") for source in items):
        raise UnusableInput("nothing to reconcile: no EJ and no host (ISO 8583 or CSV) files")

    started = time.perf_counter()
    timings: dict[str, float] = {}
    host_sources = [source for source in items if source.kind in ("iso", "csv")]
    terminal_sources: dict[str, list[Source]] = defaultdict(list)
    for source in items:
        if source.kind not in ("iso", "csv"):
            terminal_sources[source.terminal_id].append(source)
    total_bytes = sum(source.size() for source in items)
    workers = chosen.workers
    if workers is None:
        big = total_bytes >= chosen.parallel_threshold_bytes
        workers = min(2, os.cpu_count() or 1) if big else 1

    host_total = sum(source.size() for source in host_sources)  # what the pieces will cover
    # With workers, each one's first batch lasts about as long as this process takes
    # over the host files (read at roughly the speed a worker parses its files), so
    # that no worker sits waiting for its first host messages; at most eight batches' worth.
    first = min(host_total // workers, 8 * chosen.batch_bytes) if workers > 1 else 0
    batches = _pack(terminal_sources, chosen.batch_bytes, (workers, first))
    batch_sources = [
        [source for terminal in terminals for source in terminal_sources[terminal]]
        for terminals in batches
    ]
    batch_bytes = [sum(source.size() for source in items) for items in batch_sources]
    terminal_total = sum(batch_bytes)

    def read_host(
        *, thin: bool = False
    ) -> tuple[
        pl.DataFrame,
        list[SourceAccount],
        list[SkippedLine],
        list[str],
        int,
        Callable[[], list[str]],
        list[PieceResult],
    ]:
        """Phase 1, in this process: every host file, as one frame (and the CSV
        exports' comparison with the ISO 8583 logs, to be made once it is handed
        out), and the pieces it was read in. With ``thin``, the frame has only what
        this process needs when the workers read their messages again
        (``THIN_COLUMNS``)."""
        report(Progress("host", 0, host_total, "bytes"))
        results: list[PieceResult] = []
        done = 0
        host_pieces = [
            piece for source in host_sources for piece in pieces(source, chosen.host_chunk_bytes)
        ]
        # two pieces at a time: the compiled ISO 8583 pass and Polars' CSV reader run
        # without the GIL, so a second thread reads while the first does
        with ThreadPoolExecutor(max_workers=_HOST_THREADS) as threads:
            for piece, result in zip(
                host_pieces,
                threads.map(functools.partial(parse_piece, thin=thin), host_pieces),
                strict=True,
            ):
                results.append(result)
                done += piece.end - piece.start
                report(Progress("host", done, host_total, "bytes"))
        frame, accounts, skipped, notes, compare = combine(results, thin=thin)
        timings["host"] = time.perf_counter() - started
        unreadable = sum(1 for item in results if item.unreadable)
        return frame, accounts, skipped, notes, unreadable, compare, results

    owner = {terminal: index for index, terminals in enumerate(batches) for terminal in terminals}

    def slices(frame: pl.DataFrame) -> Iterator[pl.DataFrame]:
        """Each batch's host messages, in the frame's order: every message marked
        with its batch's number, then one partition by that number."""
        number = pl.col("terminal_id").replace_strict(owner, default=None, return_dtype=pl.Int32)
        parts = frame.with_columns(_batch=number).partition_by(
            "_batch", as_dict=True, include_key=False, maintain_order=True
        )
        # (messages of terminals without a file of their own are in no batch: key None)
        by_batch = {key[0]: part for key, part in parts.items() if key[0] is not None}
        for index in range(len(batches)):
            yield by_batch.get(index, frame.clear())

    mark = time.perf_counter()
    folder: str | None = None
    if workers > 1:
        try:
            folder = tempfile.mkdtemp(prefix="atm-recon-", dir=folder_place(host_total))
        except OSError:
            folder = None  # nowhere to hand the host messages over: one process does all
    if folder is None:
        host, host_accounts, host_skipped, observations, host_unreadable, compare, _ = read_host()
        observations.extend(compare())
        host_days = _host_days(host)
        mark = time.perf_counter()
        report(Progress("terminals", 0, terminal_total, "bytes"))
        batch_results: list[BatchResult] = []
        done = 0
        for batch_items, size, part in zip(batch_sources, batch_bytes, slices(host), strict=True):
            batch_results.append(run_batch(batch_items, part, chosen))
            done += size
            report(Progress("terminals", done, terminal_total, "bytes"))
    else:
        # Phase 2 starts first: the workers parse their batches' files while this
        # process reads the host files, then each batch waits for its host messages.
        pool = _executor(workers)
        finished = False
        try:
            handoffs = [HostHandoff(folder, index, os.getpid()) for index in range(len(batches))]
            futures = [
                pool.submit(run_batch_handed, batch_items, handoff, chosen)
                for batch_items, handoff in zip(batch_sources, handoffs, strict=True)
            ]
            try:
                host, host_accounts, host_skipped, observations, host_unreadable, compare, read = (
                    read_host(thin=True)
                )
                mark = time.perf_counter()
                for handoff, share in zip(handoffs, route(read, owner, len(batches)), strict=True):
                    handoff.publish(share)
                del read  # the pieces' bytes
                observations.extend(compare())  # while the workers match
                host_days = _host_days(host)
            except BaseException:
                HostHandoff.abort(folder)
                for future in futures:
                    future.cancel()
                raise
            report(Progress("terminals", 0, terminal_total, "bytes"))
            batch_results = []
            done = 0
            for size, handoff, result in zip(
                batch_bytes, handoffs, _as_completed_in_order(futures), strict=True
            ):
                batch_results.append(handoff.take_back() if result is None else result)
                done += size
                report(Progress("terminals", done, terminal_total, "bytes"))
            finished = True
        finally:
            # every result in: the workers end on their own while the results are
            # merged (their exit takes a tenth of a second); otherwise wait for them
            pool.shutdown(wait=not finished, cancel_futures=True)
            shutil.rmtree(folder, ignore_errors=True)
    timings["terminals"] = time.perf_counter() - mark

    unreadable = sum(result.unreadable for result in batch_results) + host_unreadable
    if unreadable and unreadable >= len(items):
        raise UnusableInput(
            "no input file could be read: " + "; ".join(observations[:3] or ["see the sources"])
        )
    discrepancies: list[Discrepancy] = []
    accounts = list(host_accounts)
    skipped = list(host_skipped)
    ej_days: set[tuple[str, str]] = set()
    all_days: set[tuple[str, str]] = set()
    for result in batch_results:
        discrepancies.extend(result.discrepancies)
        accounts.extend(result.accounts)
        skipped.extend(result.skipped)
        observations.extend(result.observations)
        ej_days.update(result.ej_terminal_days)
        all_days.update(result.terminal_days)
    observations.extend(_coverage(host_days, ej_days))
    all_days.update((terminal, day) for terminal, day, _ in host_days)
    for result in batch_results:  # CPU seconds per stage, summed over workers
        for stage, seconds in result.timings.items():
            name = f"cpu_{stage}"
            timings[name] = timings.get(name, 0.0) + seconds
    discrepancies.sort(key=Discrepancy.sort_key)
    timings["total"] = time.perf_counter() - started
    return RunResult(
        discrepancies,
        [row for result in batch_results for row in result.settlement],
        sorted(accounts, key=lambda account: (account.kind, account.source)),
        skipped,
        list(sources.ignored),
        observations,
        len(all_days),
        sum(result.transactions for result in batch_results),
        host.height,
        sum(result.ej_bytes for result in batch_results),
        timings,
    )


def _host_days(host: pl.DataFrame) -> list[tuple[str, str, int]]:
    """Every terminal-day of the host messages, with its messages other than reversals."""
    # the flag made first, then summed by a lazy grouping: a third of the time of
    # the eager grouping with the comparison in its aggregation (1M messages)
    counts = (
        host.lazy()
        .select("terminal_id", "business_date", counted=(pl.col("mti") != "0420").cast(pl.Int64))
        .group_by("terminal_id", "business_date")
        .agg(pl.col("counted").sum())
        .sort("terminal_id", "business_date")
        .collect()
    )
    return [(str(terminal), str(day), count) for terminal, day, count in counts.iter_rows()]


def _coverage(host_days: list[tuple[str, str, int]], ej_days: set[tuple[str, str]]) -> list[str]:
    """Terminal-days the host knows but no EJ covers: reported, not reconciled."""
    return [
        f"{terminal} {day}: {count} host message(s) but no EJ; "
        "those transactions were not reconciled against the journal"
        for terminal, day, count in host_days
        if count and (terminal, day) not in ej_days
    ]
