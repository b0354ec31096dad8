"""How the reconciliation pages word and lay out what a run found (pure functions).

Labels for kinds and suggested actions, amounts typed in major units, the
dispute deadline counted in days, and the evidence cut into what the detail
page shows side by side: the EJ and paper excerpts line by line with the
discrepancy's own lines marked, the host messages as table rows, the counters
snapshots as one table each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from atm_service.errors import InvalidInput

ACTION_LABELS = {
    "refund": "Refund the customer",
    "refund_difference": "Refund the difference to the customer",
    "verify_retract_bin_and_refund": "Check the retract bin, then refund the customer",
    "chargeback_defence": "Keep the evidence to answer a dispute",
    "raise_with_switch": "Raise with the switch: cash out, no host record",
    "reverse_duplicate_posting": "Reverse the duplicate posting",
    "rely_on_host_and_paper": "Rely on the host and the paper journal",
    "investigate_cassette": "Investigate the cassette count",
    "none": "Nothing to do",
}
OWED_LABELS = {"customer": "customer", "bank": "bank", "none": "nobody"}
PHASE_LABELS = {
    "": "Waiting to start",
    "host": "Reading the host files",
    "terminals": "Reconciling the terminals",
    "report": "Writing the reports",
}
_AMOUNT = re.compile(r"^\s*(\d{1,12})(?:[.,](\d{1,2}))?\s*$")


def kind_label(kind: str) -> str:
    """``no_dispense_no_reversal`` -> ``No dispense, no reversal``."""
    words = kind.replace("_no_reversal", ", no_reversal").replace("_reversed", ", reversed")
    text = words.replace("_", " ").replace("ej ", "EJ ")
    return text[:1].upper() + text[1:]


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, action.replace("_", " "))


def parse_amount(text: str, field: str) -> int | None:
    """A typed amount in major units (``12``, ``12.5``, ``12.50``) as minor units."""
    if not text.strip():
        return None
    match = _AMOUNT.match(text)
    if match is None:
        raise InvalidInput(f"{text!r} is not an amount like 120 or 120.50.", field=field)
    whole, cents = match.group(1), (match.group(2) or "0").ljust(2, "0")
    return int(whole) * 100 + int(cents)


def parse_day(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date written YYYY-MM-DD.", field=field) from None


def major(minor: int | None) -> str:
    """Minor units as typed back into a form field (``1250`` -> ``12.50``)."""
    if minor is None:
        return ""
    whole, cents = divmod(minor, 100)
    return f"{whole}.{cents:02d}"


def deadline_words(deadline: date | None, today: date) -> str:
    if deadline is None:
        return ""
    days = (deadline - today).days
    if days > 1:
        return f"in {days} days"
    if days == 1:
        return "tomorrow"
    if days == 0:
        return "today"
    return f"passed {-days} day{'s' if days != -1 else ''} ago"


@dataclass(frozen=True)
class Line:
    text: str
    marked: bool


def marked_lines(excerpt: str, needles: list[str]) -> list[Line]:
    """The excerpt's lines, those naming the discrepancy (its STAN, RRN, serial) marked."""
    wanted = [needle for needle in needles if needle]
    return [Line(line, any(needle in line for needle in wanted)) for line in excerpt.split("\n")]


def needles(item: Any) -> list[str]:
    """What identifies the discrepancy's lines in an excerpt."""
    found: list[str] = []
    if item.stan:
        found.append(item.stan)
        serial = str(int(item.stan) % 10000).zfill(4) if item.stan.isdigit() else ""
        if serial:
            found.extend([f"SEQ NO    : {serial}", f"Host Seq.No.: {serial}", f"*{serial}*"])
    if item.rrn:
        found.append(item.rrn)
    if item.local_time:
        found.append(item.local_time)
    return found


HOST_COLUMNS = (
    ("mti", "MTI"),
    ("sent", "Sent (DE7)"),
    ("time", "Time"),
    ("stan", "STAN"),
    ("rrn", "RRN"),
    ("processing_code", "Proc."),
    ("amount_minor", "Amount"),
    ("response_code", "Resp."),
    ("auth_code", "Auth"),
    ("original_stan", "Orig. STAN"),
    ("actual_minor", "Dispensed (DE95)"),
)
COUNTER_COLUMNS = (
    ("number", "Unit"),
    ("denomination", "Denom."),
    ("initial", "Loaded"),
    ("dispensed", "Dispensed"),
    ("rejected", "Rejected"),
    ("retracted", "Retracted"),
    ("count", "Counters say"),
    ("physical_count", "Counted"),
)


@dataclass(frozen=True)
class CounterTable:
    title: str
    rows: list[list[str]]


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _major_or_blank(value: Any) -> str:
    return major(value) if isinstance(value, int) else _cell(value)


def host_rows(messages: list[dict[str, Any]]) -> list[list[str]]:
    """One row per message; amounts (minor units in the evidence) in major units."""
    return [
        [
            _major_or_blank(message.get(name))
            if name.endswith("_minor")
            else _cell(message.get(name))
            for name, _ in HOST_COLUMNS
        ]
        for message in messages
    ]


def counter_tables(counters: dict[str, Any]) -> list[CounterTable]:
    tables: list[CounterTable] = []
    for role, snapshot in counters.items():
        if not isinstance(snapshot, dict):
            continue
        units = snapshot.get("cash_units") or []
        title = role.replace("_", " ")
        when = snapshot.get("timestamp", "")
        reason = " ".join(
            part for part in (snapshot.get("reason", ""), snapshot.get("phase", "")) if part
        ).replace("_", " ")
        tables.append(
            CounterTable(
                title=f"{title}: {when} ({reason})" if when else title,
                rows=[
                    [_cell(unit.get(name)) for name, _ in COUNTER_COLUMNS]
                    for unit in units
                    if isinstance(unit, dict)
                ],
            )
        )
    return tables


def detail_facts(detail: dict[str, Any], currency: str) -> list[tuple[str, str]]:
    """The finding's detail fields other than its text, as (label, value); amounts in minor
    units (``*_minor``) as money."""
    shown = []
    for name, value in detail.items():
        if name in ("text", "local_time") or value is None or value == "":
            continue
        if name.endswith("_minor") and isinstance(value, int):
            shown.append((name[: -len("_minor")].replace("_", " "), f"{major(value)} {currency}"))
            continue
        if isinstance(value, list):
            value = ", ".join(str(part) for part in value)
        shown.append((name.replace("_", " "), str(value)))
    return shown
