"""Stored device records go to the dispatch rules, each exactly once.

Ingest commits an agent's records first, so nothing it accepted depends on
what the rules make of it; then :func:`apply_pending` hands each record the
rules have not seen to :mod:`atm_service.services.dispatch_rules`, in sequence
order: a status to ``on_device_status``, an event to ``on_device_event``, a
cash-unit snapshot to ``on_cash_units``.

Exactly once: each record stream keeps ``rules_seq``, the last record the
rules were applied to. Before a record goes to the rules, ``rules_seq`` is
moved to it by a conditional update (``WHERE rules_seq = previous``) in the
same transaction as the rules' own changes, which the rule's commit makes
durable together. So

- a retried upload stores nothing new and applies nothing again;
- two service instances racing over one stream serialise on the stream's row,
  and the second finds the record already claimed and stops;
- a service that dies between the ingest's commit and the rules' leaves
  ``rules_seq`` behind, and the stream's next request (records or heartbeat)
  applies what was left.

A record the rules refuse (a domain error: a status without a time, an event
with a bad field) or fail on unexpectedly is logged with its stream and
sequence and passed over: it stays stored, and one bad record never holds up
the ATM's later ones. A database error (the connection dropped, a
serialisation failure, no pooled connection in time) leaves the record for the
next attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from atm_service.errors import ServiceError
from atm_service.models.cash import CountersSnapshot
from atm_service.models.devices import DeviceEvent, DeviceStatus, RecordKind, RecordStream
from atm_service.services import dispatch_rules
from atm_service.services.sql import cached, table

logger = logging.getLogger("atm_service.ingest.rules")

BATCH = 200

_STREAMS = table(RecordStream)
_STATUS = table(DeviceStatus)
_EVENTS = table(DeviceEvent)
_COUNTERS = table(CountersSnapshot)


@dataclass
class RulesReport:
    """What one call did: records applied, passed over, and whether some are left."""

    applied: int = 0
    skipped: int = 0
    deferred: bool = False


@dataclass(frozen=True)
class _Pending:
    seq: int
    kind: RecordKind
    data: dict[str, Any]


def _pending_query(source: sa.Table, columns: tuple[str, ...]) -> sa.Select[Any]:
    return (
        sa.select(source.c.seq, *(source.c[name] for name in columns))
        .where(
            source.c.stream_id == sa.bindparam("stream_id"),
            source.c.seq > sa.bindparam("after"),
        )
        .order_by(source.c.seq)
        .limit(sa.bindparam("limit"))
    )


def _pending(session: Session, stream_id: int, after: int, limit: int) -> list[_Pending]:
    """The stream's next ``limit`` records after ``after``, whichever table holds each."""
    connection = session.connection()
    params = {"stream_id": stream_id, "after": after, "limit": limit}
    found: list[_Pending] = []
    for kind, source, columns in (
        (RecordKind.STATUS, _STATUS, ("data",)),
        (RecordKind.EVENT, _EVENTS, ("data",)),
        (RecordKind.CASH_UNITS, _COUNTERS, ("reason", "cash_units")),
    ):
        statement = cached(
            f"rules-pending-{kind.value}", connection, partial(_pending_query, source, columns)
        )
        for row in connection.execute(statement, params):
            if kind is RecordKind.CASH_UNITS:
                data = {"reason": row[1], "cash_units": row[2]}
            else:
                data = row[1]
            found.append(_Pending(seq=int(row[0]), kind=kind, data=data))
    found.sort(key=lambda record: record.seq)
    return found[:limit]


def _claim(session: Session, stream_id: int, previous: int, seq: int) -> bool:
    """Move the stream's ``rules_seq`` from ``previous`` to ``seq``; False if another got there."""
    connection = session.connection()
    result = connection.execute(
        cached(
            "rules-claim",
            connection,
            lambda: (
                _STREAMS.update()
                .where(
                    _STREAMS.c.id == sa.bindparam("stream_id"),
                    _STREAMS.c.rules_seq == sa.bindparam("previous"),
                )
                .values(rules_seq=sa.bindparam("seq"))
            ),
        ),
        {"stream_id": stream_id, "previous": previous, "seq": seq},
    )
    return result.rowcount == 1


def _apply(
    session: Session, *, atm_id: int, record: _Pending, now: datetime, road_speed_kmh: float
) -> None:
    if record.kind is RecordKind.STATUS:
        dispatch_rules.on_device_status(
            session, atm_id=atm_id, status=record.data, now=now, road_speed_kmh=road_speed_kmh
        )
    elif record.kind is RecordKind.EVENT:
        dispatch_rules.on_device_event(
            session, atm_id=atm_id, event=record.data, now=now, road_speed_kmh=road_speed_kmh
        )
    else:
        units = record.data.get("cash_units")
        dispatch_rules.on_cash_units(
            session,
            atm_id=atm_id,
            units=units if isinstance(units, list) else [],
            now=now,
            road_speed_kmh=road_speed_kmh,
        )


