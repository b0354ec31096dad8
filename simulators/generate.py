"""Batch generation of a data set in the field's formats.

A data set is ``ej/ paper/ host/ counters/ truth.jsonl``.

Each terminal is an :class:`~simulators.atm.Atm` with its own random stream
(seeded from the data-set seed and its terminal ID), so a data set depends on
the seed and options only, never on how many processes made it. Terminals are
simulated day by day in chunks, in parallel when ``workers > 1``; each chunk
writes its terminals' journals, paper and counters itself and hands the
switch's records for each day to the parent, which merges them into
``host/<YYYYMMDD>.iso`` and ``.csv``.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import tempfile
import time as timer
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from random import Random

from simulators import iso
from simulators.atm import END_OF_DAY, Atm, TerminalConfig
from simulators.cash import DENOMINATION_SETS, set_usage
from simulators.counters import dumps_counters
from simulators.demand import (
    AMOUNT_MENU,
    FIFTY_AMOUNTS,
    DemandModel,
    DemandShock,
    SeasonalDemand,
    arrivals,
)
from simulators.errors import ConfigurationError
from simulators.faults import DEFAULT_WEIGHTS, FaultPolicy
from simulators.host import HostDay, HostSwitch, write_host_day
from simulators.paper import transcribe
from simulators.truth import dumps

DIALECT_CHOICES = ("ndc", "procash", "mixed")


@dataclass(frozen=True)
class FleetOptions:
    """Everything a generated data set depends on."""

    terminals: int = 6
    days: int = 2
    start: date = date(2026, 11, 16)
    seed: int = 0
    discrepancy_rate: float = 0.03
    dialect: str = "mixed"
    mean_transactions: float = 120.0
    ocr_p: float = 0.02
    count_error_rate: float = 0.15  # replenishment visits with one cassette miscounted
    maintenance_rate: float = 0.03  # days with a supervisor visit without cash exchange
    visit_interval: tuple[int, int] = (2, 6)  # days between scheduled replenishments
    first_terminal: int = 1_000_001
    workers: int = 1
    holidays: tuple[date, ...] = ()
    holiday_factor: float = 0.55
    shocks: tuple[DemandShock, ...] = ()
    weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_WEIGHTS.items())
    reversal_share: float = 0.65
    iso_encoder: str = "pyiso8583"  # or "fast": byte-identical and about twice as quick
    demand: DemandModel | None = field(default=None, compare=False)

    def validate(self) -> None:
        if self.terminals < 1:
            raise ConfigurationError(f"--terminals must be at least 1, not {self.terminals}")
        if self.first_terminal + self.terminals - 1 > 9_999_999 or self.first_terminal < 0:
            raise ConfigurationError("terminal IDs must fit T + 7 digits")
        if self.days < 1:
            raise ConfigurationError(f"--days must be at least 1, not {self.days}")
        if self.dialect not in DIALECT_CHOICES:
            raise ConfigurationError(
                f"--dialect must be one of {', '.join(DIALECT_CHOICES)}, not {self.dialect!r}"
            )
        if not 0.0 <= self.discrepancy_rate <= 1.0:
            raise ConfigurationError(
                f"--discrepancy-rate must be within 0..1, not {self.discrepancy_rate}"
            )
        if not 0.0 <= self.ocr_p < 1.0:
            raise ConfigurationError(f"--ocr-p must be within 0..1, not {self.ocr_p}")
        if self.mean_transactions < 0:
            raise ConfigurationError("--mean-transactions must not be negative")
        if not 0.0 <= self.count_error_rate <= 1.0:
            raise ConfigurationError("--count-error-rate must be within 0..1")
        if self.workers < 1:
            raise ConfigurationError(f"--workers must be at least 1, not {self.workers}")
        if self.iso_encoder not in ("fast", "pyiso8583"):
            raise ConfigurationError("--iso-encoder must be 'fast' or 'pyiso8583'")
        low, high = self.visit_interval
        if not 1 <= low <= high:
            raise ConfigurationError("visit interval must be 1 <= min <= max days")
        FaultPolicy(self.discrepancy_rate, weights=dict(self.weights))

    def terminal_ids(self) -> list[str]:
        return [f"T{self.first_terminal + i:07d}" for i in range(self.terminals)]

    def demand_model(self) -> DemandModel:
        if self.demand is not None:
            return self.demand
        return SeasonalDemand.for_fleet(
            self.terminal_ids(),
            self.mean_transactions,
            Random(f"{self.seed}:demand"),
            holidays=dict.fromkeys(self.holidays, self.holiday_factor),
            shocks=self.shocks,
        )


@dataclass
class GenerationReport:
    """What a run made."""

    terminals: int = 0
    days: int = 0
    transactions: int = 0
    discrepancies: int = 0
    seconds: float = 0.0

    @property
    def transactions_per_second(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0


def terminal_config(options: FleetOptions, index: int, rng: Random) -> TerminalConfig:
    """The make-up of terminal ``index``: dialect, cassettes, loads and first STAN."""
    tid = f"T{options.first_terminal + index:07d}"
    if options.dialect == "mixed":
        dialect = "ndc" if rng.random() < 0.5 else "procash"
    else:
        dialect = options.dialect
    denominations = DENOMINATION_SETS[rng.randrange(len(DENOMINATION_SETS))]
    loads = tuple(rng.choice((1500, 2000, 2500)) for _ in range(4))
    return TerminalConfig(
        terminal_id=tid,
        dialect=dialect,
        denominations=denominations,
        loads=(loads[0], loads[1], loads[2], loads[3]),
        first_stan=rng.randrange(1, 999_000),
    )


class TerminalRun:
    """One terminal through the days of a data set: customers, visits and faults."""

    def __init__(self, options: FleetOptions, index: int, demand: DemandModel) -> None:
        self.options = options
        self.demand = demand
        rng = Random(f"{options.seed}:T{options.first_terminal + index:07d}")
        self.rng = rng
        self.config = terminal_config(options, index, rng)
        self.terminal_id = self.config.terminal_id
        packer = iso.pack if options.iso_encoder == "fast" else iso.pack_with_pyiso8583
        self.host = HostSwitch(Random(f"{options.seed}:{self.terminal_id}:host"), packer=packer)
        self.policy = FaultPolicy(
            options.discrepancy_rate,
            weights=dict(options.weights),
            reversal_share=options.reversal_share,
        )
        self.atm = Atm(self.config, rng, self.host, self.policy)
        # mid-cycle at the start: some cash already used since the last visit
        for n, unit in enumerate(self.atm.cash.cassettes, start=1):
            used = rng.randrange(0, unit.initial // 2)
            retracted = rng.randint(0, min(2, used))
            set_usage(self.atm.cash, n, used, rng.randint(0, 3), retracted)
        self.atm.reported = self.atm._supplies()
        high = options.visit_interval[1]
        self.next_visit = options.start + timedelta(days=rng.randint(0, high - 1))
        self.truth_lines: list[str] = []
        self.transactions = 0
        self.discrepancies = 0
        self.fifties = 50 in self.config.denominations

    def _visit_errors(self) -> list[tuple[int, int]]:
        rng = self.rng
        if rng.random() >= self.options.count_error_rate:
            return []
        delta = rng.choice((1, 1, 1, 2, 2, 3, 5, 10))
        return [(rng.randint(1, 4), delta if rng.random() < 0.5 else -delta)]

    def run_day(self, day: date) -> tuple[list[str], list[list[str]], str, HostDay]:
        """Simulate one day; returns (EJ lines, receipts, counters JSON, switch records)."""
        rng = self.rng
        atm = self.atm
        options = self.options
        tid = self.terminal_id
        atm.begin_day(day)
        times = arrivals(self.demand, tid, day, rng)
        visit_at: int | None = None
        if day >= self.next_visit or atm.needs_cash():
            visit_at = rng.randint(8 * 3600, 16 * 3600)
        maintenance_at: int | None = None
        if rng.random() < options.maintenance_rate:
            maintenance_at = rng.randint(7 * 3600, 20 * 3600)
        balance_share = self.demand.balance_share(tid, day)
        menu = list(AMOUNT_MENU)
        weights = list(self.demand.amount_weights(tid, day))
        if self.fifties:
            menu.extend(FIFTY_AMOUNTS)
            weights.extend([2.0] * len(FIFTY_AMOUNTS))
        cum = []
        total = 0.0
        for w in weights:
            total += w
            cum.append(total)
        by_size = sorted(menu, reverse=True)
        visited = False
        random = rng.random
        choices = rng.choices
        for t in times:
            if visit_at is not None and t >= visit_at:
                atm.replenish(visit_at, self._visit_errors())
                visit_at = None
                visited = True
            if maintenance_at is not None and t >= maintenance_at:
                atm.supervisor_visit(maintenance_at, rng.randint(3, 12))
                maintenance_at = None
            if random() < balance_share:
                atm.serve(t, False)
                continue
            amount = choices(menu, cum_weights=cum)[0]
            if atm.serve(t, True, amount) is None:
                # not offered: the customer takes the next smaller amount the ATM offers
                amount = next((a for a in by_size if a < amount and atm.offers(a)), 0)
                if not amount:
                    if visit_at is None and not visited and t < 14 * 3600:
                        visit_at = atm.clock + rng.randint(2 * 3600, 4 * 3600)
                    continue
                atm.serve(t, True, amount)
            if visit_at is None and not visited and t < 13 * 3600 and atm.needs_cash():
                # emergency run when a cassette runs low in the morning
                visit_at = atm.clock + rng.randint(3 * 3600, 5 * 3600)
        if visit_at is not None and max(visit_at, atm.clock) < END_OF_DAY - 3600:
            atm.replenish(visit_at, self._visit_errors())
            visited = True
        if visited:
            low, high = options.visit_interval
            self.next_visit = day + timedelta(days=rng.randint(low, high))
        out = atm.end_day()
        self.transactions += out.transactions
        self.discrepancies += len(out.truth)
        if out.truth:
            self.truth_lines.append(dumps(out.truth))
        counters = dumps_counters(tid, out.date_iso, out.snapshots)
        return out.ej, out.paper, counters, self.host.pop_day(tid, out.date_iso)


@dataclass
class _ChunkResult:
    index: int
    truth: str
    transactions: int
    discrepancies: int


def _run_chunk(
    options: FleetOptions, chunk: int, indices: Sequence[int], frag_dir: str
) -> _ChunkResult:
    out = Path(frag_dir).parent
    demand = options.demand_model()
    runs = [TerminalRun(options, i, demand) for i in indices]
    for d in range(options.days):
        day = options.start + timedelta(days=d)
        stem = day.strftime("%Y%m%d")
        host_days: list[tuple[str, HostDay]] = []
        for run in runs:
            ej, paper, counters, host_day = run.run_day(day)
            tid = run.terminal_id
            with open(out / "ej" / f"{tid}_{stem}.txt", "w", encoding="ascii", newline="\n") as fh:
                if ej:
                    fh.write("\n".join(ej) + "\n")
            paper_rng = Random(f"{options.seed}:{tid}:{stem}:paper")
            with open(
                out / "paper" / f"{tid}_{stem}.txt", "w", encoding="ascii", newline="\n"
            ) as fh:
                fh.write(transcribe(paper, paper_rng, options.ocr_p))
            with open(
                out / "counters" / f"{tid}_{stem}.json", "w", encoding="ascii", newline="\n"
            ) as fh:
                fh.write(counters)
            host_days.append((tid, host_day))
        with open(Path(frag_dir) / f"{stem}.{chunk:05d}.pkl", "wb") as fh:
            pickle.dump(host_days, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return _ChunkResult(
        index=chunk,
        truth="".join("".join(run.truth_lines) for run in runs),
        transactions=sum(run.transactions for run in runs),
        discrepancies=sum(run.discrepancies for run in runs),
    )


def _run_chunk_star(args: tuple[FleetOptions, int, Sequence[int], str]) -> _ChunkResult:
    return _run_chunk(*args)


def generate(options: FleetOptions, out: Path) -> GenerationReport:
    """Write a data set for ``options`` into ``out`` (created if missing)."""
    options.validate()
    started = timer.perf_counter()
    for sub in ("ej", "paper", "host", "counters"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    frag_dir = Path(tempfile.mkdtemp(prefix=".host-", dir=out))
    try:
        indices = list(range(options.terminals))
        n_chunks = min(options.terminals, max(1, options.workers * 4))
        size = -(-len(indices) // n_chunks)
        chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
        jobs = [(options, c, chunk, str(frag_dir)) for c, chunk in enumerate(chunks)]
        if options.workers == 1 or len(chunks) == 1:
            results = [_run_chunk_star(job) for job in jobs]
        else:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            with context.Pool(processes=options.workers) as pool:
                results = pool.map(_run_chunk_star, jobs, chunksize=1)
        results.sort(key=lambda r: r.index)
        for d in range(options.days):
            day = options.start + timedelta(days=d)
            stem = day.strftime("%Y%m%d")
            per_terminal: list[tuple[str, HostDay]] = []
            for c in range(len(chunks)):
                path = frag_dir / f"{stem}.{c:05d}.pkl"
                with open(path, "rb") as fh:
                    per_terminal.extend(pickle.load(fh))  # noqa: S301 - our own fragment
                os.unlink(path)
            write_host_day(out / "host", day.isoformat(), per_terminal)
        with open(out / "truth.jsonl", "w", encoding="ascii", newline="\n") as fh:
            for result in results:
                fh.write(result.truth)
    finally:
        shutil.rmtree(frag_dir, ignore_errors=True)
    return GenerationReport(
        terminals=options.terminals,
        days=options.days,
        transactions=sum(r.transactions for r in results),
        discrepancies=sum(r.discrepancies for r in results),
        seconds=timer.perf_counter() - started,
    )
