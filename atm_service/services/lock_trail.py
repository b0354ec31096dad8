"""A lock's own trail, downloaded at the lock, brought into the service.

:func:`import_trail` reads the JSON lines a lock downloads (``atm-lock-trail``),
adds its records not seen before to the lock-access log (wrong codes, lockouts,
duress, openings, closings), then compares the lock's trail with the log
(:func:`lockctl.compare_trail`). Critical findings raise alarms: the lock opened
for a code the service never issued, or with a force-closed code after it was
closed, or the log accepted a seal the lock never showed; lockouts and duress
recorded by the lock raise theirs too.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import Session, col, select

from atm_service.errors import InvalidInput
from atm_service.models.locks import AlarmKind, LockLogEntry, TrailDiscrepancy, TrailImportOut
from atm_service.models.users import User
from atm_service.services import lock_alarms
from atm_service.services.lock_secrets import LockSecrets
from atm_service.services.locks import lock_for_atm
from lockctl import ProvisioningError, compare_trail, entry_for_event
from lockctl.firmware import EventKind
from lockctl.trail import Severity, parse_trail

MAX_TRAIL_BYTES = 1024 * 1024

_ALARM_FOR = {
    "opened-without-issue": AlarmKind.OPENED_WITHOUT_CODE,
    "opened-after-force-close": AlarmKind.OPENED_AFTER_FORCE_CLOSE,
    "seal-not-shown": AlarmKind.SEAL_NOT_SHOWN,
    "duress-not-logged": AlarmKind.DURESS,
}


def import_trail(
    session: Session,
    *,
    secrets: LockSecrets,
    atm_id: int,
    data: bytes,
    by: User,
    now: datetime,
) -> TrailImportOut:
    secrets.check()
    if len(data) > MAX_TRAIL_BYTES:
        raise InvalidInput(
            f"A trail file is limited to {MAX_TRAIL_BYTES // 1024} KiB; download a shorter one.",
            field="trail",
        )
    lock = lock_for_atm(session, atm_id=atm_id, for_update=True)
    try:
        lock_id, events = parse_trail(data)
    except ProvisioningError as exc:
        raise InvalidInput(f"The trail file is not readable: {exc}.", field="trail") from None
    if lock_id != lock.lock_id:
        raise InvalidInput(
            f"The trail is of lock {lock_id}, but this ATM's lock is {lock.lock_id}.",
            field="trail",
        )
    log = secrets.audit_log(session)
    fresh = sorted((e for e in events if e.seq >= lock.trail_next_seq), key=lambda e: e.seq)
    raised = []
    for event in fresh:
        kind, fields = entry_for_event(lock_id, event)
        log.append(kind, {**fields, "by": by.username}, now=now)
        if event.kind is EventKind.LOCKOUT:
            alarm = lock_alarms.raise_alarm(
                session,
                log=log,
                lock=lock,
                kind=AlarmKind.LOCKOUT,
                message=(
                    f"Lock {lock_id} recorded a lockout after wrong codes at "
                    f"{event.at:%Y-%m-%d %H:%M} UTC (trail record {event.seq})."
                ),
                now=now,
                dedupe_key=f"trail:{lock_id}:{event.seq}:lockout",
                details={"lock_seq": event.seq},
            )
            raised.append(alarm)
        elif event.kind is EventKind.DURESS:
            alarm = lock_alarms.raise_alarm(
                session,
                log=log,
                lock=lock,
                kind=AlarmKind.DURESS,
                message=(
                    f"Lock {lock_id} recorded a duress opening by user(s) "
                    f"{', '.join(str(u) for u in event.users)} at {event.at:%Y-%m-%d %H:%M} UTC."
                ),
                now=now,
                dedupe_key=lock_alarms.duress_key(lock_id, event.window, event.users),
                details={"lock_seq": event.seq},
            )
            raised.append(alarm)
    if fresh:
        lock.trail_next_seq = fresh[-1].seq + 1
        session.add(lock)
    session.flush()
    entries = [
        json.loads(line)
        for line in session.exec(
            select(LockLogEntry.line)
            .where(col(LockLogEntry.lock_id) == lock_id)
            .order_by(col(LockLogEntry.position))
        )
    ]
    found = compare_trail(lock_id, events, entries)
    for discrepancy in found:
        alarm_kind = _ALARM_FOR.get(discrepancy.kind)
        if discrepancy.severity is not Severity.CRITICAL or alarm_kind is None:
            continue
        where = discrepancy.lock_seq if discrepancy.lock_seq is not None else discrepancy.log_index
        raised.append(
            lock_alarms.raise_alarm(
                session,
                log=log,
                lock=lock,
                kind=alarm_kind,
                message=f"Lock {lock_id}: {discrepancy.message}.",
                now=now,
                dedupe_key=f"trail:{lock_id}:{where}:{discrepancy.kind}",
                details={"lock_seq": discrepancy.lock_seq, "log_index": discrepancy.log_index},
            )
        )
    session.commit()
    alarms = [alarm for alarm in raised if alarm is not None]
    return TrailImportOut(
        lock_id=lock_id,
        records=len(events),
        imported=len(fresh),
        discrepancies=[
            TrailDiscrepancy(
                severity=d.severity.value,
                kind=d.kind,
                message=d.message,
                lock_seq=d.lock_seq,
                log_index=d.log_index,
            )
            for d in found
        ],
        alarms=lock_alarms.publics(session, alarms),
    )
