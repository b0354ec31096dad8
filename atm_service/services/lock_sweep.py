"""The periodic lock sweep: close seals not reported in time raise a "seal overdue" alarm.

A code cycle's seal is due ``lock_seal_grace_minutes`` after the code stops opening
the lock (its window, lookback and clock skew). Every instance runs this with the
dispatch sweep (:mod:`atm_service.sweeper`); each cycle is handled in its own
transaction under its row lock (``SKIP LOCKED``), and the alarm's unique cause
keeps instances from raising it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session, col, select

from atm_service.errors import NotConfigured
from atm_service.models.fleet import Atm
from atm_service.models.locks import AlarmKind, IssuanceState, Lock, LockIssuance
from atm_service.services import lock_alarms
from atm_service.services.lock_secrets import LockSecrets

logger = logging.getLogger("atm_service.locks")


def run(sessions: Callable[[], Session], *, secrets: LockSecrets, now: datetime) -> int:
    """Raise the alarms that are due; returns how many were raised."""
    try:
        secrets.check()
    except NotConfigured:
        return 0
    with sessions() as session:
        due = list(
            session.exec(
                select(LockIssuance.id).where(
                    col(LockIssuance.state) == IssuanceState.OUTSTANDING,
                    col(LockIssuance.seal_due) < now,
                    col(LockIssuance.overdue_alarmed).is_(False),
                )
            )
        )
    raised = 0
    for cycle_id in due:
        with sessions() as session:
            cycle = session.exec(
                select(LockIssuance)
                .where(col(LockIssuance.id) == cycle_id)
                .with_for_update(skip_locked=True)
            ).first()
            if (
                cycle is None
                or cycle.state is not IssuanceState.OUTSTANDING
                or cycle.overdue_alarmed
            ):
                session.commit()
                continue
            lock = session.get(Lock, cycle.lock_pk)
            assert lock is not None
            assert cycle.seal_due is not None
            atm = session.get(Atm, lock.atm_id)
            assert atm is not None
            alarm = lock_alarms.raise_alarm(
                session,
                log=secrets.audit_log(session),
                lock=lock,
                kind=AlarmKind.SEAL_OVERDUE,
                message=(
                    f"The close seal of lock {lock.lock_id} (ATM {atm.terminal_id}, task "
                    f"{cycle.task_id}) was due by {cycle.seal_due:%Y-%m-%d %H:%M} UTC and has "
                    f"not been reported (code for {cycle.requested_by})."
                ),
                now=now,
                dedupe_key=f"seal-overdue:{cycle.id}",
                task_id=cycle.task_id,
                issuance_id=cycle.id,
            )
            cycle.overdue_alarmed = True
            session.add(cycle)
            session.commit()
            raised += alarm is not None
    if raised:
        logger.info("lock sweep", extra={"seal_overdue": raised})
    return raised
