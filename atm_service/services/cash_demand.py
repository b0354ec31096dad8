"""Daily cash demand per ATM and denomination: derived from the devices' counters, or imported.

The forecast needs, per ATM, the notes of each denomination paid out on each
(local) day. The devices give it: every cash-unit snapshot an agent sends
(``counters_snapshot``) carries each cassette's ``ulDispensedCount`` since its
last replenishment, so the notes paid between two snapshots are the
difference (or, across an exchange, the new count since the new load).
:func:`daily_demand` turns a run of snapshots into days:

* the notes go to the day of the later snapshot (snapshots come with every
  change, so the two are normally minutes apart);
* a day on which a cassette of a denomination is reported empty is not
  *observed* for that denomination: what was paid understates what was asked;
* snapshots more than a day apart mean the device was silent (down, or its
  link): the days in between and the day of the later snapshot are not
  observed, and neither is the day of the first snapshot (it starts mid-day);
* only days that are over count.

A bank's own records can be imported for days the devices did not report
(``PUT /api/v1/cash/atms/{id}/demand``); an imported day is kept when the
counters are derived again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from atm_service.errors import InvalidInput, NotFound
from atm_service.models.cash import CountersSnapshot
from atm_service.models.cash_planning import CashDemandDay, DemandImport
from atm_service.models.fleet import Atm, Cassette, Site
from atm_service.services.device_counters import DeviceSnapshot

XFS_BILL_CASSETTE = 3
XFS_RECYCLING = 12
XFS_EMPTY = 4
SOURCE_COUNTERS = "counters"
SOURCE_IMPORT = "import"


@dataclass
class DayFigure:
    notes: int = 0
    observed: bool = True


def _bills(snapshot: DeviceSnapshot) -> dict[int, dict[str, object]]:
    return {
        int(str(unit.get("usNumber", 0))): unit
        for unit in snapshot.cash_units
        if unit.get("usType") in (XFS_BILL_CASSETTE, XFS_RECYCLING)
    }


def _int(unit: dict[str, object], name: str) -> int:
    value = unit.get(name, 0)
    if not isinstance(value, int | float | str):
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def daily_demand(
    snapshots: Sequence[DeviceSnapshot], *, until: date
) -> dict[tuple[date, int], DayFigure]:
    """Notes paid per (local day, denomination) from snapshots at local times; days before
    ``until`` only."""
    ordered = sorted(snapshots, key=lambda s: s.at)
    out: dict[tuple[date, int], DayFigure] = {}
    if not ordered:
        return out

    def figure(day: date, value: int) -> DayFigure:
        return out.setdefault((day, value), DayFigure())

    denominations = sorted({_int(u, "ulValues") for s in ordered for u in _bills(s).values()} - {0})
    first_day = ordered[0].at.date()
    for value in denominations:
        figure(first_day, value).observed = False
    for snapshot in ordered:
        for unit in _bills(snapshot).values():
            value = _int(unit, "ulValues")
            if value and (_int(unit, "usStatus") == XFS_EMPTY or _int(unit, "ulCount") <= 0):
                figure(snapshot.at.date(), value).observed = False
    for before, after in pairwise(ordered):
        day = after.at.date()
        gap = (day - before.at.date()).days
        for offset in range(gap + 1):
            for value in denominations:
                figure(before.at.date() + timedelta(days=offset), value)
        if gap > 1:
            for offset in range(1, gap + 1):
                for value in denominations:
                    figure(before.at.date() + timedelta(days=offset), value).observed = False
        old = _bills(before)
        for number, unit in _bills(after).items():
            value = _int(unit, "ulValues")
            previous = old.get(number)
            if not value or previous is None:
                continue
            dispensed = _int(unit, "ulDispensedCount")
            exchanged = _int(unit, "ulInitialCount") != _int(previous, "ulInitialCount") or (
                dispensed < _int(previous, "ulDispensedCount")
            )
            paid = dispensed if exchanged else dispensed - _int(previous, "ulDispensedCount")
            figure(day, value).notes += max(paid, 0)
    return {key: found for key, found in out.items() if key[0] < until}


def _atm_and_zone(session: Session, atm_id: int) -> tuple[Atm, ZoneInfo]:
    atm = session.get(Atm, atm_id)
    if atm is None:
        raise NotFound(f"No ATM with id {atm_id}.")
    site = session.get(Site, atm.site_id)
    assert site is not None, "an ATM always has a site (foreign key)"
    return atm, ZoneInfo(site.timezone)


def local_today(zone: ZoneInfo, now: datetime) -> date:
    return now.astimezone(zone).date()


def refresh_from_counters(
    session: Session, *, atm_id: int, start: date, end: date, now: datetime
) -> int:
    """Derive the days ``start``..``end`` (those that are over) from the stored snapshots.

    Rows derived before are replaced; imported rows are kept. Returns the rows written.
    """
    if end < start:
        raise InvalidInput("end is before start.", field="end")
    if (end - start).days > 730:
        raise InvalidInput("At most 731 days at a time.", field="end")
    _, zone = _atm_and_zone(session, atm_id)
    today = local_today(zone, now)
    stored = col(CountersSnapshot.stored_at)
    since = datetime.combine(start - timedelta(days=1), time(0), tzinfo=zone)
    upto = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
    rows = session.exec(
        select(CountersSnapshot)
        .where(col(CountersSnapshot.atm_id) == atm_id, stored >= since, stored < upto)
        .order_by(stored, col(CountersSnapshot.seq))
    ).all()
    snapshots = [
        DeviceSnapshot(row.stored_at.astimezone(zone).replace(tzinfo=None), list(row.cash_units))
        for row in rows
    ]
    days = daily_demand(snapshots, until=min(today, end + timedelta(days=1)))
    written = 0
    for (day, value), found in sorted(days.items()):
        if day < start:
            continue
        existing = session.get(CashDemandDay, (atm_id, day, value))
        if existing is not None and existing.source == SOURCE_IMPORT:
            continue
        row = existing or CashDemandDay(
            atm_id=atm_id,
            day=day,
            denomination=value,
            notes=0,
            source=SOURCE_COUNTERS,
            updated_at=now,
        )
        row.notes = found.notes
        row.observed = found.observed
        row.source = SOURCE_COUNTERS
        row.updated_at = now
        session.add(row)
        written += 1
    session.commit()
    return written


def import_days(session: Session, *, atm_id: int, data: DemandImport, now: datetime) -> int:
    """Store a bank's daily figures for an ATM (they win over derived ones)."""
    atm, zone = _atm_and_zone(session, atm_id)
    today = local_today(zone, now)
    loaded = {
        cassette.denomination
        for cassette in session.exec(select(Cassette).where(col(Cassette.atm_id) == atm_id))
    }
    seen: set[tuple[date, int]] = set()
    for index, item in enumerate(data.days):
        if item.denomination not in loaded:
            raise InvalidInput(
                f"days.{index}.denomination: ATM {atm.terminal_id} has no cassette of "
                f"{item.denomination}; it holds {sorted(loaded)}.",
                field=f"days.{index}.denomination",
            )
        if item.day >= today:
            raise InvalidInput(
                f"days.{index}.day: {item.day} is not over yet at the ATM's site.",
                field=f"days.{index}.day",
            )
        key = (item.day, item.denomination)
        if key in seen:
            raise InvalidInput(
                f"days.{index}: {item.day} and {item.denomination} appear twice.",
                field=f"days.{index}",
            )
        seen.add(key)
    for item in data.days:
        row = session.get(CashDemandDay, (atm_id, item.day, item.denomination))
        if row is None:
            row = CashDemandDay(
                atm_id=atm_id,
                day=item.day,
                denomination=item.denomination,
                notes=item.notes,
                source=SOURCE_IMPORT,
                updated_at=now,
            )
        row.notes = item.notes
        row.observed = item.observed
        row.source = SOURCE_IMPORT
        row.updated_at = now
        session.add(row)
    session.commit()
    return len(data.days)


def history(session: Session, *, atm_id: int, start: date, end: date) -> list[CashDemandDay]:
    """The stored days of an ATM from ``start`` to ``end`` (inclusive)."""
    _atm_and_zone(session, atm_id)
    if end < start:
        raise InvalidInput("end is before start.", field="end")
    return list(
        session.exec(
            select(CashDemandDay)
            .where(
                col(CashDemandDay.atm_id) == atm_id,
                col(CashDemandDay.day) >= start,
                col(CashDemandDay.day) <= end,
            )
            .order_by(col(CashDemandDay.day), col(CashDemandDay.denomination))
        ).all()
    )
