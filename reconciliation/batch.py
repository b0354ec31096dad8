"""Reconcile one batch of terminals: everything from parsed files to evidence.

A batch holds every source of a few terminals (all their days, so that a
replenishment cycle is settled whole) and the host messages of those
terminals. It runs in a worker process for a large input, or in the caller's
process for a small one; it reads nothing global. Stages:

1. parse the batch's EJ, paper and counters files;
2. join EJ and host and name the transaction kinds in Polars
   (:mod:`reconciliation.classify`), EJ gaps truncated or lost;
3. align paper blocks with the receipts they should show;
4. settle replenishment cycles and cassettes;
5. gather the evidence of each finding.
"""

from __future__ import annotations

import operator
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

import polars as pl

from reconciliation.classify import (
    KEY,
    classify,
    ej_frame,
    host_groups,
    join_sides,
    receipt_hosts,
)
from reconciliation.ej import normalise
from reconciliation.errors import SourceUnreadable
from reconciliation.handoff import HostHandoff
from reconciliation.kinds import CASSETTE_KINDS, KIND_INFO, Kind, Owed
from reconciliation.model import (
    CountersParse,
    EjParse,
    EjTransaction,
    HostMessage,
    PaperBlock,
    PaperParse,
    SkippedLine,
    Snapshot,
    SourceAccount,
)
from reconciliation.options import Options
from reconciliation.paper import block_lines, block_text
from reconciliation.paper_match import Expected, HostFirsts, match_paper, receipts
from reconciliation.parsing import Parsed, parse_bytes
from reconciliation.result import Discrepancy, Evidence, SettlementRow
from reconciliation.schemes import dispute_deadline, scheme_for
from reconciliation.settlement import settle_terminal
from reconciliation.sources import Source, prefetch
from reconciliation.textutil import printable

_STAN = operator.itemgetter(EjTransaction._fields.index("stan"))
_TRUNCATED = operator.itemgetter(EjTransaction._fields.index("truncated"))


@dataclass(slots=True)
class _Day:
    """Everything known about one terminal and business day."""

    terminal_id: str
    business_date: str
    ej: EjParse | None = None
    ej_source: Source | None = None
    paper: PaperParse | None = None
    paper_source: Source | None = None
    counters: CountersParse | None = None
    paper_found: dict[str, int] = field(default_factory=dict)  # stan -> block index
    expected: list[Expected] = field(default_factory=list)  # by time; one per STAN
    expected_positions: dict[str, int] | None = None
    stan_positions: dict[str, int] | None = None
    block_stans: list[str] | None = None  # per EJ block its STAN, "" if cut (power failure)
    cut_blocks: list[tuple[int, EjTransaction]] | None = None  # (index, block) of those cut
    buffers: dict[str, bytes] = field(default_factory=dict)  # normalised, by source name
    raw: dict[str, bytes] = field(default_factory=dict)  # as read, until first needed
    snapshot_views: dict[int, dict[str, Any]] = field(default_factory=dict)  # by id()

    def position(self, stan: str) -> int | None:
        """Index of the EJ block with this STAN (not truncated)."""
        if self.stan_positions is None:
            keys = self.stans()
            # from the last block to the first, so that the first block of a STAN wins
            self.stan_positions = dict(
                zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True)
            )
            self.stan_positions.pop("", None)
        return self.stan_positions.get(stan)

    def stans(self) -> list[str]:
        """Per EJ block, its STAN; "" for a block a power failure cut."""
        if self.block_stans is None:
            transactions = self.ej.transactions if self.ej is not None else []
            keys = list(map(_STAN, transactions))
            for index, _ in self.cut():
                keys[index] = ""
            self.block_stans = keys
        return self.block_stans

    def cut(self) -> list[tuple[int, EjTransaction]]:
        """The EJ blocks a power failure cut, with their indexes."""
        if self.cut_blocks is None:
            transactions = self.ej.transactions if self.ej is not None else []
            self.cut_blocks = list(compress(enumerate(transactions), map(_TRUNCATED, transactions)))
        return self.cut_blocks

    def expected_position(self, stan: str) -> int | None:
        """Index of the receipt with this STAN among those the paper should show."""
        if self.expected_positions is None:
            self.expected_positions = {item.stan: index for index, item in enumerate(self.expected)}
        return self.expected_positions.get(stan)

    def text(self, source: Source | None, start: int, end: int) -> bytes:
        """Bytes of one of this day's files (read once, line ends normalised)."""
        if source is None:
            return b""
        buffer = self.buffers.get(source.name)
        if buffer is None:
            raw = self.raw.pop(source.name, None)
            buffer = self.buffers[source.name] = normalise(
                raw if raw is not None else source.read()
            )
        return buffer[start:end]


