"""Publishing live updates: rows in the outbox, written with the change they announce.

:func:`publish` adds a :class:`DispatchNotification` to the caller's
transaction, so an update is delivered exactly when the change it describes
is committed, and never for a change that was rolled back. On PostgreSQL it
also sends ``NOTIFY atm_dispatch``, which wakes every instance's poller at
commit instead of at its next poll.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, delete, select

from atm_service.models.notifications import Audience, DispatchNotification

CHANNEL = "atm_dispatch"
_NOTIFIED = "atm_dispatch_notified"


def publish(
    session: Session,
    *,
    audience: Audience,
    payload: dict[str, Any],
    now: datetime,
    user_id: int | None = None,
    task_id: int | None = None,
) -> None:
    if audience is Audience.ENGINEER and user_id is None:
        raise ValueError("an engineer notification needs the engineer's user id")
    session.add(
        DispatchNotification(
            created_at=now, audience=audience, user_id=user_id, task_id=task_id, payload=payload
        )
    )
    # One NOTIFY per transaction is enough to wake the pollers.
    transaction = session.get_transaction()
    if session.get_bind().dialect.name == "postgresql" and (
        session.info.get(_NOTIFIED) is not transaction or transaction is None
    ):
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        session.info[_NOTIFIED] = transaction


def since(
    session: Session,
    *,
    audience: Audience,
    user_id: int | None,
    after_id: int,
    limit: int = 500,
) -> list[DispatchNotification]:
    """Updates for one audience (and engineer) after ``after_id``: what a page missed
    while it reconnected."""
    query = select(DispatchNotification).where(
        col(DispatchNotification.id) > after_id,
        col(DispatchNotification.audience) == audience,
    )
    if audience is Audience.ENGINEER:
        query = query.where(col(DispatchNotification.user_id) == user_id)
    return list(session.exec(query.order_by(col(DispatchNotification.id)).limit(limit)))


def prune(session: Session, *, older_than: timedelta, now: datetime) -> int:
    """Remove delivered updates older than ``older_than``; returns how many."""
    result = session.exec(
        delete(DispatchNotification).where(col(DispatchNotification.created_at) < now - older_than)
    )
    session.commit()
    return int(result.rowcount or 0)
