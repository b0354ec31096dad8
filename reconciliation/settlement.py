"""Cash settlement per replenishment cycle and cassette, and the cassette kinds.

A cycle runs from a load (``after_exchange`` snapshot) to the next removal
(``before_exchange``, where the engineer's ``physical_count`` is). For each
cassette the row gives what was loaded, what the counters say was dispensed,
rejected and retracted, what the EJ shows over the same span, and the
physical count, so an overage or shortage per denomination is explained or
flagged. When the data starts inside a cycle, the EJ is compared with the
counters' increase since the first snapshot in the data.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from reconciliation.kinds import Kind
from reconciliation.model import CashUnit, EjParse, EjTransaction, Snapshot
from reconciliation.result import SettlementRow

try:
    from reconciliation._speedups import ej_note_sums as _compiled_note_sums
except ImportError:  # built without a C compiler: the Python loop of _day_sums
    _compiled_note_sums = None  # type: ignore[assignment]

Notes4 = list[int]


def _units(snapshot: Snapshot) -> dict[int, CashUnit]:
    return {unit.number: unit for unit in snapshot.units}


# what _day_sums reads of each EJ record, in the compiled function's order
_SUM_FIELDS = tuple(
    EjTransaction._fields.index(name)
    for name in ("time", "truncated", "dispensed", "rejected", "retracted")
)


def _day_sums(
    transactions: list[EjTransaction], low: str, high: str
) -> tuple[Notes4, Notes4, Notes4]:
    """Notes dispensed, rejected and retracted per cassette by the blocks of one day
    with a time, not truncated, and ``low < "T" + time <= high``; compiled where the
    package was built with ``reconciliation/csrc/``."""
    if _compiled_note_sums is not None:
        found = _compiled_note_sums(transactions, low, high, _SUM_FIELDS)
        if found is not None:
            return found
    inside = [
        txn
        for txn in transactions
        if txn.time and not txn.truncated and low < "T" + txn.time <= high
    ]
    sums: list[Notes4] = []
    for notes in (
        [txn.dispensed for txn in inside],
        [txn.rejected for txn in inside],
        [txn.retracted for txn in inside],
    ):
        total = [0] * 4
        for index, column in enumerate(zip(*notes, strict=True)):
            total[index] += sum(column)
        sums.append(total)
    return sums[0], sums[1], sums[2]


def _ej_sums(
    parses: dict[str, EjParse], start: str, end: str
) -> tuple[Notes4, Notes4, Notes4, bool]:
    """Notes dispensed, rejected and retracted per cassette in ``(start, end]``."""
    dispensed, rejected, retracted = [0] * 4, [0] * 4, [0] * 4
    first_day, last_day = start[:10], end[:10]
    covered = True
    days = sorted(parses)
    if first_day not in parses or last_day not in parses:
        covered = False
    wanted = [d for d in days if first_day <= d <= last_day]
    for day in wanted:
        # within the span's first and last day, compare the clock after "T" alone
        # (the date parts are equal); other days lie wholly inside the span
        low = start[10:] if day == first_day else ""
        high = end[10:] if day == last_day else "\x7f"
        for total, day_total in zip(
            (dispensed, rejected, retracted),
            _day_sums(parses[day].transactions, low, high),
            strict=True,
        ):
            for index, notes in enumerate(day_total):
                total[index] += notes
    if first_day < last_day:
        from datetime import date, timedelta

        current = date.fromisoformat(first_day)
        while current.isoformat() <= last_day:
            if current.isoformat() not in parses:
                covered = False
            current += timedelta(days=1)
    return dispensed, rejected, retracted, covered


def settle_terminal(
    terminal_id: str,
    snapshots: list[Snapshot],
    ej_by_day: dict[str, EjParse],
) -> tuple[list[SettlementRow], list[dict[str, Any]]]:
    """Settlement rows and cassette findings for one terminal.

    Findings are dicts with the fields of a cassette discrepancy (kind, date,
    amount and the ``detail`` of ``shared/formats/README.md``).
    """
    ordered = sorted(
        {(snap.timestamp, snap.reason, snap.phase): snap for snap in snapshots}.values(),
        key=lambda snap: (snap.timestamp, snap.phase != "before_exchange"),
    )
    rows: list[SettlementRow] = []
    findings: list[dict[str, Any]] = []
    cycle_start = ""
    baseline: Snapshot | None = None
    last: Snapshot | None = None

    def close(end_snapshot: Snapshot, open_cycle: bool) -> None:
        assert baseline is not None
        start_units, end_units = _units(baseline), _units(end_snapshot)
        span_start = baseline.timestamp
        dispensed, rejected, retracted, covered = _ej_sums(
            ej_by_day, span_start, end_snapshot.timestamp
        )
        for number in sorted(end_units):
            unit = end_units[number]
            base = start_units.get(number)
            if number <= 4:
                delta = unit.dispensed - (base.dispensed if base else 0)
                ej_disp = dispensed[number - 1]
                physical = unit.physical if not open_cycle else None
                difference = None if physical is None else physical - unit.notes
                rows.append(
                    SettlementRow(
                        terminal_id,
                        cycle_start,
                        "" if open_cycle else end_snapshot.timestamp,
                        number,
                        unit.denomination,
                        unit.initial,
                        unit.dispensed,
                        unit.rejected,
                        unit.retracted,
                        unit.notes,
                        ej_disp,
                        rejected[number - 1],
                        retracted[number - 1],
                        covered and base is not None,
                        delta - ej_disp if covered and base is not None else 0,
                        physical,
                        difference,
                        None if difference is None else difference * unit.denomination * 100,
                    )
                )
                if difference:
                    findings.append(
                        {
                            "kind": (
                                Kind.CASSETTE_OVERAGE if difference > 0 else Kind.CASSETTE_SHORTAGE
                            ).value,
                            "business_date": end_snapshot.timestamp[:10],
                            "amount_minor": abs(difference) * unit.denomination * 100,
                            "detail": {
                                "cassette": number,
                                "denomination": unit.denomination,
                                "notes": abs(difference),
                                "logical_count": unit.notes,
                                "physical_count": physical,
                                "replenishment_time": end_snapshot.timestamp[11:],
                            },
                            "unit": unit,
                        }
                    )
            else:
                physical = unit.physical if not open_cycle else None
                difference = None if physical is None else physical - unit.notes
                rows.append(
                    SettlementRow(
                        terminal_id,
                        cycle_start,
                        "" if open_cycle else end_snapshot.timestamp,
                        number,
                        0,
                        0,
                        0,
                        sum(rejected) if number == 5 else 0,
                        sum(retracted) if number == 6 else 0,
                        unit.notes,
                        0,
                        sum(rejected) if number == 5 else 0,
                        sum(retracted) if number == 6 else 0,
                        covered and base is not None,
                        0,
                        physical,
                        difference,
                        None,
                    )
                )

    for snapshot in ordered:
        if baseline is None:
            baseline = snapshot
            cycle_start = snapshot.timestamp if snapshot.phase == "after_exchange" else ""
            last = snapshot
            continue
        if snapshot.phase == "before_exchange":
            close(snapshot, open_cycle=False)
            baseline = None
            last = snapshot
            continue
        last = snapshot
    if baseline is not None and last is not None and last is not baseline:
        close(last, open_cycle=True)
    return rows, findings


def by_denomination(rows: list[SettlementRow]) -> dict[int, dict[str, int]]:
    """Overage/shortage per denomination over closed cycles (notes and minor units)."""
    totals: dict[int, dict[str, int]] = defaultdict(lambda: {"notes": 0, "amount_minor": 0})
    for row in rows:
        if row.cassette <= 4 and row.difference:
            totals[row.denomination]["notes"] += row.difference
            totals[row.denomination]["amount_minor"] += row.difference_minor or 0
    return dict(sorted(totals.items()))