def _denominations(day: _Day, at: str) -> tuple[int, int, int, int] | None:
    """Denominations of cassettes 1-4 in force at ``at`` (HH:MM:SS)."""
    best: Snapshot | None = None
    if day.counters is not None:
        for snapshot in day.counters.snapshots:
            if snapshot.phase == "before_exchange":
                continue
            if best is None or snapshot.timestamp[11:] <= (at or "23:59:59"):
                best = snapshot
        if best is not None:
            values = {unit.number: unit.denomination for unit in best.units}
            if all(number in values for number in (1, 2, 3, 4)):
                return (values[1], values[2], values[3], values[4])
    if day.ej is not None:
        tables = [event for event in day.ej.events if event.counters is not None]
        chosen = None
        for event in tables:
            if chosen is None or event.time <= (at or "23:59:59"):
                chosen = event
        if chosen is not None and chosen.counters is not None:
            rows = {row[0]: row[1] for row in chosen.counters.rows}
            if all(number in rows for number in (1, 2, 3, 4)):
                return (rows[1], rows[2], rows[3], rows[4])
        inferred = [0, 0, 0, 0]
        for txn in day.ej.transactions:
            if txn.outcome == "taken" and sum(1 for n in txn.dispensed if n) == 1:
                for index, notes in enumerate(txn.dispensed):
                    if notes and txn.amount_minor % (notes * 100) == 0:
                        inferred[index] = inferred[index] or txn.amount_minor // (notes * 100)
        if any(inferred):  # types never seen alone stay 0 (unknown)
            return (inferred[0], inferred[1], inferred[2], inferred[3])
    return None


def _notes_minor(notes: tuple[int, int, int, int], denominations: tuple[int, ...] | None) -> int:
    if denominations is None:
        return 0
    return sum(count * value for count, value in zip(notes, denominations, strict=True)) * 100


@dataclass(slots=True)
class BatchResult:
    """What a batch sends back: findings with evidence, settlement, accounting."""

    discrepancies: list[Discrepancy]
    settlement: list[SettlementRow]
    accounts: list[SourceAccount]
    skipped: list[SkippedLine]
    observations: list[str]
    terminal_days: list[tuple[str, str]]
    ej_terminal_days: list[tuple[str, str]]
    transactions: int
    ej_bytes: int
    sources: int
    unreadable: int
    timings: dict[str, float]


