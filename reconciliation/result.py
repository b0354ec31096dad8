"""What a run produces: discrepancies with evidence, settlement rows, accounting.

These are the objects the service stores and the reports render; ``to_json``
methods give the shapes written to ``discrepancies.jsonl`` and the summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, TypeVar

import orjson

from reconciliation.model import SkippedLine, SourceAccount

T = TypeVar("T")


def _pickled_by_fields(cls: type[T]) -> type[T]:
    """Pickle instances of a dataclass as the class and its field values.

    The default for a slotted dataclass goes through ``copyreg`` and a state
    dict per object; the findings, their evidence and the settlement rows of a
    large run cross from the worker processes in the tens of thousands, and this
    form takes about a fifth less time to write and to read.
    """
    state = attrgetter(*(item.name for item in fields(cls)))  # type: ignore[arg-type]

    def __reduce__(self: T) -> tuple[type[T], tuple[Any, ...]]:
        return cls, state(self)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign,assignment]
    return cls


@dataclass(slots=True, eq=False)
class Evidence:
    """Everything the team needs to act on a discrepancy without opening a file.

    It crosses processes as its JSON (``orjson``): the excerpts, host messages and
    counters of a large run's findings are most of what the workers send back,
    and their JSON takes less time to write than their pickle. The receiving side
    gets a :class:`PackedEvidence`, which decodes it on first use; the report
    writers copy it into ``discrepancies.jsonl`` as it is (:meth:`json`).
    """

    ej_excerpt: str = ""
    ej_location: str = ""
    paper_excerpt: str = ""
    paper_location: str = ""
    host_messages: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)

    def json(self) -> bytes:
        """The evidence as a JSON object (the ``evidence`` of a line of
        ``discrepancies.jsonl``)."""
        return orjson.dumps(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Evidence):
            return NotImplemented
        return _evidence_values(self) == _evidence_values(other)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        try:
            packed = self.json()
        except orjson.JSONEncodeError:  # not JSON data: crosses as its fields
            return Evidence, _evidence_values(self)
        return PackedEvidence, (self.ej_location, self.paper_location, packed)


class PackedEvidence(Evidence):
    """Evidence as received from another process: its JSON, decoded on first use.

    The locations, which the tables of the reports show for every finding, are
    at hand at once; reading any other field decodes all of them (the slots stay
    unset until then, so that Python asks ``__getattr__``).
    """

    __slots__ = ("_packed",)

    _packed: bytes | None

    def __init__(self, ej_location: str, paper_location: str, packed: bytes) -> None:
        set_slot = object.__setattr__
        set_slot(self, "ej_location", ej_location)
        set_slot(self, "paper_location", paper_location)
        set_slot(self, "_packed", packed)

    def __getattr__(self, name: str) -> Any:
        if name not in _PACKED_FIELDS or self._packed is None:
            raise AttributeError(name)
        self._unpack()
        return getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PACKED_FIELDS and self._packed is not None:
            self._unpack()  # so that the other fields are not decoded over it later
        object.__setattr__(self, name, value)

    def _unpack(self) -> None:
        assert self._packed is not None
        values = orjson.loads(self._packed)
        set_slot = object.__setattr__
        for name in _PACKED_FIELDS:
            set_slot(self, name, values[name])
        set_slot(self, "_packed", None)

    def json(self) -> bytes:
        if self._packed is not None:
            return self._packed
        return orjson.dumps(dict(zip(_EVIDENCE_FIELDS, _evidence_values(self), strict=True)))


_EVIDENCE_FIELDS = tuple(item.name for item in fields(Evidence))
_evidence_values = attrgetter(*_EVIDENCE_FIELDS)
_PACKED_FIELDS = ("ej_excerpt", "paper_excerpt", "host_messages", "counters")


@_pickled_by_fields
@dataclass(slots=True)
class Discrepancy:
    """One finding. ``stan``/``rrn`` are ``None`` for the cassette kinds."""

    terminal_id: str
    business_date: str
    kind: str
    stan: str | None
    rrn: str | None
    amount_minor: int
    currency: str
    owed_to: str
    suggested_action: str
    dispute_deadline: str | None
    scheme: str | None
    local_time: str | None
    detail: dict[str, Any]
    evidence: Evidence

    def sort_key(self) -> tuple[str, str, str, str, str]:
        return (
            self.terminal_id,
            self.business_date,
            self.local_time or self.detail.get("replenishment_time", "") or "",
            self.stan or "",
            self.kind,
        )

    def to_json(self) -> dict[str, Any]:
        """The finding as JSON-ready data (the shape of ``discrepancies.jsonl``).

        Built field by field rather than with ``dataclasses.asdict``, whose deep
        copy of the evidence dominated the writing of a large run's reports;
        ``detail`` and the evidence's containers are copied one level deep.
        """
        evidence = self.evidence
        return {
            "terminal_id": self.terminal_id,
            "business_date": self.business_date,
            "kind": self.kind,
            "stan": self.stan,
            "rrn": self.rrn,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "owed_to": self.owed_to,
            "suggested_action": self.suggested_action,
            "dispute_deadline": self.dispute_deadline,
            "scheme": self.scheme,
            "local_time": self.local_time,
            "detail": dict(self.detail),
            "evidence": {
                "ej_excerpt": evidence.ej_excerpt,
                "ej_location": evidence.ej_location,
                "paper_excerpt": evidence.paper_excerpt,
                "paper_location": evidence.paper_location,
                "host_messages": list(evidence.host_messages),
                "counters": dict(evidence.counters),
            },
        }


@_pickled_by_fields
@dataclass(slots=True)
class SettlementRow:
    """One cassette over one replenishment cycle (or the part of it in the data)."""

    terminal_id: str
    cycle_start: str  # timestamp of the load (after_exchange) or "" when before the data
    cycle_end: str  # timestamp of the removal (before_exchange) or "" while still open
    cassette: int
    denomination: int
    loaded: int
    counters_dispensed: int
    counters_rejected: int
    counters_retracted: int
    counters_remaining: int
    ej_dispensed: int
    ej_rejected: int
    ej_retracted: int
    ej_covers_cycle: bool
    ej_unexplained: int  # counters_dispensed - ej_dispensed, when the EJ covers the cycle
    physical_count: int | None
    difference: int | None  # physical - counters remaining (notes)
    difference_minor: int | None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _SETTLEMENT_FIELDS}


_SETTLEMENT_FIELDS = tuple(item.name for item in fields(SettlementRow))


@dataclass(slots=True)
class RunResult:
    """The outcome of :func:`reconciliation.reconcile`."""

    discrepancies: list[Discrepancy]
    settlement: list[SettlementRow]
    accounts: list[SourceAccount]
    skipped: list[SkippedLine]
    ignored_files: list[tuple[str, str]]
    observations: list[str]
    terminal_days: int
    transactions: int
    host_messages: int
    ej_bytes: int
    timings: dict[str, float]

    def counts_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.discrepancies:
            counts[item.kind] = counts.get(item.kind, 0) + 1
        return dict(sorted(counts.items()))

    def amount_by_kind(self) -> dict[str, int]:
        amounts: dict[str, int] = {}
        for item in self.discrepancies:
            amounts[item.kind] = amounts.get(item.kind, 0) + item.amount_minor
        return dict(sorted(amounts.items()))

    def owed_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {"customer": 0, "bank": 0}
        for item in self.discrepancies:
            if item.owed_to in totals:
                totals[item.owed_to] += item.amount_minor
        return totals

    def summary(self) -> dict[str, Any]:
        """The run's summary as JSON-ready data."""
        lines_total = sum(account.units_total for account in self.accounts)
        return {
            "terminal_days": self.terminal_days,
            "transactions": self.transactions,
            "host_messages": self.host_messages,
            "ej_bytes": self.ej_bytes,
            "discrepancies": len(self.discrepancies),
            "by_kind": self.counts_by_kind(),
            "amount_minor_by_kind": self.amount_by_kind(),
            "owed_minor": self.owed_totals(),
            "sources": [account.to_json() for account in self.accounts],
            "units_read": lines_total,
            "units_skipped": len(self.skipped),
            "skipped": [line._asdict() for line in self.skipped],
            "ignored_files": [{"file": name, "reason": why} for name, why in self.ignored_files],
            "observations": self.observations,
            "timings_seconds": {key: round(value, 3) for key, value in self.timings.items()},
        }
