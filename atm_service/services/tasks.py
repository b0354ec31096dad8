"""Tasks: reading them, moving them through their lifecycle, and what each change records.

This module holds the mechanics every use case shares: locking a task row,
applying a transition of :mod:`atm_service.services.task_states` with its
timestamps and history entry, idempotency keys, deadlines from the contract,
where a task stands against them, and the public shapes the API, the pages
and the live updates show. The use cases themselves are in
:mod:`atm_service.services.dispatch` and :mod:`atm_service.services.dispatch_rules`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, overload

from sqlmodel import Session, col, func, select

from atm_service.errors import Conflict, NotFound
from atm_service.models.condition import AtmCondition
from atm_service.models.engineers import Engineer
from atm_service.models.fleet import Atm, Cassette, ServiceContract, Site
from atm_service.models.notifications import Audience
from atm_service.models.tasks import (
    HELD_STATES,
    OPEN_STATES,
    CountPublic,
    ReplenishmentCount,
    Risk,
    Task,
    TaskDetail,
    TaskEvent,
    TaskEventPublic,
    TaskKind,
    TaskPublic,
    TaskState,
    UnitKind,
)
from atm_service.models.users import Role, User
from atm_service.services import notifications
from atm_service.services.sla import ServiceHours
from atm_service.services.task_states import Action, Actor, check

# ATMs without a service contract get a best-effort, around-the-clock clock.
DEFAULT_RESPONSE_MINUTES = 8 * 60
DEFAULT_RESTORE_MINUTES = 24 * 60
# Lower priorities get proportionally more time than the contract's targets,
# which are written for an ATM that is down.
PRIORITY_FACTOR = {1: 1, 2: 1, 3: 2, 4: 4}
# A deadline is at risk when less than this share of its time is left.
AT_RISK_SHARE = 0.25


@dataclass(frozen=True)
class Doer:
    """Who makes a change: a logged-in user, or the service itself (``rules``, ``dispatch``)."""

    name: str
    actor: Actor
    user_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Doer:
        actor = Actor.ENGINEER if user.role is Role.ENGINEER else Actor.DISPATCHER
        return cls(name=user.username, actor=actor, user_id=user.id)

    @classmethod
    def system(cls, name: str = "dispatch") -> Doer:
        return cls(name=name, actor=Actor.SYSTEM)


@dataclass(frozen=True)
class Place:
    """An ATM with its site and contract: where a task is and whose clock it runs on."""

    atm: Atm
    site: Site
    contract: ServiceContract | None

    @property
    def hours(self) -> ServiceHours:
        if self.contract is None:
            return ServiceHours.weekly("1234567", "00:00", "24:00", self.site.timezone)
        return ServiceHours.weekly(
            self.contract.service_days,
            self.contract.service_start,
            self.contract.service_end,
            self.site.timezone,
        )

    @property
    def targets(self) -> tuple[int, int]:
        """(response, restore) in minutes of service time."""
        if self.contract is None:
            return DEFAULT_RESPONSE_MINUTES, DEFAULT_RESTORE_MINUTES
        return self.contract.response_minutes, self.contract.restore_minutes

    @property
    def address(self) -> str:
        parts = [self.site.address_line, f"{self.site.postal_code} {self.site.city}".strip()]
        return ", ".join(part for part in parts if part)


def open_key(atm_id: int, kind: TaskKind) -> str:
    return f"{atm_id}:{kind.value}"


def place_of(session: Session, *, atm_id: int) -> Place:
    atm = session.get(Atm, atm_id)
    if atm is None:
        raise NotFound(f"No ATM with id {atm_id}.")
    site = session.get(Site, atm.site_id)
    assert site is not None, "an ATM always has a site (foreign key)"
    contract = session.get(ServiceContract, atm.contract_id) if atm.contract_id else None
    return Place(atm=atm, site=site, contract=contract)


def deadlines(place: Place, *, opened_at: datetime, priority: int) -> tuple[datetime, datetime]:
    """Response and restore deadlines, counted in the contract's service hours."""
    response, restore = place.targets
    factor = PRIORITY_FACTOR.get(priority, 1)
    hours = place.hours
    return hours.add(opened_at, response * factor), hours.add(opened_at, restore * factor)


# --- reading -------------------------------------------------------------------------


