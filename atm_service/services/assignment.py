"""Choosing the engineer for a task, and assigning safely when several instances do it at once.

The estimate for each engineer who has the task's skill:

* they are free when the last task they hold is planned to end (or now);
* they travel from there (or from their current location when they hold
  nothing) to the ATM by great-circle distance at the configured road speed,
  plus a few minutes to get into the site: that is the estimated arrival;
* they must be on shift at that arrival;
* the cost is the minutes until arrival, plus three times every minute the
  arrival would be past the response deadline (so slack against the SLA
  weighs in, and a late arrival is chosen only when nobody can be on time),
  plus half an hour for an engineer from another region.

The cheapest engineer gets the task with a planned window from arrival to
arrival plus the typical work time of its kind.

Concurrency: the task row is locked first (``SELECT ... FOR NO KEY UPDATE``),
so its state is checked and changed by one transaction at a time and a task
never goes to two engineers. Then the chosen engineer's row is locked and
their queue re-read under that lock before the window is placed after it, so
two assignments to one engineer are serialised and never overlap. Each
candidate is tried inside a savepoint, whose rollback releases the engineer's
lock again: a transaction never holds one engineer while waiting for another,
so assignments cannot deadlock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from atm_service.errors import Conflict, InvalidInput, NotFound
from atm_service.models.engineers import Engineer
from atm_service.models.fleet import Atm, Site
from atm_service.models.tasks import HELD_STATES, Task, TaskEvent, TaskKind, TaskState
from atm_service.services import tasks
from atm_service.services.sla import ServiceHours
from atm_service.services.task_states import Action, check
from atm_service.services.tasks import Doer, Place

# Typical time on site per kind of task, in minutes.
WORK_MINUTES = {TaskKind.FLM: 45, TaskKind.SLM: 120, TaskKind.REPLENISHMENT: 60}
ACCESS_MINUTES = 5  # parking, reaching the ATM, signing in at the site
LATENESS_WEIGHT = 3.0
OTHER_REGION_MINUTES = 30.0
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def shift_of(engineer: Engineer) -> ServiceHours:
    return ServiceHours.weekly(
        engineer.shift_days, engineer.shift_start, engineer.shift_end, engineer.timezone
    )


@dataclass(frozen=True)
class Plan:
    """One engineer's estimate for one task."""

    engineer_id: int
    free_at: datetime
    travel_minutes: float
    eta: datetime
    end: datetime
    on_shift: bool
    in_region: bool
    late_minutes: float
    held: int
    cost: float

    def describe(self) -> dict[str, object]:
        return {
            "eta": self.eta.isoformat(),
            "travel_minutes": round(self.travel_minutes, 1),
            "queue_free_at": self.free_at.isoformat(),
            "late_minutes": round(self.late_minutes, 1),
            "in_region": self.in_region,
            "held_tasks": self.held,
            "cost": round(self.cost, 1),
        }


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


@dataclass(frozen=True)
class Queue:
    """What an engineer holds, as assignment needs it: how many, when the last ends, where."""

    held: int = 0
    last_end: datetime | None = None
    last_latitude: float | None = None
    last_longitude: float | None = None


def estimate(
    engineer: Engineer, queue: Queue, task: Task, place: Place, *, now: datetime, speed_kmh: float
) -> Plan:
    """Where ``engineer`` would fit ``task``: after their queue, at the ATM, for the work time."""
    assert engineer.id is not None
    free_at = now
    origin = (engineer.latitude, engineer.longitude)
    if queue.last_end is not None and queue.last_end >= now:
        free_at = queue.last_end
    if queue.held and queue.last_latitude is not None and queue.last_longitude is not None:
        origin = (queue.last_latitude, queue.last_longitude)
    distance = haversine_km(origin[0], origin[1], place.site.latitude, place.site.longitude)
    travel = distance / speed_kmh * 60 + ACCESS_MINUTES
    eta = free_at + timedelta(minutes=travel)
    end = eta + timedelta(minutes=WORK_MINUTES[task.kind])
    late = max(0.0, _minutes(eta - task.response_due))
    in_region = engineer.home_region == place.site.region
    cost = (
        _minutes(eta - now) + LATENESS_WEIGHT * late + (0.0 if in_region else OTHER_REGION_MINUTES)
    )
    return Plan(
        engineer_id=engineer.id,
        free_at=free_at,
        travel_minutes=travel,
        eta=eta,
        end=end,
        on_shift=shift_of(engineer).contains(eta),
        in_region=in_region,
        late_minutes=late,
        held=queue.held,
        cost=cost,
    )


