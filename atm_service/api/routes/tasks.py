"""``/api/v1/tasks``: field tasks, their lifecycle and replenishment counts.

Dispatchers and administrators see every task and assign, reassign, cancel
and close; an engineer sees only the tasks they hold (others answer 404) and
moves them along: accept, decline, depart, arrive, resolve, needs-parts,
counts. Every write may carry an ``Idempotency-Key`` header (a retry with the
same key is done once) and the task ``version`` it was made from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol

from fastapi import APIRouter, Body, Query, status
from sqlmodel import Session

from atm_service.api.deps import (
    ContextDep,
    CurrentEngineer,
    Dispatcher,
    EngineerUser,
    IdempotencyKey,
    NowDep,
    SessionDep,
    TaskReader,
)
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.errors import NotFound
from atm_service.models.engineers import Engineer
from atm_service.models.tasks import (
    OPEN_STATES,
    AssignIn,
    CloseIn,
    CountPublic,
    CountsIn,
    Expected,
    NeedsPartsIn,
    NeedsPartsOut,
    ReasonIn,
    ReassignIn,
    ResolveIn,
    Task,
    TaskCreate,
    TaskDetail,
    TaskKind,
    TaskPublic,
    TaskState,
)
from atm_service.models.users import Role, User
from atm_service.services import assignment, dispatch, engineers, tasks
from atm_service.services.tasks import Doer

router = APIRouter(prefix="/tasks", tags=["dispatch"], responses=problems(401, 403))

OptionalExpected = Annotated[Expected | None, Body()]


def _scope(session: SessionDep, user: User) -> Engineer | None:
    """An engineer is limited to their own tasks; ``None`` means everything."""
    if user.role is not Role.ENGINEER:
        return None
    assert user.id is not None
    engineer = engineers.engineer_of(session, user_id=user.id)
    if engineer is None:
        raise NotFound("Your account has no engineer profile yet; ask a dispatcher to add one.")
    return engineer


@router.get("", response_model=Page[TaskPublic], summary="List tasks (an engineer: their own)")
def list_tasks(
    session: SessionDep,
    user: TaskReader,
    now: NowDep,
    state: Annotated[list[TaskState] | None, Query()] = None,
    open_only: Annotated[
        bool, Query(alias="open", description="Only open tasks (new up to on site)")
    ] = False,
    kind: TaskKind | None = None,
    region: str | None = None,
    atm_id: DbId | None = None,
    engineer_id: DbId | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[TaskPublic]:
    mine = _scope(session, user)
    states = list(state) if state else None
    if open_only:
        states = [s for s in (states or list(TaskState)) if s in OPEN_STATES]
    found, total = tasks.list_tasks(
        session,
        states=states,
        kind=kind,
        region=region,
        atm_id=atm_id,
        engineer_id=mine.id if mine is not None else engineer_id,
        limit=limit,
        offset=offset,
    )
    return Page(
        items=tasks.publics(session, found, now=now), total=total, limit=limit, offset=offset
    )


@router.post(
    "",
    response_model=TaskPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Open a task by hand; it is assigned at once when someone can take it",
    responses=problems(409, 422),
)
def create_task(
    data: TaskCreate, session: SessionDep, context: ContextDep, now: NowDep, user: Dispatcher
) -> TaskPublic:
    task = dispatch.create_task(
        session,
        data=data,
        by=Doer.of(user),
        now=now,
        speed_kmh=context.settings.dispatch_road_speed_kmh,
    )
    return tasks.public(session, task, now=now)


@router.get(
    "/{task_id}",
    response_model=TaskDetail,
    summary="A task with its history and counts",
    responses=problems(404),
)
def get_task(task_id: DbId, session: SessionDep, user: TaskReader, now: NowDep) -> TaskDetail:
    task = tasks.get_task(session, task_id=task_id, engineer=_scope(session, user))
    return tasks.detail(session, task, now=now)


# --- dispatcher actions -------------------------------------------------------------------


@router.post(
    "/{task_id}/assign",
    response_model=TaskPublic,
    summary="Assign a new task: to the named engineer, or to the best one",
    responses=problems(404, 409, 422),
)
def assign_task(
    task_id: DbId,
    data: AssignIn,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Dispatcher,
    key: IdempotencyKey = None,
) -> TaskPublic:
    task = assignment.assign(
        session,
        task_id=task_id,
        engineer_id=data.engineer_id,
        by=Doer.of(user),
        now=now,
        speed_kmh=context.settings.dispatch_road_speed_kmh,
        reason=data.reason,
        version=data.version,
        idempotency_key=key,
    )
    return tasks.public(session, task, now=now)


@router.post(
    "/{task_id}/reassign",
    response_model=TaskPublic,
    summary="Give a task to another engineer, with a reason",
    responses=problems(404, 409, 422),
)
def reassign_task(
    task_id: DbId,
    data: ReassignIn,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Dispatcher,
    key: IdempotencyKey = None,
) -> TaskPublic:
    task = assignment.reassign(
        session,
        task_id=task_id,
        engineer_id=data.engineer_id,
        by=Doer.of(user),
        reason=data.reason,
        now=now,
        speed_kmh=context.settings.dispatch_road_speed_kmh,
        version=data.version,
        idempotency_key=key,
    )
    return tasks.public(session, task, now=now)


@router.post(
    "/{task_id}/cancel",
    response_model=TaskPublic,
    summary="Cancel an open task, with a reason",
    responses=problems(404, 409, 422),
)
def cancel_task(
    task_id: DbId,
    data: ReasonIn,
    session: SessionDep,
    now: NowDep,
    user: Dispatcher,
    key: IdempotencyKey = None,
) -> TaskPublic:
    task = dispatch.cancel(
        session,
        task_id=task_id,
        by=Doer.of(user),
        reason=data.reason,
        now=now,
        version=data.version,
        idempotency_key=key,
    )
    return tasks.public(session, task, now=now)


@router.post(
    "/{task_id}/close",
    response_model=TaskPublic,
    summary="Close a resolved task (or one that needed parts) after review",
    responses=problems(404, 409, 422),
)
def close_task(
    task_id: DbId,
    data: CloseIn,
    session: SessionDep,
    now: NowDep,
    user: Dispatcher,
    key: IdempotencyKey = None,
) -> TaskPublic:
    task = dispatch.close(
        session,
        task_id=task_id,
        by=Doer.of(user),
        notes=data.notes,
        now=now,
        version=data.version,
        idempotency_key=key,
    )
    return tasks.public(session, task, now=now)


# --- engineer actions --------------------------------------------------------------------


class _PlainStep(Protocol):
    """``dispatch.accept``, ``depart`` or ``arrive``: a step that carries only the version."""

    def __call__(
        self,
        session: Session,
        *,
        task_id: int,
        engineer: Engineer,
        by: Doer,
        now: datetime,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Task: ...


def _plain_step(
    step: _PlainStep,
    task_id: int,
    session: Session,
    now: datetime,
    user: User,
    engineer: Engineer,
    data: Expected | None,
    key: str | None,
) -> TaskPublic:
    """Take the engineer's ``step`` on their task; the body, when sent, holds only the version."""
    task = step(
        session,
        task_id=task_id,
        engineer=engineer,
        by=Doer.of(user),
        now=now,
        version=data.version if data else None,
        idempotency_key=key,
    )
    return tasks.public(session, task, now=now)


