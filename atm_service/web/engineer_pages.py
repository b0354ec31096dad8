"""The engineer's mobile pages: my dispatches (live), a dispatch's detail, and its actions.

Everything works as plain links and forms; ``/static/dispatch.js`` adds the
live list (server-sent events from ``/my/stream``) and ticking countdowns.
Each action form carries a fresh idempotency key and the task version, so a
double tap or a resubmitted form does the action once. An engineer only ever
sees and acts on the tasks they hold; any other task does not exist for them.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from atm_service.api.deps import AuthDep, ContextDep, EngineerUser, NowDep, SessionDep
from atm_service.api.params import DbId
from atm_service.errors import InvalidInput, NotAcceptable, NotFound, ServiceError
from atm_service.live import open_stream
from atm_service.models.engineers import Engineer
from atm_service.models.notifications import Audience
from atm_service.models.tasks import (
    HELD_STATES,
    CountIn,
    CountsIn,
    NeedsPartsIn,
    ResolutionCode,
    ResolveIn,
    UnitKind,
)
from atm_service.models.users import User
from atm_service.services import dispatch, engineers, locks, tasks
from atm_service.services.task_states import Action, Actor, allowed_actions
from atm_service.services.tasks import Doer

router = APIRouter(include_in_schema=False)

RESOLUTION_CHOICES = [
    code for code in ResolutionCode if code is not ResolutionCode.DEVICE_RECOVERED
]


def _engineer(session: SessionDep, user: User) -> Engineer | None:
    assert user.id is not None
    return engineers.engineer_of(session, user_id=user.id)


def _mine(session: SessionDep, user: User) -> Engineer:
    engineer = _engineer(session, user)
    if engineer is None:
        raise NotFound("Your account has no engineer profile yet; ask a dispatcher to add one.")
    return engineer


@router.get("/my", response_class=HTMLResponse)
def my_dispatches(
    request: Request,
    found: AuthDep,
    user: EngineerUser,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    engineer = _engineer(session, user)
    held = []
    custody = []
    if engineer is not None:
        assert engineer.id is not None
        held = tasks.publics(session, tasks.held_by(session, engineer_id=engineer.id), now=now)
        held.sort(key=lambda task: (task.due, task.priority, task.id))
        custody = tasks.publics(
            session, locks.custody_tasks(session, engineer_id=engineer.id), now=now
        )
    return context.templates.TemplateResponse(
        request,
        "my_dispatches.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "engineer": engineer,
            "tasks": held,
            "custody": custody,
            "now": now,
        },
    )


def wants_event_stream(request: Request) -> None:
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise NotAcceptable(
            "This is a live event stream; request it with Accept: text/event-stream "
            "(a browser's EventSource does)."
        )


@router.get("/my/stream")
async def my_stream(
    request: Request, user: EngineerUser, context: ContextDep, session: SessionDep, now: NowDep
) -> Response:
    """Server-sent events: each change to one of my dispatches, as the list shows it."""
    wants_event_stream(request)
    # The stream holds no database connection (nor, on SQLite, its lock) while it waits.
    await run_in_threadpool(session.close)
    body = await open_stream(
        context.live,
        context.database,
        audience=Audience.ENGINEER,
        user_id=user.id,
        last_event_id_header=request.headers.get("last-event-id"),
        max_seconds=context.settings.dispatch_stream_max_seconds,
        hello={"server_time": now.isoformat()},
    )
    return StreamingResponse(
        body, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )


def _detail_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    *,
    user: User,
    csrf_token: str,
    engineer: Engineer,
    task_id: DbId,
    now: Any,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    task = tasks.get_task(session, task_id=task_id, engineer=engineer)
    shown = tasks.view(session, task, now=now)
    actions = allowed_actions(task.state, Actor.ENGINEER)
    panel = locks.panel(session, task=task, user=user, now=now, timing=context.lock_timing)
    return context.templates.TemplateResponse(
        request,
        "dispatch_detail.html",
        {
            "user": user,
            "csrf_token": csrf_token,
            "view": shown,
            "task": shown.task,
            "actions": {action.value for action in actions},
            "keys": {action.value: secrets.token_urlsafe(16) for action in Action},
            "counts_key": secrets.token_urlsafe(16),
            "resolution_codes": RESOLUTION_CHOICES,
            "unit_cassette": UnitKind.CASSETTE,
            "now": now,
            "error": error,
            "lockp": panel,
            "lock_user": user.id,
            "lock_error": None,
            "lock_note": None,
        },
        status_code=status_code,
    )


@router.get("/my/tasks/{task_id}", response_class=HTMLResponse)
def dispatch_detail(
    task_id: DbId,
    request: Request,
    found: AuthDep,
    user: EngineerUser,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    return _detail_page(
        request,
        context,
        session,
        user=user,
        csrf_token=found.session.csrf_token,
        engineer=_mine(session, user),
        task_id=task_id,
        now=now,
    )


def _act(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    found: AuthDep,
    user: User,
    task_id: DbId,
    now: Any,
    run: Any,
) -> Response:
    """Run one action; on success back to the task (or my list if it left me)."""
    engineer = _mine(session, user)
    try:
        task = run(engineer)
    except NotFound:
        raise
    except ServiceError as exc:
        session.rollback()
        return _detail_page(
            request,
            context,
            session,
            user=user,
            csrf_token=found.session.csrf_token,
            engineer=engineer,
            task_id=task_id,
            now=now,
            error=exc.detail,
            status_code=exc.status,
        )
    if task.engineer_id != engineer.id or task.state not in HELD_STATES:
        return RedirectResponse("/my", status_code=303)
    return RedirectResponse(f"/my/tasks/{task_id}", status_code=303)


def _validated(model: Any, **values: Any) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first.get("loc", ())) or "form"
        raise InvalidInput(f"{name}: {first.get('msg', 'invalid value')}", field=name) from None


@router.post("/my/tasks/{task_id}/{step}")
async def dispatch_action(
    task_id: DbId,
    step: str,
    request: Request,
    found: AuthDep,
    user: EngineerUser,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    """One form action: accept, decline, depart, arrive, resolve, needs_parts or counts."""
    form = await request.form()
    values = {name: value for name, value in form.items() if isinstance(value, str)}
    key = values.get("idempotency_key") or None
    if key is not None and len(key) > 64:
        raise InvalidInput("The form's idempotency key is too long.", field="idempotency_key")
    version = int(values["version"]) if values.get("version", "").isdigit() else None
    by = Doer.of(user)
    speed = context.settings.dispatch_road_speed_kmh

    def run(engineer: Engineer) -> Any:
        common: dict[str, Any] = {
            "task_id": task_id,
            "engineer": engineer,
            "by": by,
            "now": now,
        }
        if step == "accept":
            return dispatch.accept(session, **common, version=version, idempotency_key=key)
        if step == "depart":
            return dispatch.depart(session, **common, version=version, idempotency_key=key)
        if step == "arrive":
            return dispatch.arrive(session, **common, version=version, idempotency_key=key)
        if step == "decline":
            return dispatch.decline(
                session,
                **common,
                reason=values.get("reason", ""),
                speed_kmh=speed,
                version=version,
                idempotency_key=key,
            )
        if step == "resolve":
            data = _validated(
                ResolveIn,
                resolution_code=values.get("resolution_code") or None,
                notes=values.get("notes", ""),
                version=version,
            )
            return dispatch.resolve(session, **common, data=data, idempotency_key=key)
        if step == "needs_parts":
            data = _validated(
                NeedsPartsIn,
                parts=values.get("parts", ""),
                notes=values.get("notes", ""),
                version=version,
            )
            dispatch.needs_parts(session, **common, data=data, speed_kmh=speed, idempotency_key=key)
            return tasks.get_task(session, task_id=task_id)
        if step == "counts":
            dispatch.record_counts(session, **common, data=_counts(values, version))
            return tasks.get_task(session, task_id=task_id)
        raise NotFound(f"There is no action {step!r}.")

    return _act(request, context, session, found, user, task_id, now, run)


def _counts(values: dict[str, str], version: int | None) -> CountsIn:
    """The counts form: ``removed_c1``, ``loaded_c1`` .. per cassette, ``removed_reject_bin``
    and ``removed_retract_bin``. Units left blank are not counted (yet).
    """
    units: list[CountIn] = []
    for name, value in values.items():
        if not name.startswith("removed_"):
            continue
        unit = name.removeprefix("removed_")
        loaded = values.get(f"loaded_{unit}", "0") or "0"
        if value.strip() == "" and loaded.strip() in ("", "0"):
            continue
        if unit.startswith("c") and unit[1:].isdigit():
            kind, number = UnitKind.CASSETTE, int(unit[1:])
        elif unit in (UnitKind.REJECT_BIN.value, UnitKind.RETRACT_BIN.value):
            kind, number = UnitKind(unit), 0
        else:
            raise InvalidInput(f"Unknown cash unit {unit!r} in the form.", field=name)
        for label, text in (("removed", value), ("loaded", loaded)):
            if not text.strip().isdigit():
                raise InvalidInput(
                    f"Enter {label} notes for {unit.replace('_', ' ')} as a whole number.",
                    field=f"{label}_{unit}",
                )
        units.append(
            _validated(
                CountIn,
                unit_kind=kind,
                unit_number=number,
                removed=int(value),
                loaded=int(loaded),
            )
        )
    if not units:
        raise InvalidInput("Enter at least one count.", field="units")
    counts: CountsIn = _validated(CountsIn, units=units, version=version)
    return counts