def queues(
    session: Session, engineer_ids: Sequence[int], *, besides: int | None = None
) -> dict[int, Queue]:
    """Each engineer's queue in one query (plain columns, no ORM objects: this is hot).

    ``besides`` leaves one task out (the one being placed, when it is already theirs).
    """
    found: dict[int, Queue] = {engineer_id: Queue() for engineer_id in engineer_ids}
    if not engineer_ids:
        return found
    query = (
        select(Task.engineer_id, Task.planned_end, Site.latitude, Site.longitude)
        .join(Atm, col(Atm.id) == col(Task.atm_id))
        .join(Site, col(Site.id) == col(Atm.site_id))
        .where(col(Task.engineer_id).in_(list(engineer_ids)), col(Task.state).in_(HELD_STATES))
    )
    if besides is not None:
        query = query.where(col(Task.id) != besides)
    for engineer_id, planned_end, latitude, longitude in session.exec(query):
        if engineer_id is None:
            continue
        queue = found[engineer_id]
        later = queue.last_end is None or (
            planned_end is not None and planned_end >= queue.last_end
        )
        found[engineer_id] = Queue(
            held=queue.held + 1,
            last_end=planned_end if later else queue.last_end,
            last_latitude=latitude if later else queue.last_latitude,
            last_longitude=longitude if later else queue.last_longitude,
        )
    return found


def plan_for(
    session: Session,
    engineer: Engineer,
    task: Task,
    place: Place,
    *,
    now: datetime,
    speed_kmh: float,
) -> Plan:
    """The estimate for one engineer, from their queue as it is in the database now."""
    assert engineer.id is not None
    queue = queues(session, [engineer.id], besides=task.id)[engineer.id]
    return estimate(engineer, queue, task, place, now=now, speed_kmh=speed_kmh)


def decliners(session: Session, *, task_id: int) -> set[int]:
    rows = session.exec(
        select(TaskEvent.engineer_id).where(
            col(TaskEvent.task_id) == task_id, col(TaskEvent.action) == Action.DECLINE.value
        )
    )
    return {engineer_id for engineer_id in rows if engineer_id is not None}


def candidates(
    session: Session,
    task: Task,
    place: Place,
    *,
    now: datetime,
    speed_kmh: float,
    exclude: set[int] | None = None,
) -> list[Plan]:
    """Engineers who could take ``task`` (skill, active, on shift at arrival), best first."""
    assert task.id is not None
    skip = (exclude or set()) | decliners(session, task_id=task.id)
    engineers = [
        engineer
        for engineer in session.exec(select(Engineer).where(col(Engineer.active).is_(True)))
        if engineer.id is not None
        and engineer.id not in skip
        and engineer.has_skill(task.kind.skill)
    ]
    held = queues(
        session,
        [engineer.id for engineer in engineers if engineer.id is not None],
        besides=task.id,
    )
    plans = []
    for engineer in engineers:
        assert engineer.id is not None
        plan = estimate(engineer, held[engineer.id], task, place, now=now, speed_kmh=speed_kmh)
        if plan.on_shift:
            plans.append(plan)
    return sorted(plans, key=lambda p: (p.cost, p.held, p.engineer_id))


