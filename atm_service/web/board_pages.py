"""The dispatcher's pages: the board of open tasks, a task's detail with its actions, KPIs.

The board lists every open task with its state, engineer and SLA risk,
filterable by region, with assign and reassign forms on each task; it
updates live (``/board/stream``) where JavaScript runs and works as plain
links and forms where it does not.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from atm_service.api.deps import AuthDep, ContextDep, Dispatcher, KpiReader, NowDep, SessionDep
from atm_service.api.params import DbId
from atm_service.errors import InvalidInput, NotFound, ServiceError
from atm_service.live import open_stream
from atm_service.models.locks import AlarmState
from atm_service.models.notifications import Audience
from atm_service.models.tasks import OPEN_STATES, Risk, TaskPublic
from atm_service.models.users import User
from atm_service.services import (
    assignment,
    dispatch,
    engineers,
    fleet,
    kpis,
    lock_alarms,
    tasks,
)
from atm_service.services.task_states import Actor, allowed_actions
from atm_service.services.tasks import Doer
from atm_service.web.engineer_pages import wants_event_stream

router = APIRouter(include_in_schema=False)

_RISK_ORDER = {Risk.BREACHED: 0, Risk.AT_RISK: 1, Risk.OK: 2}
KPI_PERIODS = (1, 7, 30, 90)


def _regions(session: SessionDep) -> list[str]:
    sites, _ = fleet.list_sites(session, limit=500)
    return sorted({site.region for site in sites})


def _board_order(task: TaskPublic) -> tuple[Any, ...]:
    return (_RISK_ORDER.get(task.risk, 3), task.engineer_id is not None, task.due, task.id)


@router.get("/board", response_class=HTMLResponse)
def board(
    request: Request,
    found: AuthDep,
    user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    region: str | None = None,
) -> Response:
    region = region or None
    found_tasks, total = tasks.list_tasks(
        session, states=sorted(OPEN_STATES), region=region, limit=500
    )
    shown = sorted(tasks.publics(session, found_tasks, now=now), key=_board_order)
    crew, _ = engineers.list_engineers(session, active=True, limit=500)
    return context.templates.TemplateResponse(
        request,
        "board.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "tasks": shown,
            "total": total,
            "engineers": engineers.to_public(session, crew),
            "regions": _regions(session),
            "region": region,
            "now": now,
            "keys": [secrets.token_urlsafe(16) for _ in shown],
            "counts": {
                "unassigned": sum(1 for t in shown if t.engineer_id is None),
                "at_risk": sum(1 for t in shown if t.risk is Risk.AT_RISK),
                "breached": sum(1 for t in shown if t.risk is Risk.BREACHED),
            },
            "next": "/board" + (f"?{urlencode({'region': region})}" if region else ""),
            "alarms": lock_alarms.publics(
                session, lock_alarms.list_alarms(session, state=AlarmState.OPEN, limit=50)[0]
            ),
        },
    )


@router.get("/board/stream")
async def board_stream(
    request: Request, _user: Dispatcher, context: ContextDep, session: SessionDep, now: NowDep
) -> Response:
    """Server-sent events: every change to any task, for the boards."""
    wants_event_stream(request)
    # The stream holds no database connection (nor, on SQLite, its lock) while it waits.
    await run_in_threadpool(session.close)
    body = await open_stream(
        context.live,
        context.database,
        audience=Audience.BOARD,
        user_id=None,
        last_event_id_header=request.headers.get("last-event-id"),
        max_seconds=context.settings.dispatch_stream_max_seconds,
        hello={"server_time": now.isoformat()},
    )
    return StreamingResponse(
        body, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )


def _task_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    *,
    user: User,
    csrf_token: str,
    task_id: DbId,
    now: Any,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    task = tasks.get_task(session, task_id=task_id)
    shown = tasks.view(session, task, now=now)
    crew, _ = engineers.list_engineers(session, active=True, limit=500)
    return context.templates.TemplateResponse(
        request,
        "board_task.html",
        {
            "user": user,
            "csrf_token": csrf_token,
            "view": shown,
            "task": shown.task,
            "actions": {a.value for a in allowed_actions(task.state, Actor.DISPATCHER)},
            "engineers": engineers.to_public(session, crew),
            "keys": {
                name: secrets.token_urlsafe(16)
                for name in ("assign", "reassign", "cancel", "close")
            },
            "now": now,
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/board/tasks/{task_id}", response_class=HTMLResponse)
def board_task(
    task_id: DbId,
    request: Request,
    found: AuthDep,
    user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    return _task_page(
        request,
        context,
        session,
        user=user,
        csrf_token=found.session.csrf_token,
        task_id=task_id,
        now=now,
    )


def _safe_next(target: str, task_id: DbId) -> str:
    if target.startswith("/board") and not target.startswith("//"):
        return target
    return f"/board/tasks/{task_id}"


@router.post("/board/tasks/{task_id}/{step}")
async def board_action(
    task_id: DbId,
    step: str,
    request: Request,
    found: AuthDep,
    user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    """assign, reassign, cancel or close, from the board or the task's page."""
    form = await request.form()
    values = {name: value for name, value in form.items() if isinstance(value, str)}
    key = values.get("idempotency_key") or None
    if key is not None and len(key) > 64:
        raise InvalidInput("The form's idempotency key is too long.", field="idempotency_key")
    version = int(values["version"]) if values.get("version", "").isdigit() else None
    engineer_text = values.get("engineer_id", "")
    engineer_id = int(engineer_text) if engineer_text.isdigit() else None
    reason = values.get("reason", "")
    by = Doer.of(user)
    speed = context.settings.dispatch_road_speed_kmh
    try:
        if step == "assign":
            assignment.assign(
                session,
                task_id=task_id,
                engineer_id=engineer_id,
                by=by,
                now=now,
                speed_kmh=speed,
                reason=reason,
                version=version,
                idempotency_key=key,
            )
        elif step == "reassign":
            assignment.reassign(
                session,
                task_id=task_id,
                engineer_id=engineer_id,
                by=by,
                reason=reason,
                now=now,
                speed_kmh=speed,
                version=version,
                idempotency_key=key,
            )
        elif step == "cancel":
            dispatch.cancel(
                session,
                task_id=task_id,
                by=by,
                reason=reason,
                now=now,
                version=version,
                idempotency_key=key,
            )
        elif step == "close":
            dispatch.close(
                session,
                task_id=task_id,
                by=by,
                notes=values.get("notes", ""),
                now=now,
                version=version,
                idempotency_key=key,
            )
        else:
            raise NotFound(f"There is no action {step!r}.")
    except NotFound:
        raise
    except ServiceError as exc:
        session.rollback()
        return _task_page(
            request,
            context,
            session,
            user=user,
            csrf_token=found.session.csrf_token,
            task_id=task_id,
            now=now,
            error=exc.detail,
            status_code=exc.status,
        )
    return RedirectResponse(_safe_next(values.get("next", ""), task_id), status_code=303)


@router.get("/kpis", response_class=HTMLResponse)
def kpi_page(
    request: Request,
    found: AuthDep,
    user: KpiReader,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    days: int = 30,
    region: str | None = None,
) -> Response:
    if days not in KPI_PERIODS:
        raise InvalidInput(f"days must be one of {', '.join(map(str, KPI_PERIODS))}.", field="days")
    region = region or None
    figures = kpis.compute(
        session, start=now - timedelta(days=days), end=now, now=now, region=region
    )
    return context.templates.TemplateResponse(
        request,
        "kpis.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "k": figures,
            "days": days,
            "periods": KPI_PERIODS,
            "regions": _regions(session),
            "region": region,
        },
    )