class TerminalBatch:
    """Reconciles the sources of a few terminals against their host messages."""

    def __init__(self, sources: list[Source], host: pl.DataFrame, options: Options) -> None:
        self.sources = sources
        self.host = host
        self.options = options
        self.days: dict[tuple[str, str], _Day] = {}
        self.accounts: list[SourceAccount] = []
        self.skipped: list[SkippedLine] = []
        self.observations: list[str] = []
        self.ej_days: list[_Day] = []  # the days with an EJ, in ej_ref's numbering
        self.discrepancies: list[Discrepancy] = []
        self.settlement: list[SettlementRow] = []
        self.host_by_key: dict[tuple[str, str, str], list[dict[str, Any]]] | None = None
        self.receipt_hosts = pl.DataFrame()  # classify.receipt_hosts, from the match stage
        self._evidence_refs: dict[int, tuple[int | None, bool]] = {}
        self.unreadable = 0

    # -- stage 1 -------------------------------------------------------------------------

    def day(self, terminal_id: str, business_date: str) -> _Day:
        key = (terminal_id, business_date)
        found = self.days.get(key)
        if found is None:
            found = self.days[key] = _Day(terminal_id, business_date)
        return found

    def load(self) -> None:
        prefetch(self.sources)
        for source in self.sources:
            try:
                buffer = source.read()
            except SourceUnreadable as exc:
                self.unreadable += 1
                self.observations.append(f"{source.name}: not read ({exc.message})")
                continue
            item = parse_bytes(source, buffer)
            self._take(item, source)
            if isinstance(item, EjParse | PaperParse):
                # kept for the evidence, so that an excerpt needs no second read
                self.day(item.terminal_id, item.business_date).raw[source.name] = buffer

    def _take(self, item: Parsed, source: Source) -> None:
        if isinstance(item, EjParse):
            day = self.day(item.terminal_id, item.business_date)
            if day.ej is not None:
                self.observations.append(
                    f"{source.name}: a second EJ for {item.terminal_id} {item.business_date}; "
                    "the first one was used"
                )
                self.skipped.append(
                    SkippedLine(source.name, 0, "a second EJ for this terminal and day", "")
                )
                return
            day.ej, day.ej_source = item, source
            self.accounts.append(
                SourceAccount(
                    item.source,
                    "ej",
                    item.terminal_id,
                    item.business_date,
                    item.size,
                    item.lines_total,
                    len(item.skipped),
                    len(item.transactions),
                    {
                        "events": len(item.events),
                        "truncated_blocks": sum(1 for t in item.transactions if t.truncated),
                        "fast_path": int(item.fast_path),
                    },
                )
            )
            self.skipped.extend(item.skipped)
        elif isinstance(item, PaperParse):
            day = self.day(item.terminal_id, item.business_date)
            day.paper, day.paper_source = item, source
        elif isinstance(item, CountersParse):
            day = self.day(item.terminal_id, item.business_date)
            day.counters = item
            self.accounts.append(
                SourceAccount(
                    item.source,
                    "counters",
                    item.terminal_id,
                    item.business_date,
                    item.size,
                    len(item.snapshots) + len(item.skipped),
                    len(item.skipped),
                    len(item.snapshots),
                )
            )
            self.skipped.extend(item.skipped)

    # -- stage 2 -------------------------------------------------------------------------

    def match(self) -> None:
        self.ej_days = [day for day in self.days.values() if day.ej is not None]
        ej = ej_frame(
            [
                (day.terminal_id, day.business_date, day.ej.transactions, number)
                for number, day in enumerate(self.ej_days)
                if day.ej is not None
            ]
        )
        joined = join_sides(ej, host_groups(self.host))
        self.receipt_hosts = receipt_hosts(joined)
        found, odd = classify(joined, self.options.time_window_seconds)
        for row in found.iter_rows(named=True):
            self._finding(row)
        for terminal, business_date, stan, note, ej_amount, host_amount in odd.sort(
            KEY
        ).iter_rows():
            self.observations.append(
                f"{terminal} {business_date} STAN {stan}: {note} "
                f"(EJ amount {ej_amount}, host approved {host_amount})"
            )

    def _host_messages(
        self, terminal_id: str, business_date: str, stan: str
    ) -> list[dict[str, Any]]:
        """The host messages of one key as evidence (an index over the findings' keys
        only): JSON-ready, fields as :class:`HostMessage` has them but DE95's actual
        amount ``None`` where there is none; made once per message and shared by the
        findings that show it (read-only)."""
        if self.host_by_key is None:
            keys = pl.DataFrame(
                {
                    "terminal_id": [item.terminal_id for item in self.discrepancies],
                    "business_date": [item.business_date for item in self.discrepancies],
                    "stan": [item.stan or "" for item in self.discrepancies],
                },
                schema={"terminal_id": pl.Utf8, "business_date": pl.Utf8, "stan": pl.Utf8},
            ).unique()
            actual = pl.col("actual_minor")
            wanted = (
                self.host.join(keys, on=KEY, how="semi")
                .sort("seq")
                .select(*HostMessage._fields)
                .with_columns(actual_minor=pl.when(actual >= 0).then(actual))
            )
            index: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
            for message in wanted.iter_rows(named=True):
                key = (message["terminal_id"], message["business_date"], message["stan"])
                index[key].append(message)
            self.host_by_key = index
        return self.host_by_key.get((terminal_id, business_date, stan), [])

    def _finding(self, row: dict[str, Any]) -> None:
        kind = row["kind"]
        terminal_id, business_date, stan = row["terminal_id"], row["business_date"], row["stan"]
        day = self.days.get((terminal_id, business_date))
        if kind == "ej_missing":
            if day is None or day.ej is None:
                return  # reported once per terminal-day in the coverage observations
            self._ej_gap(day, row)
            return
        ref = row["ej_ref"]
        txn: EjTransaction | None = None
        if ref is not None:  # the day's number and the record's index (classify.ej_frame)
            day, index = self.ej_days[ref >> 32], ref & 0xFFFFFFFF
            txn = day.ej.transactions[index] if day.ej else None
        assert day is not None
        approved = row["approved_amount"]
        detail: dict[str, Any] = {}
        amount = 0
        local_time = row["host_time"] or (txn.time if txn else None)
        denominations = _denominations(day, txn.time if txn else "")
        dispensed_minor = _notes_minor(txn.dispensed, denominations) if txn is not None else 0
        if kind in (Kind.NO_DISPENSE_NO_REVERSAL, Kind.NO_DISPENSE_REVERSED):
            amount = approved
            assert txn is not None
            detail = {
                "cause": "power_interruption" if txn.outcome == "power" else "dispenser_error",
                "dispensed_minor": dispensed_minor,
            }
        elif kind in (Kind.PARTIAL_DISPENSE_NO_REVERSAL, Kind.PARTIAL_DISPENSE_REVERSED):
            assert txn is not None
            amount = approved - dispensed_minor
            detail = {
                "requested_minor": approved,
                "dispensed_minor": dispensed_minor,
                "notes_dispensed": list(txn.dispensed),
            }
            if row["reversal_actual"] is not None and row["reversal_actual"] > 0:
                detail["reversal_actual_minor"] = row["reversal_actual"]
        elif kind in (Kind.RETRACT_NO_REVERSAL, Kind.RETRACT_REVERSED):
            assert txn is not None
            amount = approved
            detail = {"notes_retracted": list(txn.retracted)}
        elif kind in (Kind.HOST_TIMEOUT_NO_REVERSAL, Kind.HOST_TIMEOUT_REVERSED):
            amount = approved
        elif kind == Kind.DISPENSED_NOT_IN_HOST:
            assert txn is not None
            amount = dispensed_minor - _notes_minor(txn.retracted, denominations)
            local_time = txn.time
            detail = {"notes_dispensed": list(txn.dispensed)}
        elif kind == Kind.HOST_DUPLICATE:
            amount = row["host_amount"] if row["host_amount"] is not None else row["any_amount"]
            detail = {"copies": row["n210"]}
        if row["n420"]:
            detail["reversal_reason"] = row["reversal_reason"]
        rrn = row["host_rrn"] or row["any_rrn"] or (txn.rrn if txn else None)
        card = (txn.card if txn else "") or (row["host_card"] or "")
        self._add(
            day,
            Kind(kind),
            stan,
            rrn,
            amount,
            local_time,
            detail,
            card,
            txn_index=_index_of(txn, day),
        )

    def _ej_gap(self, day: _Day, row: dict[str, Any]) -> None:
        assert day.ej is not None
        stan = row["stan"]
        card = row["host_card"] or ""
        variant = "lost"
        where: int | None = None
        for index, txn in day.cut():
            if txn.stan == stan or (txn.card and txn.card == card and not txn.stan):
                variant, where = "truncated", index
                break
        if where is None:
            where = _hole_position(day.stans(), stan)
        amount = row["host_amount"] if row["host_amount"] is not None else row["any_amount"]
        detail = {"variant": variant}
        local_time = row["host_time"] or row["any_time"]
        self._add(
            day,
            Kind.EJ_GAP,
            stan,
            row["host_rrn"] or row["any_rrn"],
            amount or 0,
            local_time,
            detail,
            card,
            txn_index=where,
            exact_block=variant == "truncated",
        )

    def _add(
        self,
        day: _Day,
        kind: Kind,
        stan: str | None,
        rrn: str | None,
        amount: int,
        local_time: str | None,
        detail: dict[str, Any],
        card: str,
        *,
        txn_index: int | None = None,
        exact_block: bool = True,
    ) -> None:
        info = KIND_INFO[kind]
        rule = scheme_for(card, self.options.scheme_rules) if card else None
        money = info.owed != Owed.NOBODY or kind.value.endswith("_reversed")
        detail = {"text": info.text, **({"local_time": local_time} if local_time else {}), **detail}
        evidence = Evidence()
        evidence_ref = (txn_index, exact_block)
        discrepancy = Discrepancy(
            day.terminal_id,
            day.business_date,
            kind.value,
            stan,
            rrn,
            int(amount),
            self.options.currency,
            info.owed.value,
            info.action.value,
            dispute_deadline(day.business_date, rule) if money and stan else None,
            rule.scheme if rule else None,
            local_time,
            detail,
            evidence,
        )
        self.discrepancies.append(discrepancy)
        self._evidence_refs[id(discrepancy)] = evidence_ref

    # -- stage 3 -------------------------------------------------------------------------

    def paper(self) -> None:
        # per terminal-day, what the receipts need of the host beyond the EJ (the match
        # stage found it)
        host_by_day = _host_by_day(self.receipt_hosts)
        paper_days = [day for day in self.days.values() if day.paper is not None]
        for day in paper_days:
            assert day.paper is not None
            host = host_by_day.get((day.terminal_id, day.business_date), {})
            plan = receipts(day.ej.transactions if day.ej is not None else [], host)
            ordered = plan.ordered
            day.expected = plan.expected
            day.expected_positions = plan.lookup[0]  # STANs are unique among them
            found = match_paper(day.paper.blocks, day.expected, plan.lookup)
            day.paper_found = {day.expected[index].stan: block for index, block in found.items()}
            self._paper_accounting(day, set(found.values()))
            windows = _paper_out_windows(day.ej)
            gap_id = ""
            previous: tuple[int, int] | None = None  # (expected index, window)
            missing = [index for index in range(len(ordered)) if index not in found]
            for index in missing:
                item, amount, card = ordered[index]
                window = _window_of(windows, item.time)
                if previous is None or previous[0] != index - 1 or previous[1] != window:
                    gap_id = f"{day.terminal_id}-{day.business_date.replace('-', '')}-{item.stan}"
                previous = (index, window)
                detail = {
                    "cause": "roll_change" if window >= 0 else "paper_jam",
                    "gap_id": gap_id,
                }
                self._add(
                    day,
                    Kind.PAPER_GAP,
                    item.stan,
                    item.rrn,
                    amount,
                    item.time,
                    detail,
                    card,
                    txn_index=day.position(item.stan),
                )

    def _paper_accounting(self, day: _Day, used_blocks: set[int]) -> None:
        paper, source = day.paper, day.paper_source
        assert paper is not None
        assert source is not None
        skipped: list[SkippedLine] = []
        unused = [block for block in paper.blocks if block.position not in used_blocks]
        for block in unused:
            raw = day.text(source, block.start, block.end)
            if raw:
                for number, text in block_lines(raw, block.line):
                    skipped.append(
                        SkippedLine(
                            paper.source,
                            number,
                            "paper block matches no transaction of this terminal and day",
                            printable(text),
                        )
                    )
        paper.skipped = skipped
        self.skipped.extend(skipped)
        self.accounts.append(
            SourceAccount(
                paper.source,
                "paper",
                paper.terminal_id,
                paper.business_date,
                paper.size,
                paper.lines_total,
                len(skipped),
                len(used_blocks),
                {"blocks": len(paper.blocks), "structural_lines": paper.structural_lines},
            )
        )

    # -- stage 4 -------------------------------------------------------------------------

    def settle(self) -> None:
        by_terminal: dict[str, list[_Day]] = defaultdict(list)
        for day in self.days.values():
            by_terminal[day.terminal_id].append(day)
        for terminal_id, days in sorted(by_terminal.items()):
            snapshots = [
                snapshot
                for day in days
                if day.counters is not None
                for snapshot in day.counters.snapshots
            ]
            if not snapshots:
                continue
            ej_by_day = {day.business_date: day.ej for day in days if day.ej is not None}
            rows, findings = settle_terminal(terminal_id, snapshots, ej_by_day)
            self.settlement.extend(rows)
            for finding in findings:
                day = self.day(terminal_id, finding["business_date"])
                self._add(
                    day,
                    Kind(finding["kind"]),
                    None,
                    None,
                    finding["amount_minor"],
                    None,
                    finding["detail"],
                    "",
                )

    # -- stage 5 -------------------------------------------------------------------------

    def evidence(self) -> None:
        for item in self.discrepancies:
            day = self.days[(item.terminal_id, item.business_date)]
            txn_index, exact = self._evidence_refs.get(id(item), (None, True))
            evidence = item.evidence
            if item.kind in CASSETTE_KINDS:
                evidence.counters = _cassette_counters(day, item.detail)
                evidence.ej_excerpt, evidence.ej_location = _counters_excerpt(day)
            else:
                evidence.ej_excerpt, evidence.ej_location = self._ej_excerpt(day, txn_index, exact)
                evidence.paper_excerpt, evidence.paper_location = _paper_excerpt(
                    day, item.stan or ""
                )
                evidence.host_messages = list(
                    self._host_messages(item.terminal_id, item.business_date, item.stan or "")
                )
                if item.kind in _CASH_KINDS:
                    evidence.counters = _counters_around(day, item.local_time or "")

    def _ej_excerpt(self, day: _Day, txn_index: int | None, exact: bool) -> tuple[str, str]:
        if day.ej is None or day.ej_source is None or txn_index is None:
            return "", ""
        transactions = day.ej.transactions
        if not transactions:
            return "", ""
        neighbours = self.options.excerpt_neighbours
        if exact:
            first = max(txn_index - neighbours, 0)
            last = min(txn_index + neighbours, len(transactions) - 1)
        else:  # a hole just before txn_index: show the blocks around it
            first = max(txn_index - neighbours, 0)
            last = min(txn_index + neighbours - 1, len(transactions) - 1)
            last = max(last, first)
        start, end = transactions[first].start, transactions[last].end
        text = day.text(day.ej_source, start, end).decode("ascii", "backslashreplace")
        location = f"{day.ej.source}:{transactions[first].line}-{transactions[last].last_line}"
        return text, location

    # -- all -----------------------------------------------------------------------------

    def run(self, host: Callable[[], pl.DataFrame] | None = None) -> BatchResult:
        """All stages. ``host``, when given, supplies the host messages once the
        files are parsed (the parent may still be reading the switch's files)."""
        timings: dict[str, float] = {}  # CPU seconds of this process per stage
        mark = time.process_time()
        self.load()
        now = time.process_time()
        timings["parse"] = now - mark
        if host is not None:
            self.host = host()
            mark = time.process_time()
        else:
            mark = now
        for name, stage in (
            ("match", self.match),
            ("paper", self.paper),
            ("settle", self.settle),
            ("evidence", self.evidence),
        ):
            stage()
            now = time.process_time()
            timings[name] = now - mark
            mark = now
        for day in self.days.values():
            day.buffers.clear()
            day.raw.clear()
        ej_days = [day for day in self.days.values() if day.ej is not None]
        return BatchResult(
            self.discrepancies,
            self.settlement,
            self.accounts,
            self.skipped,
            self.observations,
            list(self.days),
            [(day.terminal_id, day.business_date) for day in ej_days],
            sum(len(day.ej.transactions) for day in ej_days if day.ej is not None),
            sum(day.ej.size for day in ej_days if day.ej is not None),
            len(self.sources),
            self.unreadable,
            timings,
        )


