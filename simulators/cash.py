"""Cash units as CEN/XFS 3.x ``WFSCDMCASHUNIT`` records, their status rules and the dispense mix.

An ATM has four bill cassettes (usNumber 1-4), a reject bin (5) and a retract bin
(6). Counts are cumulative since the last replenishment:
``ulCount = ulInitialCount - ulDispensedCount - ulRejectCount`` for a cassette; the
reject bin holds the sum of the cassettes' ``ulRejectCount``, the retract bin the
sum of their ``ulRetractedCount``. ``as_xfs`` gives the dict in the field order of
the counters format.
"""

from __future__ import annotations

from collections.abc import Sequence

# usType
BILL_CASSETTE = 3
REJECT_CASSETTE = 2
RETRACT_CASSETTE = 6

# usStatus
STATUS_OK = 0
STATUS_FULL = 1
STATUS_HIGH = 2
STATUS_LOW = 3
STATUS_EMPTY = 4
STATUS_INOP = 5
STATUS_MISSING = 6

MAX_NOTES = 40
REJECT_CAPACITY = 300
RETRACT_CAPACITY = 100

DENOMINATION_SETS: tuple[tuple[int, int, int, int], ...] = (
    (20, 20, 50, 100),
    (10, 20, 50, 100),
    (20, 50, 100, 100),
)


class CashUnit:
    """One cash unit with the XFS fields (names as XFS spells them, in snake case here)."""

    __slots__ = (
        "count",
        "currency",
        "dispensed",
        "fault_status",
        "initial",
        "maximum",
        "minimum",
        "number",
        "presented",
        "reject",
        "retracted",
        "sensor_low",
        "unit_id",
        "unit_type",
        "value",
    )

    def __init__(
        self, number: int, unit_type: int, unit_id: str, value: int, initial: int, maximum: int
    ) -> None:
        self.number = number
        self.unit_type = unit_type
        self.unit_id = unit_id
        self.currency = "USD"
        self.value = value
        self.initial = initial
        self.count = initial
        self.reject = 0
        self.minimum = initial // 10 if unit_type == BILL_CASSETTE else 0
        self.maximum = maximum
        self.dispensed = 0
        self.presented = 0
        self.retracted = 0
        self.fault_status: int | None = None  # INOP or MISSING while a fault lasts
        self.sensor_low = False  # the near-empty sensor tripped (until the next replenishment)

    @property
    def status(self) -> int:
        """``usStatus`` by the rules of the counters format."""
        if self.fault_status is not None:
            return self.fault_status
        if self.unit_type == BILL_CASSETTE:
            if self.count <= 0:
                return STATUS_EMPTY
            if self.count <= self.minimum or self.sensor_low:
                return STATUS_LOW
            return STATUS_OK
        if self.count >= self.maximum:
            return STATUS_FULL
        if self.count * 5 >= self.maximum * 4:
            return STATUS_HIGH
        return STATUS_OK

    def as_xfs(self, physical_count: int | None = None) -> dict[str, object]:
        """The ``WFSCDMCASHUNIT`` dict, field order as in the counters files."""
        unit: dict[str, object] = {
            "usNumber": self.number,
            "usType": self.unit_type,
            "cUnitID": self.unit_id,
            "cCurrencyID": self.currency,
            "ulValues": self.value,
            "ulInitialCount": self.initial,
            "ulCount": self.count,
            "ulRejectCount": self.reject,
            "ulMinimum": self.minimum,
            "ulMaximum": self.maximum,
            "usStatus": self.status,
            "ulDispensedCount": self.dispensed,
            "ulPresentedCount": self.presented,
            "ulRetractedCount": self.retracted,
        }
        if physical_count is not None:
            unit["physical_count"] = physical_count
        return unit