@router.post(
    "/{task_id}/accept",
    response_model=TaskPublic,
    summary="Accept an assigned task",
    responses=problems(404, 409, 422),
)
def accept_task(
    task_id: DbId,
    session: SessionDep,
    now: NowDep,
    user: EngineerUser,
    engineer: CurrentEngineer,
    data: OptionalExpected = None,
    key: IdempotencyKey = None,
) -> TaskPublic:
    return _plain_step(dispatch.accept, task_id, session, now, user, engineer, data, key)


@router.post(
    "/{task_id}/decline",
    response_model=TaskPublic,
    summary="Hand a task back with a reason; it goes to the next best engineer",
    responses=problems(404, 409, 422),
)
def decline_task(
    task_id: DbId,
    data: ReasonIn,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: EngineerUser,
    engineer: CurrentEngineer,
    key: IdempotencyKey = None,
) -> TaskPublic:
    task = dispatch.decline(
        session,
        task_id=task_id,
        engineer=engineer,
        by=Doer.of(user),
        reason=data.reason,
        now=now,
        speed_kmh=context.settings.dispatch_road_speed_kmh,
        version=data.version,
        idempotency_key=key,
    )
    return tasks.public(session, task, now=now)


@router.post(
    "/{task_id}/depart",
    response_model=TaskPublic,
    summary="On the way to the ATM",
    responses=problems(404, 409, 422),
)
def depart_task(
    task_id: DbId,
    session: SessionDep,
    now: NowDep,
    user: EngineerUser,
    engineer: CurrentEngineer,
    data: OptionalExpected = None,
    key: IdempotencyKey = None,
) -> TaskPublic:
    return _plain_step(dispatch.depart, task_id, session, now, user, engineer, data, key)