def _host_by_day(hosts: pl.DataFrame) -> dict[tuple[str, str], HostFirsts]:
    """Per terminal-day, STAN -> (RRN, time, amount, PAN) (:func:`classify.receipt_hosts`)."""
    days: dict[tuple[str, str], HostFirsts] = defaultdict(dict)
    for terminal, business_date, stan, rrn, at, amount, pan in hosts.iter_rows():
        days[(terminal, business_date)][stan] = (rrn, at, amount, pan)
    return days


def run_batch(sources: list[Source], host: pl.DataFrame, options: Options) -> BatchResult:
    """Reconcile one batch (the unit of work of a worker process)."""
    return TerminalBatch(sources, host, options).run()


def run_batch_handed(
    sources: list[Source], handoff: HostHandoff, options: Options
) -> BatchResult | None:
    """Reconcile one batch whose host messages the parent hands over while the
    batch's own files are being parsed, and hand its result back the same way
    (:class:`~reconciliation.handoff.HostHandoff`): ``None``, or the result
    itself where it could not be left there. This runs in a worker process of
    the run (see ``engine._start_worker``)."""
    result = TerminalBatch(sources, handoff.empty(), options).run(handoff.wait)
    return None if handoff.hand_back(result) else result


def _index_of(txn: EjTransaction | None, day: _Day) -> int | None:
    if txn is None or day.ej is None:
        return None
    return day.position(txn.stan)


