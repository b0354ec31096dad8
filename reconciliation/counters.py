"""Parser for the XFS cash-unit counters snapshots (``counters/<TID>_<YYYYMMDD>.json``).

One JSON object per file with its snapshots; each cash unit carries the CEN/XFS
3.x ``WFSCDMCASHUNIT`` field names and, in a ``before_exchange`` snapshot, the
engineer's ``physical_count``. A snapshot or cash unit that lacks a field is
reported as skipped with the field's name; the others are used. Accounting for
this format is per snapshot, not per line.
"""

from __future__ import annotations

import json
from typing import Any

from reconciliation.model import CashUnit, CountersParse, SkippedLine, Snapshot
from reconciliation.textutil import count_lines

_FIELDS = (
    ("usNumber", "number"),
    ("usType", "unit_type"),
    ("cUnitID", "unit_id"),
    ("cCurrencyID", "currency"),
    ("ulValues", "denomination"),
    ("ulInitialCount", "initial"),
    ("ulCount", "notes"),
    ("ulRejectCount", "rejected"),
    ("ulMinimum", "minimum"),
    ("ulMaximum", "maximum"),
    ("usStatus", "status"),
    ("ulDispensedCount", "dispensed"),
    ("ulPresentedCount", "presented"),
    ("ulRetractedCount", "retracted"),
)
_TEXT_FIELDS = frozenset(("cUnitID", "cCurrencyID"))
REASONS = frozenset(("start_of_day", "replenishment", "end_of_day"))
PHASES = frozenset(("before_exchange", "after_exchange"))


_NUMERIC = tuple(name for name, _ in _FIELDS if name not in _TEXT_FIELDS)


def _unit(raw: Any) -> CashUnit | str:
    """A cash unit, or the reason it cannot be used."""
    if not isinstance(raw, dict):
        return "cash unit is not an object"
    try:
        values = [raw[name] for name in _NUMERIC]
        unit_id, currency = raw["cUnitID"], raw["cCurrencyID"]
    except KeyError as exc:
        return f"cash unit field {exc.args[0]} missing"
    for name, value in zip(_NUMERIC, values, strict=True):
        if type(value) is not int or value < 0:
            return f"cash unit field {name} is not a non-negative integer"
    if type(unit_id) is not str or type(currency) is not str:
        return "cash unit field cUnitID or cCurrencyID is not text"
    physical = raw.get("physical_count")
    if physical is not None and (type(physical) is not int or physical < 0):
        return "physical_count is not a non-negative integer"
    number, unit_type, denomination, initial, notes, rejected = values[:6]
    minimum, maximum, status, dispensed, presented, retracted = values[6:]
    return CashUnit(
        number,
        unit_type,
        unit_id,
        currency,
        denomination,
        initial,
        notes,
        rejected,
        minimum,
        maximum,
        status,
        dispensed,
        presented,
        retracted,
        physical,
    )


def parse_counters(
    buffer: bytes, *, source: str, terminal_id: str, business_date: str
) -> CountersParse:
    """Parse one counters file. Never raises on content."""
    lines = count_lines(buffer)
    result = CountersParse(source, terminal_id, business_date, [], [], lines, len(buffer))
    try:
        document = json.loads(buffer.decode("utf-8"))
    except UnicodeDecodeError as exc:
        result.skipped.append(SkippedLine(source, 1, f"not UTF-8 text: {exc.reason}", ""))
        return result
    except json.JSONDecodeError as exc:
        result.skipped.append(
            SkippedLine(source, exc.lineno, f"invalid JSON: {exc.msg}; file not used", "")
        )
        return result
    if not isinstance(document, dict) or not isinstance(document.get("snapshots"), list):
        result.skipped.append(SkippedLine(source, 1, "no 'snapshots' list; file not used", ""))
        return result
    for key, expected in (("terminal_id", terminal_id), ("business_date", business_date)):
        if document.get(key) not in (None, expected):
            result.skipped.append(
                SkippedLine(
                    source,
                    1,
                    f"{key} {document.get(key)!r} contradicts the file name ({expected}); "
                    "file not used",
                    "",
                )
            )
            return result
    for index, raw in enumerate(document["snapshots"]):
        where = f"snapshot {index + 1}"
        if not isinstance(raw, dict):
            result.skipped.append(SkippedLine(source, 1, f"{where} is not an object", ""))
            continue
        timestamp, reason = raw.get("timestamp"), raw.get("reason")
        phase = raw.get("phase", "")
        problem = None
        if not isinstance(timestamp, str) or len(timestamp) != 19:
            problem = "timestamp missing or not YYYY-MM-DDTHH:MM:SS"
        elif reason not in REASONS:
            problem = f"unknown reason {reason!r}"
        elif reason == "replenishment" and phase not in PHASES:
            problem = f"replenishment without a valid phase ({phase!r})"
        elif not isinstance(raw.get("cash_units"), list):
            problem = "cash_units missing"
        if problem is not None:
            result.skipped.append(SkippedLine(source, 1, f"{where}: {problem}", ""))
            continue
        units: list[CashUnit] = []
        for unit_index, raw_unit in enumerate(raw["cash_units"]):
            unit = _unit(raw_unit)
            if isinstance(unit, str):
                result.skipped.append(
                    SkippedLine(source, 1, f"{where}, cash unit {unit_index + 1}: {unit}", "")
                )
            else:
                units.append(unit)
        result.snapshots.append(
            Snapshot(str(timestamp), str(reason), str(phase or ""), tuple(units))
        )
    return result
