"""Lock alarms: raised by lock control, shown live to dispatchers, acknowledged with a note.

An alarm is raised once per cause (``dedupe_key`` is unique: a sweep running on
every instance, or a trail imported twice, raises it once), recorded in the
lock-access log (``alarm``), and announced to every dispatcher's board through
the dispatch outbox in the same transaction. Engineers never see alarms: a
duress alarm is silent on the engineer's page. A dispatcher acknowledges an
alarm with a note, which is logged too (``alarm-acknowledged``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from atm_service.errors import Conflict, InvalidInput, NotFound
from atm_service.models.fleet import Atm
from atm_service.models.locks import (
    AlarmKind,
    AlarmPublic,
    AlarmSeverity,
    AlarmState,
    Lock,
    LockAlarm,
)
from atm_service.models.notifications import Audience
from atm_service.models.users import User
from atm_service.services import notifications
from lockctl import AuditLog

SEVERITY = {
    AlarmKind.SEAL_OVERDUE: AlarmSeverity.WARNING,
    AlarmKind.SEAL_MISMATCH: AlarmSeverity.WARNING,
    AlarmKind.OPENED_WITHOUT_CODE: AlarmSeverity.CRITICAL,
    AlarmKind.OPENED_AFTER_FORCE_CLOSE: AlarmSeverity.CRITICAL,
    AlarmKind.SEAL_NOT_SHOWN: AlarmSeverity.CRITICAL,
    AlarmKind.DURESS: AlarmSeverity.CRITICAL,
    AlarmKind.LOCKOUT: AlarmSeverity.CRITICAL,
}


def duress_key(lock_id: str, window: int | None, users: Sequence[int]) -> str:
    """One duress alarm per opening, whether the seal or the lock's trail tells first."""
    return f"duress:{lock_id}:{window}:{','.join(str(u) for u in sorted(users))}"


def to_public(alarm: LockAlarm, *, lock: Lock, terminal_id: str) -> AlarmPublic:
    assert alarm.id is not None
    return AlarmPublic(
        id=alarm.id,
        kind=alarm.kind,
        label=alarm.kind.label,
        severity=alarm.severity,
        state=alarm.state,
        lock_id=lock.lock_id,
        atm_id=alarm.atm_id,
        terminal_id=terminal_id,
        task_id=alarm.task_id,
        message=alarm.message,
        details=alarm.details,
        raised_at=alarm.raised_at,
        acknowledged_at=alarm.acknowledged_at,
        acknowledged_by=alarm.acknowledged_by,
        note=alarm.note,
    )


def publics(session: Session, alarms: Sequence[LockAlarm]) -> list[AlarmPublic]:
    lock_ids = list({alarm.lock_pk for alarm in alarms})
    found: dict[int, tuple[Lock, str]] = {}
    if lock_ids:
        rows = session.exec(
            select(Lock, Atm.terminal_id)
            .join(Atm, col(Atm.id) == col(Lock.atm_id))
            .where(col(Lock.id).in_(lock_ids))
        )
        found = {lock.id: (lock, terminal) for lock, terminal in rows if lock.id is not None}
    return [
        to_public(alarm, lock=found[alarm.lock_pk][0], terminal_id=found[alarm.lock_pk][1])
        for alarm in alarms
    ]


def _announce(session: Session, alarm: LockAlarm, *, now: datetime) -> None:
    session.flush()
    shown = publics(session, [alarm])[0]
    notifications.publish(
        session,
        audience=Audience.BOARD,
        payload={"event": "alarm", **shown.model_dump(mode="json")},
        now=now,
    )


def raise_alarm(
    session: Session,
    *,
    log: AuditLog,
    lock: Lock,
    kind: AlarmKind,
    message: str,
    now: datetime,
    dedupe_key: str,
    task_id: int | None = None,
    issuance_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> LockAlarm | None:
    """Raise an alarm (uncommitted); ``None`` when this cause was already raised."""
    assert lock.id is not None
    exists = session.exec(
        select(LockAlarm.id).where(col(LockAlarm.dedupe_key) == dedupe_key)
    ).first()
    if exists is not None:
        return None
    alarm = LockAlarm(
        kind=kind,
        severity=SEVERITY[kind],
        state=AlarmState.OPEN,
        lock_pk=lock.id,
        atm_id=lock.atm_id,
        task_id=task_id,
        issuance_id=issuance_id,
        message=message[:500],
        details=dict(details or {}),
        dedupe_key=dedupe_key[:120],
        raised_at=now,
    )
    try:
        with session.begin_nested():
            session.add(alarm)
    except IntegrityError:
        return None  # another instance raised it first
    fields: dict[str, Any] = {
        "lock": lock.lock_id,
        "alarm": alarm.id,
        "alarm_kind": kind.value,
        "severity": alarm.severity.value,
        "message": alarm.message,
    }
    if task_id is not None:
        fields["task"] = task_id
    log.append("alarm", fields, now=now)
    _announce(session, alarm, now=now)
    return alarm


def list_alarms(
    session: Session,
    *,
    state: AlarmState | None = None,
    atm_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[LockAlarm], int]:
    query = select(LockAlarm)
    if state is not None:
        query = query.where(col(LockAlarm.state) == state)
    if atm_id is not None:
        query = query.where(col(LockAlarm.atm_id) == atm_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    ordered = query.order_by(col(LockAlarm.raised_at).desc(), col(LockAlarm.id).desc())
    return list(session.exec(ordered.offset(offset).limit(limit))), total


def acknowledge(
    session: Session, *, log: AuditLog, alarm_id: int, by: User, note: str, now: datetime
) -> LockAlarm:
    """A dispatcher has looked at the alarm; their note is logged with it."""
    alarm = session.exec(
        select(LockAlarm).where(col(LockAlarm.id) == alarm_id).with_for_update()
    ).first()
    if alarm is None:
        raise NotFound(f"No lock alarm with id {alarm_id}.")
    if alarm.state is AlarmState.ACKNOWLEDGED:
        raise Conflict(
            f"Alarm {alarm_id} was acknowledged by {alarm.acknowledged_by} at "
            f"{alarm.acknowledged_at:%Y-%m-%d %H:%M} UTC."
        )
    note = note.strip()
    if len(note) < 3:
        raise InvalidInput(
            "Say what was done about the alarm (at least 3 characters).", field="note"
        )
    lock = session.get(Lock, alarm.lock_pk)
    assert lock is not None
    alarm.state = AlarmState.ACKNOWLEDGED
    alarm.acknowledged_at = now
    alarm.acknowledged_by = by.username
    alarm.note = note[:1000]
    session.add(alarm)
    log.append(
        "alarm-acknowledged",
        {
            "lock": lock.lock_id,
            "alarm": alarm_id,
            "alarm_kind": alarm.kind.value,
            "by": by.username,
            "note": alarm.note,
        },
        now=now,
    )
    _announce(session, alarm, now=now)
    session.commit()
    return alarm


def open_count(session: Session) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(LockAlarm)
            .where(col(LockAlarm.state) == AlarmState.OPEN)
        ).one()
    )