# findings whose counters around the transaction tell something (a missing receipt does not)
_CASH_KINDS = frozenset(kind.value for kind in Kind if kind is not Kind.PAPER_GAP)


def _hole_position(stans: list[str], stan: str) -> int | None:
    """Index of the first block after where ``stan`` would have been, of a day's
    blocks' STANs (:meth:`_Day.stans`: "" never comes after)."""
    return next(
        (index for index, other in enumerate(stans) if other > stan),
        len(stans) - 1 if stans else None,
    )


def _paper_out_windows(parse: EjParse | None) -> list[tuple[str, str]]:
    if parse is None:
        return []
    windows: list[tuple[str, str]] = []
    opened: str | None = None
    for event in parse.events:
        if event.code == "paper_out" and opened is None:
            opened = event.time
        elif event.code == "paper_in" and opened is not None:
            windows.append((opened, event.time))
            opened = None
    if opened is not None:
        windows.append((opened, "23:59:59"))
    return windows


def _window_of(windows: list[tuple[str, str]], at: str) -> int:
    for index, (start, end) in enumerate(windows):
        if start <= at <= end:
            return index
    return -1


def _paper_excerpt(day: _Day, stan: str) -> tuple[str, str]:
    paper = day.paper
    if paper is None or not stan:
        return "", ""
    block_index = day.paper_found.get(stan)
    if block_index is not None:
        block = paper.blocks[block_index]
        return _paper_text(day, block), f"{paper.source}:{block.line}-{block.last_line}"
    # missing from the paper: show the receipts printed before and after
    position = day.expected_position(stan)
    if position is None:
        return "", ""
    expected, found = day.expected, day.paper_found
    before = next(
        (
            found[expected[index].stan]
            for index in range(position - 1, -1, -1)
            if expected[index].stan in found
        ),
        None,
    )
    after = next(
        (
            found[expected[index].stan]
            for index in range(position + 1, len(expected))
            if expected[index].stan in found
        ),
        None,
    )
    parts: list[str] = []
    lines: list[str] = []
    if before is not None:
        block = paper.blocks[before]
        parts.append(_paper_text(day, block))
        lines.append(str(block.line))
    parts.append(f"[receipt of STAN {stan} not on the paper]")
    if after is not None:
        block = paper.blocks[after]
        parts.append(_paper_text(day, block))
        lines.append(str(block.last_line))
    return "\n\n".join(parts), f"{paper.source}:{'-'.join(lines)}"