class CashUnits:
    """The six units of one ATM and the bookkeeping of every dispense."""

    __slots__ = ("cassettes", "order", "reject_bin", "retract_bin")

    def __init__(self, denominations: Sequence[int], loads: Sequence[int]) -> None:
        if len(denominations) != 4 or len(loads) != 4:
            raise ValueError("an ATM has exactly four cassettes")
        self.cassettes = [
            CashUnit(n + 1, BILL_CASSETTE, f"CST0{n + 1}", denominations[n], loads[n], 0)
            for n in range(4)
        ]
        self.reject_bin = CashUnit(5, REJECT_CASSETTE, "REJ01", 0, 0, REJECT_CAPACITY)
        self.retract_bin = CashUnit(6, RETRACT_CASSETTE, "RTR01", 0, 0, RETRACT_CAPACITY)
        # greedy order: largest denomination first, equal denominations lower number first
        self.order = sorted(range(4), key=lambda n: (-denominations[n], n))

    @property
    def all(self) -> list[CashUnit]:
        return [*self.cassettes, self.reject_bin, self.retract_bin]

    def denominations(self) -> tuple[int, int, int, int]:
        c = self.cassettes
        return (c[0].value, c[1].value, c[2].value, c[3].value)

    def mix(self, amount_major: int) -> list[int] | None:
        """Notes per cassette for an amount by the greedy rule, or None if it cannot be made.

        Largest denomination first among usable, non-empty cassettes (equal
        denominations: lower cassette number first), at most 40 notes.
        """
        notes = [0, 0, 0, 0]
        remaining = amount_major
        total = 0
        for n in self.order:
            unit = self.cassettes[n]
            if unit.count <= 0 or unit.fault_status is not None or remaining < unit.value:
                continue
            take = min(remaining // unit.value, unit.count)
            notes[n] = take
            remaining -= take * unit.value
            total += take
            if remaining == 0:
                break
        if remaining or total > MAX_NOTES or total == 0:
            return None
        return notes

    def value_of(self, notes: Sequence[int]) -> int:
        """Minor units of a per-cassette note vector."""
        c = self.cassettes
        return 100 * (
            notes[0] * c[0].value
            + notes[1] * c[1].value
            + notes[2] * c[2].value
            + notes[3] * c[3].value
        )

    def book(self, presented: Sequence[int], rejected: Sequence[int], retracted: bool) -> None:
        """Record one dispense: notes presented (and retracted, if so) and notes rejected."""
        for n in range(4):
            p = presented[n]
            r = rejected[n]
            if p or r:
                unit = self.cassettes[n]
                unit.dispensed += p
                unit.presented += p
                unit.reject += r
                unit.count -= p + r
                self.reject_bin.count += r
                self.reject_bin.reject += r
                if retracted and p:
                    unit.retracted += p
                    self.retract_bin.count += p
                    self.retract_bin.retracted += p

    def replenish(self, loads: Sequence[int]) -> None:
        """New cassettes loaded, bins emptied, all counts reset."""
        for n, unit in enumerate(self.cassettes):
            unit.initial = unit.count = loads[n]
            unit.minimum = loads[n] // 10
            unit.reject = unit.dispensed = unit.presented = unit.retracted = 0
            unit.fault_status = None
            unit.sensor_low = False
        for bin_ in (self.reject_bin, self.retract_bin):
            bin_.count = bin_.reject = bin_.retracted = 0

    def snapshot(self, physical: Sequence[int] | None = None) -> list[dict[str, object]]:
        """All six units as XFS dicts; with ``physical``, each carries its physical count."""
        units = self.all
        if physical is None:
            return [unit.as_xfs() for unit in units]
        return [unit.as_xfs(physical[i]) for i, unit in enumerate(units)]


def set_usage(
    cash: CashUnits, cassette: int, dispensed: int, rejected: int, retracted: int
) -> None:
    """Counts as if ``dispensed`` notes had been presented since the last replenishment
    (``retracted`` of them retracted) and ``rejected`` diverted to the reject bin."""
    unit = cash.cassettes[cassette - 1]
    if dispensed + rejected > unit.initial or retracted > dispensed:
        raise ValueError("usage exceeds what the cassette was loaded with")
    cash.reject_bin.count += rejected - unit.reject
    cash.reject_bin.reject = cash.reject_bin.count
    cash.retract_bin.count += retracted - unit.retracted
    cash.retract_bin.retracted = cash.retract_bin.count
    unit.dispensed = unit.presented = dispensed
    unit.reject = rejected
    unit.retracted = retracted
    unit.count = unit.initial - dispensed - rejected