@router.post(
    "/{task_id}/arrive",
    response_model=TaskPublic,
    summary="On site: stops the response clock",
    responses=problems(404, 409, 422),
)
def arrive_task(
    task_id: DbId,
    session: SessionDep,
    now: NowDep,
    user: EngineerUser,
    engineer: CurrentEngineer,
    data: OptionalExpected = None,
    key: IdempotencyKey = None,
) -> TaskPublic:
    return _plain_step(dispatch.arrive, task_id, session, now, user, engineer, data, key)


@router.post(
    "/{task_id}/resolve",
    response_model=TaskPublic,
    summary="Resolved, with a resolution code and notes: stops the restore clock",
    responses=problems(404, 409, 422),
)
def resolve_task(
    task_id: DbId,
    data: ResolveIn,
    session: SessionDep,
    now: NowDep,
    user: EngineerUser,
    engineer: CurrentEngineer,
    key: IdempotencyKey = None,
) -> TaskPublic:
    task = dispatch.resolve(
        session,
        task_id=task_id,
        engineer=engineer,
        by=Doer.of(user),
        data=data,
        now=now,
        idempotency_key=key,
    )
    return tasks.public(session, task, now=now)


@router.post(
    "/{task_id}/needs-parts",
    response_model=NeedsPartsOut,
    summary="The fix needs parts: ends this visit and opens a second-line follow-up",
    responses=problems(404, 409, 422),
)
def needs_parts(
    task_id: DbId,
    data: NeedsPartsIn,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: EngineerUser,
    engineer: CurrentEngineer,
    key: IdempotencyKey = None,
) -> NeedsPartsOut:
    follow_up = dispatch.needs_parts(
        session,
        task_id=task_id,
        engineer=engineer,
        by=Doer.of(user),
        data=data,
        now=now,
        speed_kmh=context.settings.dispatch_road_speed_kmh,
        idempotency_key=key,
    )
    task = tasks.get_task(session, task_id=task_id)
    return NeedsPartsOut(
        task=tasks.public(session, task, now=now),
        follow_up=tasks.public(session, follow_up, now=now),
    )


@router.put(
    "/{task_id}/counts",
    response_model=list[CountPublic],
    summary="Replenishment counts: notes taken out of and loaded into each cassette and bin",
    responses=problems(404, 409, 422),
)
def put_counts(
    task_id: DbId,
    data: CountsIn,
    session: SessionDep,
    now: NowDep,
    user: EngineerUser,
    engineer: CurrentEngineer,
) -> list[CountPublic]:
    counts = dispatch.record_counts(
        session, task_id=task_id, engineer=engineer, by=Doer.of(user), data=data, now=now
    )
    return [CountPublic.model_validate(count.model_dump()) for count in counts]
