"""The figures an operator watches, read from the database when Prometheus scrapes.

Everything here is the database's state at ``now``, so every service instance
reports the same figures whichever one is scraped:

- per ATM that has ever reported: seconds since its last signed request, last
  journal bytes and last heartbeat, and the age and size of what its agent has
  not uploaded yet (as its last heartbeat said);
- open tasks by state, and open tasks by SLA risk (on track, at risk, breached);
- reconciliation runs by state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from atm_service.models.devices import AtmState
from atm_service.models.fleet import Atm
from atm_service.models.reconciliation import ReconRun, RunState
from atm_service.models.tasks import OPEN_STATES, Risk, Task, TaskState
from atm_service.services import tasks

OPEN_RISKS = (Risk.OK, Risk.AT_RISK, Risk.BREACHED)


@dataclass(frozen=True)
class AtmIngest:
    """How far behind one ATM's uploads are, in seconds (``None``: never happened)."""

    terminal_id: str
    since_seen_s: float
    since_journal_s: float | None
    since_heartbeat_s: float | None
    backlog_age_s: int | None
    backlog_bytes: int


@dataclass(frozen=True)
class Snapshot:
    atms: list[AtmIngest] = field(default_factory=list)
    open_tasks: dict[TaskState, int] = field(default_factory=dict)
    sla_risk: dict[Risk, int] = field(default_factory=dict)
    recon_runs: dict[RunState, int] = field(default_factory=dict)


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def atm_ingest(session: Session, *, now: datetime) -> list[AtmIngest]:
    rows = session.execute(
        sa.select(
            col(Atm.terminal_id),
            col(AtmState.last_seen_at),
            col(AtmState.last_journal_at),
            col(AtmState.last_heartbeat_at),
            col(AtmState.ingest_lag_s),
            col(AtmState.backlog_bytes),
        )
        .join(AtmState, col(AtmState.atm_id) == col(Atm.id))
        .order_by(col(Atm.terminal_id))
    ).all()
    return [
        AtmIngest(
            terminal_id=terminal_id,
            since_seen_s=_age(now, seen) or 0.0,
            since_journal_s=_age(now, journal),
            since_heartbeat_s=_age(now, heartbeat),
            backlog_age_s=lag,
            backlog_bytes=backlog or 0,
        )
        for terminal_id, seen, journal, heartbeat, lag, backlog in rows
    ]


def open_tasks(session: Session) -> dict[TaskState, int]:
    counts = dict.fromkeys(sorted(OPEN_STATES), 0)
    rows = session.exec(
        select(Task.state, func.count())
        .where(col(Task.state).in_(list(OPEN_STATES)))
        .group_by(col(Task.state))
    ).all()
    counts.update({TaskState(state): count for state, count in rows})
    return counts


def sla_risk(session: Session, *, now: datetime) -> dict[Risk, int]:
    """Open tasks by where they stand against their deadlines."""
    found = session.exec(select(Task).where(col(Task.state).in_(list(OPEN_STATES)))).all()
    counted = Counter(tasks.risk(task, now=now) for task in found)
    return {risk: counted.get(risk, 0) for risk in OPEN_RISKS}


def recon_runs(session: Session) -> dict[RunState, int]:
    counts = dict.fromkeys(RunState, 0)
    rows = session.exec(select(ReconRun.state, func.count()).group_by(col(ReconRun.state))).all()
    counts.update({RunState(state): count for state, count in rows})
    return counts


def snapshot(session: Session, *, now: datetime) -> Snapshot:
    """Every figure, read in one transaction."""
    return Snapshot(
        atms=atm_ingest(session, now=now),
        open_tasks=open_tasks(session),
        sla_risk=sla_risk(session, now=now),
        recon_runs=recon_runs(session),
    )


def database_answers(session: Session) -> None:
    """Raise unless the database answers a trivial query."""
    session.execute(sa.text("SELECT 1"))
