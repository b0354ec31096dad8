"""Cash-unit counters the devices reported, turned into a counters file for reconciliation.

An agent sends a snapshot of its XFS cash units whenever they change, when
asked, and on request; the service keeps each one (``counters_snapshot``)
with the time the agent stored it. Reconciliation reads counters in the shape
of ``shared/formats/README.md``: per terminal and business day, the state at
the start of the day, each replenishment as a ``before_exchange`` /
``after_exchange`` pair, and the state at the end of the day.
:func:`counters_document` builds that from the snapshots:

- ``start_of_day`` (``00:00:00``) is the last snapshot taken at or before
  midnight: the state in force then, since a device reports every change;
- an exchange is seen where a bill cassette's ``ulInitialCount`` changes or
  its ``ulDispensedCount`` goes down: the snapshot before is
  ``before_exchange``, the one after ``after_exchange``. A snapshot that
  carries ``physical_count`` (the device's own count at removal) is the
  ``before_exchange`` one. Otherwise the notes the engineer counted at the
  replenishment (``replenishment_count.removed``, by cassette and bin) are
  its ``physical_count``, when a replenishment was resolved at the ATM within
  :data:`COUNT_WINDOW` of the exchange;
- ``end_of_day`` (``23:59:59``) is the last snapshot at or before the end of
  the day, once the day is over (a later snapshot exists, or the clock is past it).

Times are the agent's store times in the site's time zone; an exchange's
snapshots carry the times they were taken, which may precede the removal
itself (the EJ's counters printout has the exact time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from atm_service.models.cash import CountersSnapshot
from atm_service.models.fleet import Atm, Site
from atm_service.models.tasks import ReplenishmentCount, UnitKind
from atm_service.services import tasks

COUNT_WINDOW = timedelta(hours=3)
XFS_BILL_CASSETTE = 3
XFS_REJECT = 2
XFS_RETRACT = 6


@dataclass(frozen=True)
class DeviceSnapshot:
    """One reported snapshot at terminal local time (naive)."""

    at: datetime
    cash_units: list[dict[str, Any]]


@dataclass(frozen=True)
class CountedExchange:
    """An engineer's counts at a replenishment: notes taken out, by unit."""

    at: datetime  # terminal local time (naive) the replenishment was resolved
    cassettes: Mapping[int, int]  # usNumber -> notes removed
    reject_bin: int | None = None
    retract_bin: int | None = None


