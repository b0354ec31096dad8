"""Ground-truth records (``truth.jsonl``): one per discrepancy or data gap the simulators injected.

Each builder returns the dict in the key order of ``shared/formats``, with the
``detail`` fields of its kind, so reconciliation can be scored against it:
``match_key`` says when a finding is a truth entry, ``read`` reads either file.
The sample's tests and the reconciliation benchmark both score this way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

TRANSACTION_KINDS = (
    "no_dispense_no_reversal",
    "no_dispense_reversed",
    "partial_dispense_no_reversal",
    "partial_dispense_reversed",
    "retract_no_reversal",
    "retract_reversed",
    "host_timeout_no_reversal",
    "host_timeout_reversed",
    "dispensed_not_in_host",
    "host_duplicate",
    "ej_gap",
    "paper_gap",
)
CASSETTE_KINDS = ("cassette_shortage", "cassette_overage")
ALL_KINDS = TRANSACTION_KINDS + CASSETTE_KINDS

_TEXT = {
    "no_dispense_no_reversal": (
        "host approved and debited, ATM dispensed nothing, no reversal: refund the customer"
    ),
    "no_dispense_reversed": (
        "host approved, ATM dispensed nothing, 0420 reversal present: no customer loss"
    ),
    "partial_dispense_no_reversal": (
        "ATM dispensed less than approved, no reversal: refund the difference"
    ),
    "partial_dispense_reversed": (
        "ATM dispensed less than approved, partial 0420 (DE95 = dispensed amount) present"
    ),
    "retract_no_reversal": (
        "notes presented then retracted, no reversal: refund after retract-bin count"
    ),
    "retract_reversed": "notes presented then retracted, 0420 reversal present",
    "host_timeout_no_reversal": (
        "host approved, ATM got no reply and dispensed nothing, no reversal: refund the customer"
    ),
    "host_timeout_reversed": (
        "host approved, ATM got no reply and dispensed nothing, 0420 (68) present"
    ),
    "dispensed_not_in_host": (
        "EJ shows approved withdrawal with cash taken, switch has no record: bank loss"
    ),
    "host_duplicate": (
        "same 0200/0210 logged twice (same STAN and RRN): second posting to be reversed"
    ),
    "ej_gap": "transaction lines missing from the EJ (power interruption or lost journal data)",
}
_PAPER_CAUSE = {"paper_jam": "paper jam", "roll_change": "roll change"}


def _record(
    tid: str,
    day: str,
    kind: str,
    stan: str | None,
    rrn: str | None,
    amount: int,
    detail: Mapping[str, object],
) -> dict[str, object]:
    return {
        "terminal_id": tid,
        "business_date": day,
        "kind": kind,
        "stan": stan,
        "rrn": rrn,
        "amount_minor": amount,
        "detail": dict(detail),
    }


def no_dispense(
    tid: str, day: str, stan: str, rrn: str, time: str, amount: int, cause: str, reversed_: bool
) -> dict[str, object]:
    kind = "no_dispense_reversed" if reversed_ else "no_dispense_no_reversal"
    detail = {"local_time": time, "cause": cause, "dispensed_minor": 0, "text": _TEXT[kind]}
    return _record(tid, day, kind, stan, rrn, amount, detail)


def partial_dispense(
    tid: str,
    day: str,
    stan: str,
    rrn: str,
    time: str,
    requested: int,
    dispensed: int,
    notes: Sequence[int],
    reversed_: bool,
) -> dict[str, object]:
    kind = "partial_dispense_reversed" if reversed_ else "partial_dispense_no_reversal"
    detail = {
        "local_time": time,
        "requested_minor": requested,
        "dispensed_minor": dispensed,
        "notes_dispensed": list(notes),
        "text": _TEXT[kind],
    }
    return _record(tid, day, kind, stan, rrn, requested - dispensed, detail)


def retract(
    tid: str,
    day: str,
    stan: str,
    rrn: str,
    time: str,
    amount: int,
    notes: Sequence[int],
    reversed_: bool,
) -> dict[str, object]:
    kind = "retract_reversed" if reversed_ else "retract_no_reversal"
    detail = {"local_time": time, "notes_retracted": list(notes), "text": _TEXT[kind]}
    return _record(tid, day, kind, stan, rrn, amount, detail)


def host_timeout(
    tid: str, day: str, stan: str, rrn: str, time: str, amount: int, reversed_: bool
) -> dict[str, object]:
    kind = "host_timeout_reversed" if reversed_ else "host_timeout_no_reversal"
    return _record(tid, day, kind, stan, rrn, amount, {"local_time": time, "text": _TEXT[kind]})


def dispensed_not_in_host(
    tid: str, day: str, stan: str, rrn: str, time: str, amount: int
) -> dict[str, object]:
    kind = "dispensed_not_in_host"
    return _record(tid, day, kind, stan, rrn, amount, {"local_time": time, "text": _TEXT[kind]})


def host_duplicate(
    tid: str, day: str, stan: str, rrn: str, time: str, amount: int, copies: int = 2
) -> dict[str, object]:
    kind = "host_duplicate"
    detail = {"local_time": time, "copies": copies, "text": _TEXT[kind]}
    return _record(tid, day, kind, stan, rrn, amount, detail)


def ej_gap(
    tid: str, day: str, stan: str, rrn: str, time: str, amount: int, variant: str
) -> dict[str, object]:
    detail = {"local_time": time, "variant": variant, "text": _TEXT["ej_gap"]}
    return _record(tid, day, "ej_gap", stan, rrn, amount, detail)


def paper_gap(
    tid: str, day: str, stan: str, rrn: str, time: str, amount: int, cause: str, gap_id: str
) -> dict[str, object]:
    detail = {
        "cause": cause,
        "gap_id": gap_id,
        "local_time": time,
        "text": (
            f"receipt block missing from the paper journal ({_PAPER_CAUSE[cause]}): "
            "data gap, not a customer issue"
        ),
    }
    return _record(tid, day, "paper_gap", stan, rrn, amount, detail)


def cassette_count(
    tid: str,
    day: str,
    cassette: int,
    denomination: int,
    logical: int,
    physical: int,
    time: str,
) -> dict[str, object]:
    kind = "cassette_shortage" if physical < logical else "cassette_overage"
    notes = abs(physical - logical)
    detail = {
        "cassette": cassette,
        "denomination": denomination,
        "notes": notes,
        "logical_count": logical,
        "physical_count": physical,
        "replenishment_time": time,
        "text": (
            f"cassette {cassette} ({denomination} USD): engineer counted {physical} notes, "
            f"counters say {logical}"
        ),
    }
    return _record(tid, day, kind, None, None, notes * denomination * 100, detail)


def time_of(record: dict[str, object]) -> str:
    """The time a record sorts by: the transaction's DE12, or the replenishment time."""
    detail = record["detail"]
    assert isinstance(detail, dict)
    return str(detail.get("local_time") or detail.get("replenishment_time") or "")


def dumps(records: Iterable[dict[str, object]]) -> str:
    """JSON lines, one record a line."""
    return "".join(json.dumps(record) + "\n" for record in records)


def match_key(entry: Mapping[str, Any]) -> tuple[object, ...]:
    """What a finding must share with a truth entry to be that entry.

    A transaction finding: terminal, business day, kind, STAN and amount; a
    cassette finding: terminal, day, kind, cassette, denomination, notes and
    amount. ``entry`` is a line of ``truth.jsonl`` or a finding as reconciliation
    writes it (a line of ``discrepancies.jsonl``, a discrepancy's ``to_json()``).
    """
    if entry["kind"].startswith("cassette_"):
        detail = entry["detail"]
        return (
            entry["terminal_id"],
            entry["business_date"],
            entry["kind"],
            detail["cassette"],
            detail["denomination"],
            detail["notes"],
            entry["amount_minor"],
        )
    return (
        entry["terminal_id"],
        entry["business_date"],
        entry["kind"],
        entry["stan"],
        entry["amount_minor"],
    )


def read(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file: ``truth.jsonl`` or ``discrepancies.jsonl``."""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