def rules_position(session: Session, *, stream_id: int) -> tuple[int, int]:
    """(``rules_seq``, ``last_seq``) of a record stream."""
    row = (
        session.connection()
        .execute(
            sa.select(_STREAMS.c.rules_seq, _STREAMS.c.last_seq).where(_STREAMS.c.id == stream_id)
        )
        .one()
    )
    return int(row[0]), int(row[1])


def apply_pending(
    session: Session,
    *,
    atm_id: int,
    stream_id: int,
    now: datetime,
    road_speed_kmh: float = dispatch_rules.DEFAULT_ROAD_SPEED_KMH,
) -> RulesReport:
    """Apply the rules to every stored record of the stream they have not seen; see above.

    Call it with no transaction of the caller's open: each record commits on its own.
    """
    report = RulesReport()
    done, last = rules_position(session, stream_id=stream_id)
    session.commit()
    while done < last:
        batch = _pending(session, stream_id, done, BATCH)
        session.commit()
        if not batch:
            break
        done = _apply_batch(
            session,
            atm_id=atm_id,
            stream_id=stream_id,
            done=done,
            batch=batch,
            report=report,
            now=now,
            road_speed_kmh=road_speed_kmh,
        )
        if report.deferred or done < batch[-1].seq:
            break
    return report


def apply_stored(
    session: Session,
    *,
    atm_id: int,
    stream_id: int,
    after: int,
    records: Sequence[tuple[int, RecordKind, dict[str, Any]]],
    now: datetime,
    road_speed_kmh: float = dispatch_rules.DEFAULT_ROAD_SPEED_KMH,
) -> RulesReport:
    """Apply the rules to records the caller has just stored, ``(seq, kind, data)`` in
    sequence from ``after + 1``, when the rules had seen every record up to ``after``:
    ingest hands over what it holds in memory instead of reading it back. The claims are
    the same as :func:`apply_pending`'s, so a record still reaches the rules once.

    Call it with no transaction of the caller's open: each record commits on its own.
    """
    report = RulesReport()
    batch = [_Pending(seq=seq, kind=kind, data=data) for seq, kind, data in records]
    _apply_batch(
        session,
        atm_id=atm_id,
        stream_id=stream_id,
        done=after,
        batch=batch,
        report=report,
        now=now,
        road_speed_kmh=road_speed_kmh,
    )
    return report


def _apply_batch(
    session: Session,
    *,
    atm_id: int,
    stream_id: int,
    done: int,
    batch: list[_Pending],
    report: RulesReport,
    now: datetime,
    road_speed_kmh: float,
) -> int:
    """Each record of ``batch`` in turn, from ``done``; the last one dealt with. Stops at a
    record another request took, or one a database error deferred."""
    for record in batch:
        outcome = _apply_one(
            session,
            atm_id=atm_id,
            stream_id=stream_id,
            previous=done,
            record=record,
            now=now,
            road_speed_kmh=road_speed_kmh,
        )
        if outcome == "applied":
            report.applied += 1
        elif outcome == "skipped":
            report.skipped += 1
        else:
            report.deferred = outcome == "deferred"
            return done
        done = record.seq
    return done


def _apply_one(
    session: Session,
    *,
    atm_id: int,
    stream_id: int,
    previous: int,
    record: _Pending,
    now: datetime,
    road_speed_kmh: float,
) -> str:
    """One record: "applied", "skipped" (refused, passed over), "taken" or "deferred"."""
    where = {"atm_id": atm_id, "stream_id": stream_id, "seq": record.seq}
    try:
        if not _claim(session, stream_id, previous, record.seq):
            session.rollback()
            return "taken"  # another request is applying this stream
        _apply(session, atm_id=atm_id, record=record, now=now, road_speed_kmh=road_speed_kmh)
        session.commit()
        return "applied"
    except (sa.exc.DBAPIError, sa.exc.TimeoutError):
        session.rollback()
        logger.warning(
            "dispatch rules deferred: database error on record %d",
            record.seq,
            exc_info=True,
            extra=where,
        )
        return "deferred"
    except ServiceError as exc:
        session.rollback()
        logger.warning(
            "dispatch rules refused %s record %d: %s",
            record.kind.value,
            record.seq,
            exc,
            extra=where,
        )
    except Exception:
        session.rollback()
        logger.exception(
            "dispatch rules failed on %s record %d; passed over",
            record.kind.value,
            record.seq,
            extra=where,
        )
    try:
        if not _claim(session, stream_id, previous, record.seq):
            session.rollback()
            return "taken"
        session.commit()
    except (sa.exc.DBAPIError, sa.exc.TimeoutError):
        session.rollback()
        return "deferred"
    return "skipped"