def _bills(units: Sequence[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    return {
        int(unit.get("usNumber", 0)): unit
        for unit in units
        if unit.get("usType") == XFS_BILL_CASSETTE
    }


def _exchanged(before: DeviceSnapshot, after: DeviceSnapshot) -> bool:
    old, new = _bills(before.cash_units), _bills(after.cash_units)
    for number, unit in new.items():
        previous = old.get(number)
        if previous is None:
            continue
        if unit.get("ulInitialCount") != previous.get("ulInitialCount"):
            return True
        if int(unit.get("ulDispensedCount", 0)) < int(previous.get("ulDispensedCount", 0)):
            return True
    return False


def _counted(snapshot: DeviceSnapshot) -> bool:
    return any("physical_count" in unit for unit in snapshot.cash_units)


def _with_counts(
    snapshot: DeviceSnapshot, counts: Sequence[CountedExchange]
) -> list[dict[str, Any]]:
    """The snapshot's units with the engineer's counts nearest to it, if any are close."""
    units = [dict(unit) for unit in snapshot.cash_units]
    near = [c for c in counts if abs(c.at - snapshot.at) <= COUNT_WINDOW]
    if not near:
        return units
    count = min(near, key=lambda c: abs(c.at - snapshot.at))
    for unit in units:
        kind, number = unit.get("usType"), int(unit.get("usNumber", 0))
        if kind == XFS_BILL_CASSETTE and number in count.cassettes:
            unit["physical_count"] = count.cassettes[number]
        elif kind == XFS_REJECT and count.reject_bin is not None:
            unit["physical_count"] = count.reject_bin
        elif kind == XFS_RETRACT and count.retract_bin is not None:
            unit["physical_count"] = count.retract_bin
    return units


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def counters_document(
    snapshots: Sequence[DeviceSnapshot],
    *,
    terminal_id: str,
    business_date: date,
    day_over: bool,
    counts: Sequence[CountedExchange] = (),
) -> dict[str, Any] | None:
    """The day's counters file, or ``None`` when the snapshots say nothing about the day."""
    start = datetime.combine(business_date, time(0, 0, 0))
    end = datetime.combine(business_date, time(23, 59, 59))
    ordered = sorted(snapshots, key=lambda s: s.at)
    earlier = [s for s in ordered if s.at <= start]
    during = [s for s in ordered if start < s.at <= end]
    out: list[dict[str, Any]] = []
    if earlier:
        out.append(
            {
                "timestamp": _stamp(start),
                "reason": "start_of_day",
                "cash_units": [dict(unit) for unit in earlier[-1].cash_units],
            }
        )
    chain = earlier[-1:] + during
    for previous, current in pairwise(chain):
        if not _exchanged(previous, current):
            continue
        removal = (
            [dict(unit) for unit in previous.cash_units]
            if _counted(previous)
            else _with_counts(previous, counts)
        )
        out.append(
            {
                "timestamp": _stamp(max(previous.at, start)),
                "reason": "replenishment",
                "phase": "before_exchange",
                "cash_units": removal,
            }
        )
        out.append(
            {
                "timestamp": _stamp(current.at),
                "reason": "replenishment",
                "phase": "after_exchange",
                "cash_units": [dict(unit) for unit in current.cash_units],
            }
        )
    later = any(s.at > end for s in ordered)
    if (day_over or later) and chain:
        out.append(
            {
                "timestamp": _stamp(end),
                "reason": "end_of_day",
                "cash_units": [dict(unit) for unit in chain[-1].cash_units],
            }
        )
    if not out:
        return None
    return {
        "terminal_id": terminal_id,
        "business_date": business_date.isoformat(),
        "snapshots": out,
    }


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def device_counters(
    session: Session, *, atm: Atm, business_date: date, now: datetime
) -> bytes | None:
    """The counters file (JSON bytes) of ``atm`` for ``business_date`` from what it reported,
    or ``None`` when it reported nothing that bears on the day."""
    site = session.get(Site, atm.site_id)
    assert site is not None, "an ATM always has a site (foreign key)"
    zone = ZoneInfo(site.timezone)
    start = datetime.combine(business_date, time(0, 0, 0), tzinfo=zone)
    end = datetime.combine(business_date, time(23, 59, 59), tzinfo=zone)
    assert atm.id is not None
    stored = col(CountersSnapshot.stored_at)
    last_before = session.exec(
        select(CountersSnapshot)
        .where(col(CountersSnapshot.atm_id) == atm.id, stored <= start)
        .order_by(stored.desc())
        .limit(1)
    ).all()
    within = session.exec(
        select(CountersSnapshot)
        .where(col(CountersSnapshot.atm_id) == atm.id, stored > start, stored <= end)
        .order_by(stored)
    ).all()
    first_after = session.exec(
        select(CountersSnapshot)
        .where(col(CountersSnapshot.atm_id) == atm.id, stored > end)
        .order_by(stored)
        .limit(1)
    ).all()
    rows = [*last_before, *within, *first_after]
    if not rows:
        return None
    snapshots = [DeviceSnapshot(_local(row.stored_at, zone), list(row.cash_units)) for row in rows]
    counted: list[CountedExchange] = []
    for task, counts in tasks.replenishments(
        session, atm_id=atm.id, start=start - COUNT_WINDOW, end=end + COUNT_WINDOW
    ):
        if task.resolved_at is not None:
            counted.append(_exchange(_local(task.resolved_at, zone), counts))
    document = counters_document(
        snapshots,
        terminal_id=atm.terminal_id,
        business_date=business_date,
        day_over=now > end,
        counts=counted,
    )
    if document is None:
        return None
    return json.dumps(document, sort_keys=False).encode()


def _exchange(at: datetime, counts: Sequence[ReplenishmentCount]) -> CountedExchange:
    cassettes = {c.unit_number: c.removed for c in counts if c.unit_kind is UnitKind.CASSETTE}
    reject = next((c.removed for c in counts if c.unit_kind is UnitKind.REJECT_BIN), None)
    retract = next((c.removed for c in counts if c.unit_kind is UnitKind.RETRACT_BIN), None)
    return CountedExchange(at, cassettes, reject, retract)
