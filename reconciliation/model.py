"""The records the parsers produce and the matcher consumes.

Parsed records are ``NamedTuple``s: cheap to build by the million on the hot
path, immutable, and picklable between worker processes. Amounts are integers
in minor units (cents); note counts are per cassette/type 1-4; times are the
terminal's local ``HH:MM:SS`` text plus seconds since midnight.

Every parser returns, besides its records, the list of lines it skipped with a
reason and the number of lines it read, so that ``lines_used + len(skipped) ==
lines_total`` holds for every file: nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

Notes = tuple[int, int, int, int]
NO_NOTES: Notes = (0, 0, 0, 0)


class SkippedLine(NamedTuple):
    """One input line that was not used, with the reason."""

    source: str
    line: int
    reason: str
    text: str


class EjTransaction(NamedTuple):
    """One customer transaction block of an electronic journal.

    ``outcome`` for an approved withdrawal: ``taken``, ``retracted``, ``short``
    (short dispense), ``none`` (dispense error, nothing dispensed) or ``power``
    (power interruption during dispense); empty otherwise. ``truncated`` blocks
    were cut by a power failure and carry only what their first lines said.
    """

    stan: str
    rrn: str
    serial: str
    time: str
    card: str
    txn_type: str  # "withdrawal", "balance" or "" when unknown (truncated)
    resp: str  # "00", "05", "51", "55", "TO" (no host reply) or "" when unknown
    amount_minor: int  # AMT AUTH / AMT REQ / AMOUNT; 0 for a balance inquiry
    outcome: str
    dispensed: Notes
    retracted: Notes
    rejected: Notes
    status: str  # NDC device status record ``t`` digit, "" when absent
    truncated: bool
    start: int  # byte offsets of the block in its file
    end: int
    line: int  # first and last line numbers (1-based)
    last_line: int


class CountersTable(NamedTuple):
    """A counters printout inside the EJ: per type (denomination, loaded,
    dispensed, rejected, retracted, remaining), then the bins."""

    rows: tuple[tuple[int, int, int, int, int, int, int], ...]
    reject_bin: int
    retract_bin: int


class EjEvent(NamedTuple):
    """A device or operator line (``HH:MM:SS <event>``), dialect-neutral.

    ``code`` is one of ``EVENT_CODES``; ``unit`` the cassette number or 0.
    """

    time: str
    code: str
    unit: int
    line: int
    start: int
    end: int
    counters: CountersTable | None


EVENT_CODES = (
    "cassette_low",
    "cassette_empty",
    "supervisor_entry",
    "supervisor_exit",
    "cassette_removed",
    "cassette_inserted",
    "counters_before",
    "counters_after",
    "power_up",
    "paper_out",
    "paper_in",
)


@dataclass(slots=True)
class EjParse:
    """Everything read from one EJ file (one terminal, one business day)."""

    source: str
    terminal_id: str
    business_date: str
    dialect: str
    transactions: list[EjTransaction]
    events: list[EjEvent]
    skipped: list[SkippedLine]
    lines_total: int
    size: int
    fast_path: bool


class PaperBlock(NamedTuple):
    """One receipt block as read from the OCR-transcribed paper journal.

    The block's text stays in its file (``start``/``end`` are byte offsets);
    the fields are best-effort readings with the OCR look-alikes undone;
    ``stans``/``rrns`` hold every candidate the block shows (a block whose
    boundary was lost can hold two receipts).
    """

    position: int
    line: int
    last_line: int
    start: int
    end: int
    stans: tuple[str, ...]
    rrns: tuple[str, ...]
    times: tuple[str, ...]


@dataclass(slots=True)
class PaperParse:
    """The blocks of one paper journal file, and its line accounting."""

    source: str
    terminal_id: str
    business_date: str
    blocks: list[PaperBlock]
    skipped: list[SkippedLine]
    lines_total: int
    structural_lines: int  # page markers and blank lines
    size: int


class HostMessage(NamedTuple):
    """One switch message (from the ISO 8583 log or the CSV export).

    ``seq`` is the position in its file (the switch's logging order).
    ``actual_minor`` is DE95's actual amount for a partial reversal, else -1.
    """

    source: str
    seq: int
    mti: str
    terminal_id: str
    business_date: str
    stan: str
    rrn: str
    time: str  # DE12 hh:mm:ss
    sent: str  # DE7 MMDDhhmmss ("" from the CSV)
    processing_code: str
    amount_minor: int
    response_code: str  # DE39 (0210 response / 0420 reason); "" on a 0200
    auth_code: str
    pan_masked: str
    original_stan: str
    actual_minor: int


@dataclass(slots=True)
class HostParse:
    """The messages of one host file and its accounting (records or lines)."""

    source: str
    kind: str  # "iso" or "csv"
    messages: list[HostMessage]
    skipped: list[SkippedLine]
    units_total: int  # records (ISO) or lines (CSV)
    size: int


class CashUnit(NamedTuple):
    """One ``WFSCDMCASHUNIT`` entry of a counters snapshot."""

    number: int
    unit_type: int
    unit_id: str
    currency: str
    denomination: int
    initial: int
    notes: int  # ulCount: notes the unit should hold
    rejected: int
    minimum: int
    maximum: int
    status: int
    dispensed: int
    presented: int
    retracted: int
    physical: int | None


class Snapshot(NamedTuple):
    """A counters snapshot: start/end of day or one side of a replenishment."""

    timestamp: str  # ISO local time
    reason: str
    phase: str  # "before_exchange", "after_exchange" or ""
    units: tuple[CashUnit, ...]


@dataclass(slots=True)
class CountersParse:
    """The snapshots of one counters file, and what could not be used."""

    source: str
    terminal_id: str
    business_date: str
    snapshots: list[Snapshot]
    skipped: list[SkippedLine]
    lines_total: int
    size: int


@dataclass(slots=True)
class SourceAccount:
    """Per-file accounting for the summary: what was read and what was skipped."""

    source: str
    kind: str
    terminal_id: str
    business_date: str
    size: int
    units_total: int
    units_skipped: int
    records: int
    extra: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The account as JSON-ready data (``dataclasses.asdict`` without its deep
        copy, which took most of the summary's time with thousands of files)."""
        return {
            "source": self.source,
            "kind": self.kind,
            "terminal_id": self.terminal_id,
            "business_date": self.business_date,
            "size": self.size,
            "units_total": self.units_total,
            "units_skipped": self.units_skipped,
            "records": self.records,
            "extra": dict(self.extra),
        }