@overload
def lock_task(session: Session, *, task_id: int) -> Task: ...


@overload
def lock_task(session: Session, *, task_id: int, skip_locked: bool) -> Task | None: ...


def lock_task(session: Session, *, task_id: int, skip_locked: bool = False) -> Task | None:
    """The task, locked for this transaction (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL).

    With ``skip_locked``, ``None`` when another transaction holds the lock.
    """
    task = session.exec(
        select(Task)
        .where(col(Task.id) == task_id)
        .with_for_update(key_share=True, skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    ).first()
    if task is None:
        if skip_locked and session.get(Task, task_id) is not None:
            return None
        raise NotFound(f"No task with id {task_id}.")
    return task


def get_task(session: Session, *, task_id: int, engineer: Engineer | None = None) -> Task:
    """A task; with ``engineer``, only one they hold (others do not exist for them)."""
    task = session.get(Task, task_id)
    if task is None or (engineer is not None and task.engineer_id != engineer.id):
        raise NotFound(f"No task with id {task_id}" + (" on your list." if engineer else "."))
    return task


def open_task(session: Session, *, atm_id: int, kind: TaskKind) -> Task | None:
    return session.exec(
        select(Task)
        .where(col(Task.open_key) == open_key(atm_id, kind))
        .execution_options(populate_existing=True)
    ).first()


def held_by(session: Session, *, engineer_id: int, lock: bool = False) -> list[Task]:
    """The tasks an engineer holds, by planned start."""
    query = (
        select(Task)
        .where(col(Task.engineer_id) == engineer_id, col(Task.state).in_(HELD_STATES))
        .order_by(col(Task.planned_start), col(Task.id))
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update()
    return list(session.exec(query))


def held_counts(session: Session) -> dict[int, int]:
    rows = session.exec(
        select(Task.engineer_id, func.count())
        .where(col(Task.state).in_(HELD_STATES), col(Task.engineer_id).is_not(None))
        .group_by(col(Task.engineer_id))
    )
    return {engineer_id: count for engineer_id, count in rows if engineer_id is not None}


def list_tasks(
    session: Session,
    *,
    states: Sequence[TaskState] | None = None,
    kind: TaskKind | None = None,
    region: str | None = None,
    atm_id: int | None = None,
    engineer_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Task], int]:
    query = select(Task)
    if region is not None:
        query = (
            query.join(Atm, col(Atm.id) == col(Task.atm_id))
            .join(Site, col(Site.id) == col(Atm.site_id))
            .where(col(Site.region) == region)
        )
    if states:
        query = query.where(col(Task.state).in_(list(states)))
    if kind is not None:
        query = query.where(col(Task.kind) == kind)
    if atm_id is not None:
        query = query.where(col(Task.atm_id) == atm_id)
    if engineer_id is not None:
        query = query.where(col(Task.engineer_id) == engineer_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    ordered = query.order_by(col(Task.response_due), col(Task.id)).offset(offset).limit(limit)
    return list(session.exec(ordered)), total


def history(session: Session, *, task_id: int) -> list[TaskEvent]:
    return list(
        session.exec(
            select(TaskEvent)
            .where(col(TaskEvent.task_id) == task_id)
            .order_by(col(TaskEvent.at), col(TaskEvent.id))
        )
    )


def counts_of(session: Session, *, task_id: int) -> list[ReplenishmentCount]:
    return list(
        session.exec(
            select(ReplenishmentCount)
            .where(col(ReplenishmentCount.task_id) == task_id)
            .order_by(col(ReplenishmentCount.unit_kind), col(ReplenishmentCount.unit_number))
        )
    )


def replenishments(
    session: Session, *, atm_id: int, start: datetime, end: datetime
) -> list[tuple[Task, list[ReplenishmentCount]]]:
    """Replenishments resolved at an ATM in ``[start, end)``, each with its counts.

    This is what settlement reads: per cassette and bin, the notes the engineer
    took out (to compare with the counters) and loaded (the new starting point).
    """
    found = list(
        session.exec(
            select(Task)
            .where(
                col(Task.atm_id) == atm_id,
                col(Task.kind) == TaskKind.REPLENISHMENT,
                col(Task.resolved_at) >= start,
                col(Task.resolved_at) < end,
            )
            .order_by(col(Task.resolved_at))
        )
    )
    return [(task, counts_of(session, task_id=task.id or 0)) for task in found]


def previous_work(session: Session, *, atm_id: int, before_task: int, limit: int = 3) -> list[Task]:
    """What was done at this ATM last time: its latest finished tasks."""
    return list(
        session.exec(
            select(Task)
            .where(
                col(Task.atm_id) == atm_id,
                col(Task.id) != before_task,
                col(Task.state).in_([TaskState.RESOLVED, TaskState.NEEDS_PARTS, TaskState.CLOSED]),
            )
            .order_by(col(Task.resolved_at).desc(), col(Task.id).desc())
            .limit(limit)
        )
    )


# --- where a task stands ---------------------------------------------------------------


def current_due(task: Task) -> tuple[datetime, str]:
    """The deadline that matters now and what it is for."""
    if task.arrived_at is None and task.state in OPEN_STATES:
        return task.response_due, "on site by"
    return task.restore_due, "restore by"


def _short_of_time(due: datetime, opened_at: datetime, now: datetime) -> bool:
    allowed = due - opened_at
    return allowed > timedelta(0) and (due - now) < allowed * AT_RISK_SHARE


def risk(task: Task, *, now: datetime) -> Risk:
    """Against its deadlines: on track, at risk, breached; or, once done, met or missed."""
    if task.state is TaskState.CANCELLED:
        return Risk.OK
    if task.state not in OPEN_STATES:
        late_response = task.arrived_at is not None and task.arrived_at > task.response_due
        late_restore = task.resolved_at is not None and task.resolved_at > task.restore_due
        return Risk.MISSED if late_response or late_restore else Risk.MET
    if task.arrived_at is None:
        if now > task.response_due or now > task.restore_due:
            return Risk.BREACHED
        expected = task.planned_start if task.planned_start is not None else now
        if expected > task.response_due or _short_of_time(task.response_due, task.opened_at, now):
            return Risk.AT_RISK
        return Risk.OK
    if now > task.restore_due:
        return Risk.BREACHED
    finish = task.planned_end if task.planned_end is not None else now
    if finish > task.restore_due or _short_of_time(task.restore_due, task.opened_at, now):
        return Risk.AT_RISK
    return Risk.OK


# --- public shapes ---------------------------------------------------------------------


def to_public(task: Task, *, place: Place, engineer_name: str | None, now: datetime) -> TaskPublic:
    assert task.id is not None
    due, due_label = current_due(task)
    return TaskPublic.model_validate(
        {
            **task.model_dump(exclude={"open_key", "created_at", "updated_at"}),
            "terminal_id": place.atm.terminal_id,
            "site_name": place.site.name,
            "address": place.address,
            "region": place.site.region,
            "site_timezone": place.site.timezone,
            "latitude": place.site.latitude,
            "longitude": place.site.longitude,
            "due": due,
            "due_label": due_label,
            "risk": risk(task, now=now),
            "engineer_name": engineer_name,
        }
    )


def engineer_names(session: Session, engineer_ids: Sequence[int]) -> dict[int, str]:
    if not engineer_ids:
        return {}
    rows = session.exec(
        select(Engineer.id, User.full_name)
        .join(User, col(User.id) == col(Engineer.user_id))
        .where(col(Engineer.id).in_(list(set(engineer_ids))))
    )
    return {engineer_id: name for engineer_id, name in rows if engineer_id is not None}


def publics(session: Session, tasks: Sequence[Task], *, now: datetime) -> list[TaskPublic]:
    """Public shapes for many tasks with a fixed number of queries."""
    atm_ids = list({task.atm_id for task in tasks})
    places: dict[int, Place] = {}
    if atm_ids:
        rows = session.exec(
            select(Atm, Site, ServiceContract)
            .join(Site, col(Site.id) == col(Atm.site_id))
            .join(
                ServiceContract,
                col(ServiceContract.id) == col(Atm.contract_id),
                isouter=True,
            )
            .where(col(Atm.id).in_(atm_ids))
        )
        for atm, site, contract in rows:
            assert atm.id is not None
            places[atm.id] = Place(atm=atm, site=site, contract=contract)
    names = engineer_names(session, [t.engineer_id for t in tasks if t.engineer_id is not None])
    return [
        to_public(
            task,
            place=places[task.atm_id],
            engineer_name=names.get(task.engineer_id) if task.engineer_id else None,
            now=now,
        )
        for task in tasks
    ]


def public(session: Session, task: Task, *, now: datetime) -> TaskPublic:
    return publics(session, [task], now=now)[0]


def detail(session: Session, task: Task, *, now: datetime) -> TaskDetail:
    assert task.id is not None
    return TaskDetail.model_validate(
        {
            **public(session, task, now=now).model_dump(),
            "events": [
                TaskEventPublic.model_validate(event.model_dump())
                for event in history(session, task_id=task.id)
            ],
            "counts": [
                CountPublic.model_validate(count.model_dump())
                for count in counts_of(session, task_id=task.id)
            ],
        }
    )


# --- changing ------------------------------------------------------------------------


def record(
    session: Session,
    task: Task,
    *,
    action: str,
    by: Doer,
    at: datetime,
    from_state: TaskState | None = None,
    to_state: TaskState | None = None,
    engineer_id: int | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> TaskEvent:
    assert task.id is not None
    event = TaskEvent(
        task_id=task.id,
        at=at,
        action=action,
        actor=by.name,
        actor_user_id=by.user_id,
        from_state=from_state,
        to_state=to_state,
        engineer_id=engineer_id,
        reason=reason,
        data=data,
        idempotency_key=idempotency_key,
    )
    session.add(event)
    return event


def replayed(session: Session, *, task_id: int, action: Action, key: str | None, by: Doer) -> bool:
    """True when ``key`` already did this action: the retry must change nothing.

    A key used for something else (another task, action or person) is a conflict.
    """
    if not key:
        return False
    event = session.exec(select(TaskEvent).where(col(TaskEvent.idempotency_key) == key)).first()
    if event is None:
        return False
    if event.task_id != task_id or event.action != action.value or event.actor != by.name:
        raise Conflict(
            "This idempotency key was already used for a different request; "
            "send a new key for a new action."
        )
    return True


def check_version(task: Task, expected: int | None) -> None:
    if expected is not None and expected != task.version:
        raise Conflict(
            f"Task {task.id} changed since you loaded it (it is now {task.state.label}, "
            f"version {task.version}); reload and try again."
        )


def check_transition(task: Task, action: Action, *, by: Doer) -> TaskState:
    """Refuse an illegal action before anything is changed."""
    return check(action, task.state, actor=by.actor, task_id=task.id)


_STAMPS = {
    TaskState.ASSIGNED: "assigned_at",
    TaskState.ACCEPTED: "accepted_at",
    TaskState.EN_ROUTE: "departed_at",
    TaskState.ON_SITE: "arrived_at",
    TaskState.RESOLVED: "resolved_at",
    TaskState.CLOSED: "closed_at",
}


def transition(
    session: Session,
    task: Task,
    action: Action,
    *,
    by: Doer,
    now: datetime,
    reason: str = "",
    data: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    engineer_id: int | None = None,
) -> TaskEvent:
    """Apply ``action`` to a locked task: state, timestamp, version, history."""
    source = task.state
    target = check(action, source, actor=by.actor, task_id=task.id)
    if target is TaskState.NEW:
        task.engineer_id = None
        task.planned_start = task.planned_end = None
        task.assigned_at = task.accepted_at = task.departed_at = None
    stamp = _STAMPS.get(target)
    if stamp is not None:
        setattr(task, stamp, now)
    if target is TaskState.ASSIGNED:
        task.accepted_at = task.departed_at = None
    if target not in OPEN_STATES:
        task.open_key = None
    task.state = target
    task.version += 1
    task.updated_at = now
    session.add(task)
    return record(
        session,
        task,
        action=action.value,
        by=by,
        at=now,
        from_state=source,
        to_state=target,
        engineer_id=engineer_id if engineer_id is not None else task.engineer_id,
        reason=reason,
        data=data,
        idempotency_key=idempotency_key,
    )


def announce(
    session: Session,
    task: Task,
    *,
    now: datetime,
    previous_engineer_id: int | None = None,
    board: bool = True,
) -> None:
    """Queue live updates for a change: the holder's list, a former holder's, the board."""
    assert task.id is not None
    session.flush()
    shown = public(session, task, now=now)
    payload = shown.model_dump(mode="json")
    holders: list[tuple[int, bool]] = []
    if task.engineer_id is not None and task.state in HELD_STATES:
        holders.append((task.engineer_id, False))
    elif task.engineer_id is not None:
        holders.append((task.engineer_id, True))
    if previous_engineer_id is not None and previous_engineer_id != task.engineer_id:
        holders.append((previous_engineer_id, True))
    for engineer_id, removed in holders:
        engineer = session.get(Engineer, engineer_id)
        if engineer is None:
            continue
        notifications.publish(
            session,
            audience=Audience.ENGINEER,
            user_id=engineer.user_id,
            task_id=task.id,
            payload={**payload, "removed": removed},
            now=now,
        )
    if board:
        notifications.publish(
            session,
            audience=Audience.BOARD,
            task_id=task.id,
            payload={**payload, "removed": task.state not in OPEN_STATES},
            now=now,
        )


# --- what a task's page shows ---------------------------------------------------------

XFS_STATUS_NAMES = {
    0: "ok",
    1: "full",
    2: "high",
    3: "low",
    4: "empty",
    5: "inoperative",
    6: "missing",
    7: "no value",
    8: "no reference",
    9: "manipulated",
}
_BIN_TYPES = {UnitKind.REJECT_BIN: 2, UnitKind.RETRACT_BIN: 6}


@dataclass(frozen=True)
class UnitView:
    """A cassette or bin: configuration, last reported state, and the counts entered."""

    kind: UnitKind
    number: int
    label: str
    denomination: int | None
    currency: str
    capacity: int | None
    status: str | None
    count: int | None
    removed: int | None
    loaded: int | None

    @property
    def field(self) -> str:
        return f"c{self.number}" if self.kind is UnitKind.CASSETTE else self.kind.value


@dataclass(frozen=True)
class TaskView:
    task: TaskDetail
    place: Place
    units: list[UnitView]
    units_reported_at: datetime | None
    previous: list[TaskPublic]


def view(session: Session, task: Task, *, now: datetime) -> TaskView:
    assert task.id is not None
    place = place_of(session, atm_id=task.atm_id)
    condition = session.get(AtmCondition, task.atm_id)
    reported = condition.cash_units if condition is not None else []
    counts = {(c.unit_kind, c.unit_number): c for c in counts_of(session, task_id=task.id)}
    cassettes = session.exec(
        select(Cassette).where(col(Cassette.atm_id) == task.atm_id).order_by(col(Cassette.number))
    )
    units = []
    for cassette in cassettes:
        unit = next(
            (u for u in reported if int(u.get("usNumber", 0)) == cassette.number),
            None,
        )
        counted = counts.get((UnitKind.CASSETTE, cassette.number))
        units.append(
            UnitView(
                kind=UnitKind.CASSETTE,
                number=cassette.number,
                label=f"Cassette {cassette.number}",
                denomination=cassette.denomination,
                currency=cassette.currency,
                capacity=cassette.capacity,
                status=XFS_STATUS_NAMES.get(int(unit.get("usStatus", 0))) if unit else None,
                count=int(unit.get("ulCount", 0)) if unit else None,
                removed=counted.removed if counted else None,
                loaded=counted.loaded if counted else None,
            )
        )
    for kind, xfs_type in _BIN_TYPES.items():
        unit = next((u for u in reported if int(u.get("usType", 0)) == xfs_type), None)
        counted = counts.get((kind, 0))
        units.append(
            UnitView(
                kind=kind,
                number=0,
                label=kind.value.replace("_", " ").capitalize(),
                denomination=None,
                currency=place.atm.currency,
                capacity=(
                    place.atm.reject_bin_capacity
                    if kind is UnitKind.REJECT_BIN
                    else place.atm.retract_bin_capacity
                ),
                status=XFS_STATUS_NAMES.get(int(unit.get("usStatus", 0))) if unit else None,
                count=int(unit.get("ulCount", 0)) if unit else None,
                removed=counted.removed if counted else None,
                loaded=None,
            )
        )
    return TaskView(
        task=detail(session, task, now=now),
        place=place,
        units=units,
        units_reported_at=condition.cash_units_at if condition is not None else None,
        previous=publics(
            session, previous_work(session, atm_id=task.atm_id, before_task=task.id), now=now
        ),
    )
