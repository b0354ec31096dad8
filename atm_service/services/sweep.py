"""The periodic dispatch sweep: waiting tasks, deadlines at risk, old live updates.

Every instance runs it (see :mod:`atm_service.sweeper`); each task is handled in
its own transaction under its row lock, so instances running it at once do
each thing once:

* tasks still ``new`` (nobody could take them, or an engineer declined) are
  offered again, most urgent first: engineers come on shift, queues drain;
* an open task whose deadline is at risk is escalated to level 1, one past
  its deadline to level 2, each once, with a history entry and a live update
  to the board and the engineer;
* live updates older than an hour are pruned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from atm_service.errors import ServiceError
from atm_service.models.tasks import OPEN_STATES, Risk, Task, TaskState
from atm_service.services import assignment, notifications, tasks
from atm_service.services.tasks import Doer

logger = logging.getLogger("atm_service.dispatch")

ESCALATION_LEVEL = {Risk.AT_RISK: 1, Risk.BREACHED: 2}
KEEP_NOTIFICATIONS = timedelta(hours=1)


@dataclass(frozen=True)
class SweepResult:
    assigned: int
    escalated: int
    pruned: int


def escalate(session: Session, *, task_id: int, now: datetime) -> bool:
    """Raise a task's escalation level to where its risk now is; True when it rose.

    A task another transaction holds (another instance's sweep) is left to it.
    """
    task = tasks.lock_task(session, task_id=task_id, skip_locked=True)
    if task is None:
        session.commit()
        return False
    level = ESCALATION_LEVEL.get(tasks.risk(task, now=now), 0) if task.state in OPEN_STATES else 0
    if level <= task.escalation_level:
        session.commit()
        return False
    due, label = tasks.current_due(task)
    task.escalation_level = level
    task.escalated_at = now
    session.add(task)
    reason = (
        f"Deadline ({label} {due:%Y-%m-%d %H:%M} UTC) breached"
        if level == 2
        else f"Deadline ({label} {due:%Y-%m-%d %H:%M} UTC) at risk"
    )
    tasks.record(
        session,
        task,
        action="escalated",
        by=Doer.system(),
        at=now,
        reason=reason,
        data={"level": level},
    )
    tasks.announce(session, task, now=now)
    session.commit()
    return True


def run(sessions: Callable[[], Session], *, now: datetime, speed_kmh: float) -> SweepResult:
    with sessions() as session:
        waiting = list(
            session.exec(
                select(Task.id)
                .where(col(Task.state) == TaskState.NEW)
                .order_by(col(Task.response_due), col(Task.id))
                .limit(200)
            )
        )
        candidates = list(
            session.exec(
                select(Task)
                .where(col(Task.state).in_(OPEN_STATES), col(Task.escalation_level) < 2)
                .order_by(col(Task.id))
            )
        )
        to_escalate = [
            task.id
            for task in candidates
            if task.id is not None
            and ESCALATION_LEVEL.get(tasks.risk(task, now=now), 0) > task.escalation_level
        ]
    assigned = escalated = 0
    for task_id in waiting:
        if task_id is None:
            continue
        with sessions() as session:
            try:
                task = assignment.auto_assign(
                    session, task_id=task_id, now=now, speed_kmh=speed_kmh, skip_locked=True
                )
            except ServiceError:
                logger.exception("could not assign task", extra={"task_id": task_id})
                continue
            assigned += task.state is TaskState.ASSIGNED
    for task_id in to_escalate:
        with sessions() as session:
            escalated += escalate(session, task_id=task_id, now=now)
    with sessions() as session:
        pruned = notifications.prune(session, older_than=KEEP_NOTIFICATIONS, now=now)
    return SweepResult(assigned=assigned, escalated=escalated, pruned=pruned)