def _lock_engineer(session: Session, engineer_id: int) -> Engineer | None:
    return session.exec(
        select(Engineer)
        .where(col(Engineer.id) == engineer_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).first()


def _place(session: Session, task: Task, plan: Plan) -> None:
    task.engineer_id = plan.engineer_id
    task.planned_start = plan.eta
    task.planned_end = plan.end


def _try_best(
    session: Session,
    task: Task,
    place: Place,
    *,
    now: datetime,
    speed_kmh: float,
    exclude: set[int] | None = None,
) -> Plan | None:
    """Lock and place the best engineer who is still free to take the task."""
    for plan in candidates(session, task, place, now=now, speed_kmh=speed_kmh, exclude=exclude):
        savepoint = session.begin_nested()
        engineer = _lock_engineer(session, plan.engineer_id)
        if engineer is None or not engineer.active or not engineer.has_skill(task.kind.skill):
            savepoint.rollback()
            continue
        fresh = plan_for(session, engineer, task, place, now=now, speed_kmh=speed_kmh)
        if not fresh.on_shift:
            savepoint.rollback()
            continue
        _place(session, task, fresh)
        session.add(task)
        savepoint.commit()  # releases the savepoint; the lock stays until the end
        return fresh
    return None


def offer(
    session: Session, task: Task, *, now: datetime, speed_kmh: float, by: Doer | None = None
) -> bool:
    """Assign a new, locked task to the best engineer inside the caller's transaction.

    True when someone got it; otherwise it stays new (the board shows it, the
    periodic sweep tries again) and its history says why, once. Nothing is
    committed: the rules open and assign a task in one transaction.
    """
    by = by or Doer.system()
    if task.state is not TaskState.NEW:
        return False
    place = tasks.place_of(session, atm_id=task.atm_id)
    plan = _try_best(session, task, place, now=now, speed_kmh=speed_kmh)
    if plan is None:
        _note_waiting(session, task, now=now, by=by)
        return False
    tasks.transition(
        session, task, Action.ASSIGN, by=by, now=now, data=plan.describe(), reason="best estimate"
    )
    tasks.announce(session, task, now=now)
    return True


def auto_assign(
    session: Session,
    *,
    task_id: int,
    now: datetime,
    speed_kmh: float,
    by: Doer | None = None,
    skip_locked: bool = False,
) -> Task:
    """Give a new task to the best engineer and commit; a task no longer new is left as it is.

    With ``skip_locked`` a task another transaction is working on is skipped
    (the periodic sweep on several instances) instead of waited for.
    """
    task = tasks.lock_task(session, task_id=task_id, skip_locked=skip_locked)
    if task is not None:
        offer(session, task, now=now, speed_kmh=speed_kmh, by=by)
    session.commit()
    return task if task is not None else tasks.get_task(session, task_id=task_id)


def place_planned(
    session: Session,
    task: Task,
    *,
    engineer_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
    by: Doer,
    reason: str,
) -> bool:
    """Give a new, locked task to the engineer a planned route names, for the route's window.

    Used for visits planned ahead of time (cash replenishment routes), whose window is
    not "after the engineer's queue now". False (nothing changed) when the engineer is
    gone, inactive or lacks the skill; the task then waits like any other.
    """
    if task.state is not TaskState.NEW:
        return False
    engineer = _lock_engineer(session, engineer_id)
    if engineer is None or not engineer.active or not engineer.has_skill(task.kind.skill):
        return False
    task.engineer_id = engineer_id
    task.planned_start = start
    task.planned_end = end
    session.add(task)
    tasks.transition(
        session,
        task,
        Action.ASSIGN,
        by=by,
        now=now,
        reason=reason,
        data={"eta": start.isoformat(), "planned_end": end.isoformat(), "planned_route": True},
    )
    tasks.announce(session, task, now=now)
    return True


def _note_waiting(session: Session, task: Task, *, now: datetime, by: Doer) -> None:
    assert task.id is not None
    last = session.exec(
        select(TaskEvent)
        .where(col(TaskEvent.task_id) == task.id)
        .order_by(col(TaskEvent.id).desc())
        .limit(1)
    ).first()
    if last is not None and last.action == "waiting":
        return
    tasks.record(
        session,
        task,
        action="waiting",
        by=by,
        at=now,
        reason=f"No active engineer with the {task.kind.skill.value} skill is on shift "
        "at their arrival time; the task waits for one.",
    )
    tasks.announce(session, task, now=now)


def _chosen(
    session: Session, task: Task, place: Place, engineer_id: int, *, now: datetime, speed: float
) -> Plan:
    """A dispatcher's choice: the engineer must exist, be active and have the skill.

    Shift and region are the dispatcher's call; the window still goes after the
    engineer's queue, under their lock.
    """
    engineer = _lock_engineer(session, engineer_id)
    if engineer is None:
        raise InvalidInput(f"engineer_id {engineer_id} names no engineer.", field="engineer_id")
    if not engineer.active:
        raise InvalidInput("That engineer is not active.", field="engineer_id")
    if not engineer.has_skill(task.kind.skill):
        raise InvalidInput(
            f"That engineer lacks the {task.kind.skill.value} skill this task needs.",
            field="engineer_id",
        )
    plan = plan_for(session, engineer, task, place, now=now, speed_kmh=speed)
    _place(session, task, plan)
    return plan


def assign(
    session: Session,
    *,
    task_id: int,
    engineer_id: int | None,
    by: Doer,
    now: datetime,
    speed_kmh: float,
    reason: str = "",
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Task:
    """Assign a new task: to the named engineer, or to the best one."""
    task = tasks.lock_task(session, task_id=task_id)
    if tasks.replayed(session, task_id=task_id, action=Action.ASSIGN, key=idempotency_key, by=by):
        return task
    tasks.check_version(task, version)
    check(Action.ASSIGN, task.state, actor=by.actor, task_id=task.id)
    place = tasks.place_of(session, atm_id=task.atm_id)
    if engineer_id is None:
        plan = _try_best(session, task, place, now=now, speed_kmh=speed_kmh)
        if plan is None:
            raise Conflict(
                f"No active engineer with the {task.kind.skill.value} skill is on shift at their "
                "arrival time; name one to assign anyway."
            )
    else:
        plan = _chosen(session, task, place, engineer_id, now=now, speed=speed_kmh)
    tasks.transition(
        session,
        task,
        Action.ASSIGN,
        by=by,
        now=now,
        reason=reason or ("best estimate" if engineer_id is None else "chosen by dispatcher"),
        data=plan.describe(),
        idempotency_key=idempotency_key,
    )
    tasks.announce(session, task, now=now)
    session.commit()
    return task


def reassign(
    session: Session,
    *,
    task_id: int,
    engineer_id: int | None,
    by: Doer,
    reason: str,
    now: datetime,
    speed_kmh: float,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Task:
    """Move a task to another engineer (named, or the best other one), with a reason."""
    task = tasks.lock_task(session, task_id=task_id)
    if tasks.replayed(session, task_id=task_id, action=Action.REASSIGN, key=idempotency_key, by=by):
        return task
    tasks.check_version(task, version)
    check(Action.REASSIGN, task.state, actor=by.actor, task_id=task.id)
    if len(reason.strip()) < 3:
        raise InvalidInput("Say why the task is reassigned.", field="reason")
    previous = task.engineer_id
    if engineer_id is not None and engineer_id == previous:
        raise Conflict("The task is already assigned to that engineer.")
    place = tasks.place_of(session, atm_id=task.atm_id)
    if engineer_id is None:
        plan = _try_best(
            session,
            task,
            place,
            now=now,
            speed_kmh=speed_kmh,
            exclude={previous} if previous is not None else None,
        )
        if plan is None:
            raise Conflict("No other engineer can take this task now; name one to reassign.")
    else:
        plan = _chosen(session, task, place, engineer_id, now=now, speed=speed_kmh)
    tasks.transition(
        session,
        task,
        Action.REASSIGN,
        by=by,
        now=now,
        reason=reason.strip(),
        data={**plan.describe(), "from_engineer_id": previous},
        idempotency_key=idempotency_key,
    )
    tasks.announce(session, task, now=now, previous_engineer_id=previous)
    session.commit()
    return task


def engineer_for(session: Session, *, user_id: int) -> Engineer:
    engineer = session.exec(select(Engineer).where(col(Engineer.user_id) == user_id)).first()
    if engineer is None:
        raise NotFound("Your account has no engineer profile yet; ask a dispatcher to add one.")
    return engineer
