"""Dispatch use cases: what engineers and dispatchers do to tasks.

Engineers accept, decline, set off, arrive, resolve, report that parts are
needed and enter replenishment counts, only ever on tasks they hold.
Dispatchers open tasks by hand, assign, reassign, cancel and close.

Every action locks the task row, and is idempotent: a request that carries an
idempotency key already used for the same action by the same person changes
nothing and returns the task as it is (a double tap, a retry after a lost
response). A request that carries the task ``version`` it was made from is
refused when the task has changed since.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from atm_service.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from atm_service.models.engineers import Engineer
from atm_service.models.fleet import Atm, Cassette
from atm_service.models.tasks import (
    CountsIn,
    NeedsPartsIn,
    ReplenishmentCount,
    ResolutionCode,
    ResolveIn,
    Task,
    TaskCreate,
    TaskKind,
    TaskSource,
    TaskState,
    UnitKind,
)
from atm_service.services import assignment, locks, tasks
from atm_service.services.task_states import Action
from atm_service.services.tasks import Doer, Place

# --- opening -------------------------------------------------------------------------


def new_task(
    session: Session,
    place: Place,
    *,
    kind: TaskKind,
    source: TaskSource,
    priority: int,
    title: str,
    description: str,
    opened_at: datetime,
    now: datetime,
    by: Doer,
    facts: dict[str, object] | None = None,
    parent_id: int | None = None,
    reason: str = "",
    announce: bool = True,
) -> Task:
    """Add an open task (not committed) with its deadlines and its first history entry.

    ``announce=False`` when the caller assigns it in the same transaction (which
    announces it then, or says why it waits).
    """
    assert place.atm.id is not None
    response_due, restore_due = tasks.deadlines(place, opened_at=opened_at, priority=priority)
    task = Task(
        atm_id=place.atm.id,
        kind=kind,
        state=TaskState.NEW,
        source=source,
        priority=priority,
        title=title[:200],
        description=description[:2000],
        facts=dict(facts or {}),
        opened_at=opened_at,
        last_signal_at=opened_at,
        response_due=response_due,
        restore_due=restore_due,
        parent_id=parent_id,
        open_key=tasks.open_key(place.atm.id, kind),
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    session.flush()
    tasks.record(
        session,
        task,
        action="opened",
        by=by,
        at=now,
        to_state=TaskState.NEW,
        reason=reason or title,
        data={"priority": priority, "source": source.value},
    )
    if announce:
        tasks.announce(session, task, now=now)
    return task


def create_task(
    session: Session, *, data: TaskCreate, by: Doer, now: datetime, speed_kmh: float
) -> Task:
    """A task opened by a dispatcher; it is assigned straight away when someone can take it."""
    atm = session.get(Atm, data.atm_id)
    if atm is None:
        raise InvalidInput(f"atm_id {data.atm_id} names no ATM.", field="atm_id")
    place = tasks.place_of(session, atm_id=data.atm_id)
    existing = tasks.open_task(session, atm_id=data.atm_id, kind=data.kind)
    if existing is not None:
        raise Conflict(
            f"ATM {atm.terminal_id} already has an open {data.kind.value} task "
            f"(#{existing.id}); work that one.",
            field="kind",
        )
    try:
        task = new_task(
            session,
            place,
            kind=data.kind,
            source=TaskSource.DISPATCHER,
            priority=data.priority,
            title=data.title,
            description=data.description,
            opened_at=now,
            now=now,
            by=by,
        )
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(
            f"ATM {atm.terminal_id} already has an open {data.kind.value} task.", field="kind"
        ) from exc
    assert task.id is not None
    return assignment.auto_assign(session, task_id=task.id, now=now, speed_kmh=speed_kmh)


# --- the engineer's steps --------------------------------------------------------------


def _step(
    session: Session,
    *,
    task_id: int,
    engineer: Engineer,
    by: Doer,
    action: Action,
    now: datetime,
    version: int | None,
    key: str | None,
    reason: str = "",
    prepare: Callable[[Task], None] | None = None,
) -> tuple[Task, bool]:
    """Lock, check, apply one engineer action; ``(task, changed)``, uncommitted."""
    task = tasks.lock_task(session, task_id=task_id)
    if tasks.replayed(session, task_id=task_id, action=action, key=key, by=by):
        return task, False
    if task.engineer_id != engineer.id:
        raise NotFound(f"No task with id {task_id} on your list.")
    tasks.check_version(task, version)
    tasks.check_transition(task, action, by=by)
    if prepare is not None:
        prepare(task)
    tasks.transition(session, task, action, by=by, now=now, reason=reason, idempotency_key=key)
    return task, True


def _finish(session: Session, task: Task, changed: bool, *, now: datetime) -> Task:
    if changed:
        tasks.announce(session, task, now=now)
    session.commit()
    return task


def accept(
    session: Session,
    *,
    task_id: int,
    engineer: Engineer,
    by: Doer,
    now: datetime,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Task:
    task, changed = _step(
        session,
        task_id=task_id,
        engineer=engineer,
        by=by,
        action=Action.ACCEPT,
        now=now,
        version=version,
        key=idempotency_key,
    )
    return _finish(session, task, changed, now=now)


def depart(
    session: Session,
    *,
    task_id: int,
    engineer: Engineer,
    by: Doer,
    now: datetime,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Task:
    task, changed = _step(
        session,
        task_id=task_id,
        engineer=engineer,
        by=by,
        action=Action.DEPART,
        now=now,
        version=version,
        key=idempotency_key,
    )
    return _finish(session, task, changed, now=now)


def arrive(
    session: Session,
    *,
    task_id: int,
    engineer: Engineer,
    by: Doer,
    now: datetime,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Task:
    """On site: the response clock stops, and the engineer's location is the ATM's."""
    task, changed = _step(
        session,
        task_id=task_id,
        engineer=engineer,
        by=by,
        action=Action.ARRIVE,
        now=now,
        version=version,
        key=idempotency_key,
    )
    if changed:
        place = tasks.place_of(session, atm_id=task.atm_id)
        engineer.latitude, engineer.longitude = place.site.latitude, place.site.longitude
        engineer.location_at = now
        session.add(engineer)
    return _finish(session, task, changed, now=now)


def _required_units(session: Session, atm_id: int) -> set[tuple[UnitKind, int]]:
    numbers = session.exec(select(Cassette.number).where(col(Cassette.atm_id) == atm_id))
    units = {(UnitKind.CASSETTE, number) for number in numbers}
    return units | {(UnitKind.REJECT_BIN, 0), (UnitKind.RETRACT_BIN, 0)}


def resolve(
    session: Session,
    *,
    task_id: int,
    engineer: Engineer,
    by: Doer,
    data: ResolveIn,
    now: datetime,
    idempotency_key: str | None = None,
) -> Task:
    """Done: the restore clock stops. A replenishment needs its counts first."""
    if data.resolution_code is ResolutionCode.DEVICE_RECOVERED:
        raise InvalidInput(
            "device_recovered is set by the service when a device recovers by itself.",
            field="resolution_code",
        )

    def prepare(task: Task) -> None:
        assert task.id is not None
        locks.check_no_code_out(session, task_id=task.id)
        if task.kind is TaskKind.REPLENISHMENT:
            counted = {
                (count.unit_kind, count.unit_number)
                for count in tasks.counts_of(session, task_id=task.id)
            }
            missing = _required_units(session, task.atm_id) - counted
            if missing:
                names = ", ".join(_unit_name(kind, number) for kind, number in sorted(missing))
                raise Conflict(f"Enter the counts before resolving; missing: {names}.")
        task.resolution_code = data.resolution_code
        task.resolution_notes = data.notes.strip()

    task, changed = _step(
        session,
        task_id=task_id,
        engineer=engineer,
        by=by,
        action=Action.RESOLVE,
        now=now,
        version=data.version,
        key=idempotency_key,
        reason=data.notes.strip(),
        prepare=prepare,
    )
    return _finish(session, task, changed, now=now)


def needs_parts(
    session: Session,
    *,
    task_id: int,
    engineer: Engineer,
    by: Doer,
    data: NeedsPartsIn,
    now: datetime,
    speed_kmh: float,
    idempotency_key: str | None = None,
) -> Task:
    """The fix needs parts: this visit ends, and a second-line task follows with them.

    The follow-up keeps the original fault time and restore deadline (the ATM
    has been down since then) and gets a fresh response deadline from now.
    Returns the follow-up task (or the open SLM task it was added to).
    """

    def prepare(task: Task) -> None:
        assert task.id is not None
        locks.check_no_code_out(session, task_id=task.id)
        task.parts = data.parts.strip()
        task.resolution_notes = data.notes.strip()

    task, changed = _step(
        session,
        task_id=task_id,
        engineer=engineer,
        by=by,
        action=Action.NEEDS_PARTS,
        now=now,
        version=data.version,
        key=idempotency_key,
        reason=f"parts: {data.parts.strip()}",
        prepare=prepare,
    )
    if not changed:
        session.commit()
        follow = session.exec(select(Task).where(col(Task.parent_id) == task.id)).first()
        return follow or task
    assert task.id is not None
    place = tasks.place_of(session, atm_id=task.atm_id)
    follow_up = tasks.open_task(session, atm_id=task.atm_id, kind=TaskKind.SLM)
    if follow_up is not None:
        tasks.record(
            session,
            follow_up,
            action="parts_needed",
            by=by,
            at=now,
            reason=f"Task #{task.id} needs parts: {task.parts}",
        )
        tasks.announce(session, follow_up, now=now)
    else:
        response, _ = place.targets
        follow_up = new_task(
            session,
            place,
            kind=TaskKind.SLM,
            source=TaskSource.FOLLOW_UP,
            priority=task.priority,
            title=f"Fit parts: {task.parts}"[:200],
            description=(task.resolution_notes or task.description),
            opened_at=task.opened_at,
            now=now,
            by=by,
            facts=task.facts,
            parent_id=task.id,
            reason=f"Follow-up of task #{task.id}: needs {task.parts}",
        )
        factor = tasks.PRIORITY_FACTOR.get(task.priority, 1)
        follow_up.response_due = place.hours.add(now, response * factor)
        follow_up.restore_due = max(task.restore_due, follow_up.response_due)
        session.add(follow_up)
    tasks.announce(session, task, now=now)
    session.commit()
    assert follow_up.id is not None
    return assignment.auto_assign(session, task_id=follow_up.id, now=now, speed_kmh=speed_kmh)


def decline(
    session: Session,
    *,
    task_id: int,
    engineer: Engineer,
    by: Doer,
    reason: str,
    now: datetime,
    speed_kmh: float,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Task:
    """Hand a task back with a reason; it goes to the next best engineer (never back to them)."""
    if len(reason.strip()) < 3:
        raise InvalidInput("Say why you decline.", field="reason")
    task = tasks.lock_task(session, task_id=task_id)
    if tasks.replayed(session, task_id=task_id, action=Action.DECLINE, key=idempotency_key, by=by):
        session.commit()
        return task
    if task.engineer_id != engineer.id:
        raise NotFound(f"No task with id {task_id} on your list.")
    tasks.check_version(task, version)
    tasks.transition(
        session,
        task,
        Action.DECLINE,
        by=by,
        now=now,
        reason=reason.strip(),
        idempotency_key=idempotency_key,
        engineer_id=engineer.id,
    )
    tasks.announce(session, task, now=now, previous_engineer_id=engineer.id)
    session.commit()
    return assignment.auto_assign(session, task_id=task_id, now=now, speed_kmh=speed_kmh)


def _unit_name(kind: UnitKind, number: int) -> str:
    if kind is UnitKind.CASSETTE:
        return f"cassette {number}"
    return kind.value.replace("_", " ")


def record_counts(
    session: Session,
    *,
    task_id: int,
    engineer: Engineer,
    by: Doer,
    data: CountsIn,
    now: datetime,
) -> list[ReplenishmentCount]:
    """Store what was taken out of and put into each cassette and bin (replaces earlier entries).

    Entering the same counts again changes nothing, so a retry is harmless.
    """
    task = tasks.lock_task(session, task_id=task_id)
    if task.engineer_id != engineer.id:
        raise NotFound(f"No task with id {task_id} on your list.")
    if task.kind is not TaskKind.REPLENISHMENT:
        raise Conflict("Counts belong to replenishment tasks.")
    if task.state is not TaskState.ON_SITE:
        raise IllegalTransition(
            f"Counts are entered on site; task {task.id} is {task.state.label}."
        )
    tasks.check_version(task, data.version)
    cassettes = {
        cassette.number: cassette
        for cassette in session.exec(select(Cassette).where(col(Cassette.atm_id) == task.atm_id))
    }
    atm = session.get(Atm, task.atm_id)
    assert atm is not None
    seen: set[tuple[UnitKind, int]] = set()
    rows = []
    for index, unit in enumerate(data.units):
        where = f"units.{index}"
        key = (unit.unit_kind, unit.unit_number)
        if key in seen:
            raise InvalidInput(f"{_unit_name(*key)} is listed twice.", field=f"{where}.unit_number")
        seen.add(key)
        denomination: int | None = None
        if unit.unit_kind is UnitKind.CASSETTE:
            cassette = cassettes.get(unit.unit_number)
            if cassette is None:
                raise InvalidInput(
                    f"ATM {atm.terminal_id} has no cassette {unit.unit_number}.",
                    field=f"{where}.unit_number",
                )
            if unit.loaded > cassette.capacity:
                raise InvalidInput(
                    f"Cassette {unit.unit_number} holds at most {cassette.capacity} notes.",
                    field=f"{where}.loaded",
                )
            denomination = cassette.denomination
        else:
            if unit.unit_number != 0:
                raise InvalidInput("Bins are numbered 0.", field=f"{where}.unit_number")
            if unit.loaded != 0:
                raise InvalidInput("Nothing is loaded into a bin.", field=f"{where}.loaded")
        rows.append(
            ReplenishmentCount(
                task_id=task_id,
                unit_kind=unit.unit_kind,
                unit_number=unit.unit_number,
                denomination=denomination,
                currency=atm.currency,
                removed=unit.removed,
                loaded=unit.loaded,
                counted_at=now,
                counted_by=by.user_id,
            )
        )
    existing = {
        (count.unit_kind, count.unit_number): count
        for count in tasks.counts_of(session, task_id=task_id)
    }
    changed = [
        row
        for row in rows
        if (old := existing.get((row.unit_kind, row.unit_number))) is None
        or (old.removed, old.loaded) != (row.removed, row.loaded)
    ]
    if changed:
        for row in changed:
            session.exec(
                delete(ReplenishmentCount).where(
                    col(ReplenishmentCount.task_id) == task_id,
                    col(ReplenishmentCount.unit_kind) == row.unit_kind,
                    col(ReplenishmentCount.unit_number) == row.unit_number,
                )
            )
            session.add(row)
        tasks.record(
            session,
            task,
            action="counts",
            by=by,
            at=now,
            data={
                "units": [
                    {
                        "unit": _unit_name(row.unit_kind, row.unit_number),
                        "removed": row.removed,
                        "loaded": row.loaded,
                    }
                    for row in changed
                ]
            },
        )
    session.commit()
    return tasks.counts_of(session, task_id=task_id)


# --- the dispatcher's steps ------------------------------------------------------------


def _dispatcher_step(
    session: Session,
    *,
    task_id: int,
    by: Doer,
    action: Action,
    now: datetime,
    reason: str,
    version: int | None,
    key: str | None,
    prepare: Callable[[Task], None] | None = None,
) -> Task:
    task = tasks.lock_task(session, task_id=task_id)
    if tasks.replayed(session, task_id=task_id, action=action, key=key, by=by):
        session.commit()
        return task
    tasks.check_version(task, version)
    tasks.check_transition(task, action, by=by)
    if prepare is not None:
        prepare(task)
    tasks.transition(session, task, action, by=by, now=now, reason=reason, idempotency_key=key)
    tasks.announce(session, task, now=now)
    session.commit()
    return task


def cancel(
    session: Session,
    *,
    task_id: int,
    by: Doer,
    reason: str,
    now: datetime,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Task:
    if len(reason.strip()) < 3:
        raise InvalidInput("Say why the task is cancelled.", field="reason")
    return _dispatcher_step(
        session,
        task_id=task_id,
        by=by,
        action=Action.CANCEL,
        now=now,
        reason=reason.strip(),
        version=version,
        key=idempotency_key,
    )


def close(
    session: Session,
    *,
    task_id: int,
    by: Doer,
    notes: str,
    now: datetime,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Task:
    return _dispatcher_step(
        session,
        task_id=task_id,
        by=by,
        action=Action.CLOSE,
        now=now,
        reason=notes.strip(),
        version=version,
        key=idempotency_key,
    )