def _paper_text(day: _Day, block: PaperBlock) -> str:
    if day.paper_source is None:
        return ""
    return block_text(day.text(day.paper_source, block.start, block.end))


def _snapshot_json(day: _Day, snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as evidence: made once per snapshot and shared by the findings
    that show it (read-only), so it also crosses to the parent process once."""
    found = day.snapshot_views.get(id(snapshot))
    if found is None:
        found = day.snapshot_views[id(snapshot)] = _snapshot_view(snapshot)
    return found


def _snapshot_view(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "timestamp": snapshot.timestamp,
        "reason": snapshot.reason,
        "phase": snapshot.phase,
        "cash_units": [
            {
                "number": unit.number,
                "denomination": unit.denomination,
                "initial": unit.initial,
                "count": unit.notes,
                "dispensed": unit.dispensed,
                "rejected": unit.rejected,
                "retracted": unit.retracted,
                "physical_count": unit.physical,
            }
            for unit in snapshot.units
        ],
    }


def _counters_around(day: _Day, at: str) -> dict[str, Any]:
    if day.counters is None or not at:
        return {}
    before: Snapshot | None = None
    after: Snapshot | None = None
    for snapshot in sorted(day.counters.snapshots, key=lambda snap: snap.timestamp):
        clock = snapshot.timestamp[11:]
        if clock <= at:
            before = snapshot
        elif after is None:
            after = snapshot
    return {
        "before": _snapshot_json(day, before) if before else None,
        "after": _snapshot_json(day, after) if after else None,
    }


def _cassette_counters(day: _Day, detail: dict[str, Any]) -> dict[str, Any]:
    if day.counters is None:
        return {}
    wanted = detail.get("replenishment_time", "")
    for snapshot in day.counters.snapshots:
        if snapshot.phase == "before_exchange" and snapshot.timestamp[11:] == wanted:
            return {"before_exchange": _snapshot_json(day, snapshot)}
    return {}


def _counters_excerpt(day: _Day) -> tuple[str, str]:
    if day.ej is None or day.ej_source is None:
        return "", ""
    tables = [event for event in day.ej.events if event.code == "counters_before"]
    if not tables:
        return "", ""
    event = tables[0]
    text = day.text(day.ej_source, event.start, event.end).decode("ascii", "backslashreplace")
    return text, f"{day.ej.source}:{event.line}"
