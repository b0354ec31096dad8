"""Lock-control pages: the engineer's safe code and seal, the dispatcher's locks and alarms,
the auditor's lock-access log.

Engineer (phone): a task's page has a "Safe lock" card; ``Get safe code`` shows the
code once on a page of its own (large digits, not selectable, with the time it stops
working and the seal form under it); nothing ever shows it again. The second person
of a dual-control task works from ``/my/tasks/{id}/lock``.

Dispatcher: ``/locks`` lists every lock and what is out; ``/locks/{id}`` force-closes,
authorises a resync, adds a task's second person and imports a lock's trail;
``/locks/alarms`` lists alarms to acknowledge with a note. Administrators also
download a lock's provisioning record there.

Auditor (read-only): ``/audit/locks`` filters the log by ATM, user, kind and dates,
``/audit/locks/verification`` verifies the stored log now, and the export button
downloads a signed export for ``atm-lock verify-export``.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlmodel import Session, col, select

from atm_service.api.deps import (
    Admin,
    AuthDep,
    CodeRequestLimit,
    ContextDep,
    Dispatcher,
    EngineerUser,
    LockReader,
    LogReader,
    NowDep,
    SessionDep,
)
from atm_service.api.paging import Offset
from atm_service.api.params import DbId
from atm_service.errors import InvalidInput, NotFound, ServiceError
from atm_service.models.fleet import Atm
from atm_service.models.locks import AlarmState, CodeOut, Lock
from atm_service.models.tasks import HELD_STATES, OPEN_STATES, Task, TaskState
from atm_service.models.users import User
from atm_service.services import (
    engineers,
    lock_alarms,
    lock_log,
    lock_trail,
    locks,
    tasks,
    users,
)
from atm_service.web.formatting import local

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


def grouped(code: str) -> list[str]:
    """``11044525`` → ``["1104", "4525"]``: two blocks that are easy to read out and key."""
    return [code[:4], code[4:]]


# --- engineer -------------------------------------------------------------------------


def _my_task(session: Session, user: User, task_id: DbId) -> Task:
    """A task I hold or am the second person of; any other does not exist for me."""
    assert user.id is not None
    engineer = engineers.engineer_of(session, user_id=user.id)
    task = session.get(Task, task_id)
    if engineer is None or task is None or engineer.id is None:
        raise NotFound(f"No task with id {task_id} on your list.")
    holder = task.engineer_id == engineer.id and task.state in HELD_STATES
    if not holder and not locks.is_custodian(session, task_id=task_id, engineer_id=engineer.id):
        raise NotFound(f"No task with id {task_id} on your list.")
    return task


def lock_context(
    session: Session, context: ContextDep, *, task: Task, user: User, now: datetime
) -> dict[str, Any]:
    """What the safe-lock card needs (``lockp`` is None at an ATM without a lock)."""
    panel = locks.panel(session, task=task, user=user, now=now, timing=context.lock_timing)
    return {"lockp": panel, "lock_user": user.id}


def _lock_page(
    request: Request,
    context: ContextDep,
    session: Session,
    *,
    user: User,
    csrf_token: str,
    task_id: DbId,
    now: datetime,
    error: str | None = None,
    note: str | None = None,
    status_code: int = 200,
) -> Response:
    task = _my_task(session, user, task_id)
    shown = tasks.public(session, task, now=now)
    engineer = engineers.engineer_of(session, user_id=user.id or 0)
    return context.templates.TemplateResponse(
        request,
        "my_lock.html",
        {
            "user": user,
            "csrf_token": csrf_token,
            "task": shown,
            "holder": engineer is not None and task.engineer_id == engineer.id,
            "now": now,
            "lock_error": error,
            "lock_note": note,
            **lock_context(session, context, task=task, user=user, now=now),
        },
        status_code=status_code,
    )


@router.get("/my/tasks/{task_id}/lock", response_class=HTMLResponse)
def my_lock(
    task_id: DbId,
    request: Request,
    found: AuthDep,
    user: EngineerUser,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    sealed: int = 0,
) -> Response:
    return _lock_page(
        request,
        context,
        session,
        user=user,
        csrf_token=found.session.csrf_token,
        task_id=task_id,
        now=now,
        note="Seal accepted: the lock cycle is closed." if sealed else None,
    )


def _code_page(
    request: Request,
    context: ContextDep,
    session: Session,
    *,
    user: User,
    csrf_token: str,
    task: Task,
    out: CodeOut,
    now: datetime,
) -> Response:
    place = tasks.place_of(session, atm_id=task.atm_id)
    assert out.code is not None
    return context.templates.TemplateResponse(
        request,
        "lock_code.html",
        {
            "user": user,
            "csrf_token": csrf_token,
            "out": out,
            "blocks": grouped(out.code),
            "terminal_id": place.atm.terminal_id,
            "tz": place.site.timezone,
            "task_id": task.id,
            "now": now,
        },
    )


@router.post("/my/tasks/{task_id}/lock/{step}")
async def my_lock_action(
    task_id: DbId,
    step: str,
    request: Request,
    found: AuthDep,
    user: EngineerUser,
    _limit: CodeRequestLimit,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    """``code`` (ask for a code), ``reveal`` (show my waiting code once) or ``seal``."""
    form = await request.form()
    values = {name: value for name, value in form.items() if isinstance(value, str)}
    task = _my_task(session, user, task_id)
    common: dict[str, Any] = {
        "secrets": context.locks,
        "atm_id": task.atm_id,
        "task_id": task_id,
        "user": user,
        "now": now,
    }
    try:
        if step == "code":
            out = await run_in_threadpool(
                locks.request_code,
                session,
                operation=values.get("operation") or None,
                timing=context.lock_timing,
                **common,
            )
            if out.status == "waiting":
                return RedirectResponse(f"/my/tasks/{task_id}/lock", status_code=303)
        elif step == "reveal":
            out = await run_in_threadpool(
                locks.reveal_code, session, timing=context.lock_timing, **common
            )
        elif step == "seal":
            await run_in_threadpool(
                locks.report_seal, session, seal=values.get("seal", ""), **common
            )
            return RedirectResponse(f"/my/tasks/{task_id}/lock?sealed=1", status_code=303)
        else:
            raise NotFound(f"There is no lock action {step!r}.")
    except NotFound:
        raise
    except ServiceError as exc:
        session.rollback()
        return _lock_page(
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
    return _code_page(
        request,
        context,
        session,
        user=user,
        csrf_token=found.session.csrf_token,
        task=task,
        out=out,
        now=now,
    )


# --- dispatcher -----------------------------------------------------------------------


@router.get("/locks", response_class=HTMLResponse)
def lock_list(
    request: Request,
    found: AuthDep,
    user: LockReader,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    rows, total = locks.list_locks(session, limit=500)
    return context.templates.TemplateResponse(
        request,
        "locks.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "locks": [locks.to_public(session, lock) for lock in rows],
            "total": total,
            "open_alarms": lock_alarms.open_count(session),
            "now": now,
        },
    )


def _alarms_page(
    request: Request,
    context: ContextDep,
    session: Session,
    *,
    user: User,
    csrf_token: str,
    show: str,
    offset: int,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    state = AlarmState.OPEN if show != "all" else None
    rows, total = lock_alarms.list_alarms(session, state=state, limit=PAGE_SIZE, offset=offset)
    return context.templates.TemplateResponse(
        request,
        "lock_alarms.html",
        {
            "user": user,
            "csrf_token": csrf_token,
            "alarms": lock_alarms.publics(session, rows),
            "total": total,
            "show": show,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "error": error,
            "can_ack": user.role.value in ("admin", "dispatcher"),
        },
        status_code=status_code,
    )


@router.get("/locks/alarms", response_class=HTMLResponse)
def alarm_list(
    request: Request,
    found: AuthDep,
    user: LockReader,
    context: ContextDep,
    session: SessionDep,
    show: str = "open",
    offset: Offset = 0,
) -> Response:
    return _alarms_page(
        request,
        context,
        session,
        user=user,
        csrf_token=found.session.csrf_token,
        show=show,
        offset=max(0, offset),
    )


@router.post("/locks/alarms/{alarm_id}/acknowledge")
async def alarm_acknowledge(
    alarm_id: DbId,
    request: Request,
    found: AuthDep,
    user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    form = await request.form()
    note = form.get("note")
    try:
        await run_in_threadpool(
            lock_alarms.acknowledge,
            session,
            log=context.locks.audit_log(session),
            alarm_id=alarm_id,
            by=user,
            note=note if isinstance(note, str) else "",
            now=now,
        )
    except NotFound:
        raise
    except ServiceError as exc:
        session.rollback()
        return _alarms_page(
            request,
            context,
            session,
            user=user,
            csrf_token=found.session.csrf_token,
            show="open",
            offset=0,
            error=exc.detail,
            status_code=exc.status,
        )
    return RedirectResponse("/locks/alarms", status_code=303)


def _detail(
    request: Request,
    context: ContextDep,
    session: Session,
    *,
    user: User,
    csrf_token: str,
    lock_pk: DbId,
    now: datetime,
    error: str | None = None,
    note: str | None = None,
    trail: Any = None,
    status_code: int = 200,
) -> Response:
    lock = locks.get_lock(session, lock_pk=lock_pk)
    shown = locks.to_public(session, lock)
    atm = session.get(Atm, lock.atm_id)
    assert atm is not None
    place = tasks.place_of(session, atm_id=lock.atm_id)
    open_tasks = list(
        session.exec(
            select(Task)
            .where(col(Task.atm_id) == lock.atm_id, col(Task.state).in_(list(OPEN_STATES)))
            .order_by(col(Task.id))
        )
    )
    crew, _ = engineers.list_engineers(session, active=True, limit=500)
    return context.templates.TemplateResponse(
        request,
        "lock_detail.html",
        {
            "user": user,
            "csrf_token": csrf_token,
            "lock": shown,
            "tz": place.site.timezone,
            "cycles": [locks.issuance_public(c) for c in locks.history(session, lock)],
            "open_tasks": tasks.publics(session, open_tasks, now=now),
            "on_site": [t for t in open_tasks if t.state is TaskState.ON_SITE],
            "custodians": {t.id: locks.custodians(session, task_id=t.id or 0) for t in open_tasks},
            "engineers": engineers.to_public(session, crew),
            "is_dispatcher": user.role.value in ("admin", "dispatcher"),
            "is_admin": user.role.value == "admin",
            "error": error,
            "note": note,
            "trail": trail,
            "now": now,
        },
        status_code=status_code,
    )


@router.get("/locks/{lock_pk}", response_class=HTMLResponse)
def lock_detail(
    lock_pk: DbId,
    request: Request,
    found: AuthDep,
    user: LockReader,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    return _detail(
        request,
        context,
        session,
        user=user,
        csrf_token=found.session.csrf_token,
        lock_pk=lock_pk,
        now=now,
    )


@router.post("/locks/{lock_pk}/provisioning-record")
async def lock_provisioning(
    lock_pk: DbId,
    request: Request,
    user: Admin,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    form = await request.form()
    reason = form.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    if len(reason) < 3:
        raise InvalidInput("Say why the provisioning record is needed.", field="reason")
    lock = locks.get_lock(session, lock_pk=lock_pk)
    lock, record = await run_in_threadpool(
        locks.provisioning_record,
        session,
        secrets=context.locks,
        atm_id=lock.atm_id,
        by=user,
        reason=reason,
        now=now,
    )
    return Response(
        record,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{lock.lock_id}.provisioning.json"'},
    )


@router.post("/locks/{lock_pk}/{step}")
async def lock_action(
    lock_pk: DbId,
    step: str,
    request: Request,
    found: AuthDep,
    user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    """``force-close``, ``resync``, ``custodian`` or ``trail`` (a file upload)."""
    form = await request.form()
    values = {name: value for name, value in form.items() if isinstance(value, str)}
    lock = locks.get_lock(session, lock_pk=lock_pk)
    reason = values.get("reason", "")
    note = None
    trail = None
    error, status_code = None, 200
    try:
        if step == "force-close":
            closed = await run_in_threadpool(
                locks.force_close,
                session,
                secrets=context.locks,
                atm_id=lock.atm_id,
                reason=reason,
                by=user,
                now=now,
            )
            note = "The code was force-closed."
            if closed.usable_until is not None:
                zone = tasks.place_of(session, atm_id=lock.atm_id).site.timezone
                until = local(closed.usable_until, zone, "%a %d %b %H:%M")
                note += (
                    f" The lock cannot be told: the abandoned code still opens it until {until}."
                )
        elif step == "resync":
            task_text = values.get("task_id", "")
            if not task_text.isdigit():
                raise InvalidInput(
                    "Choose the on-site task whose engineer keys the resync.", field="task_id"
                )
            await run_in_threadpool(
                locks.authorise_resync,
                session,
                secrets=context.locks,
                atm_id=lock.atm_id,
                task_id=int(task_text),
                reason=reason,
                by=user,
                now=now,
                timing=context.lock_timing,
            )
            note = "Resync authorised: the engineer shows the code on their phone and keys it."
        elif step == "custodian":
            task_text, engineer_text = values.get("task_id", ""), values.get("engineer_id", "")
            if not task_text.isdigit() or not engineer_text.isdigit():
                raise InvalidInput("Choose the task and the second person.", field="engineer_id")
            await run_in_threadpool(
                locks.add_custodian,
                session,
                task_id=int(task_text),
                engineer_id=int(engineer_text),
                by=user,
                now=now,
            )
            note = "Second person added."
        elif step == "trail":
            upload = form.get("trail")
            if upload is None or isinstance(upload, str):
                raise InvalidInput("Choose the trail file the lock downloaded.", field="trail")
            try:
                data = await upload.read(lock_trail.MAX_TRAIL_BYTES + 1)
            finally:
                await form.close()
            trail = await run_in_threadpool(
                lock_trail.import_trail,
                session,
                secrets=context.locks,
                atm_id=lock.atm_id,
                data=data,
                by=user,
                now=now,
            )
            note = f"Imported {trail.imported} new record(s) of {trail.records}."
        else:
            raise NotFound(f"There is no lock action {step!r}.")
    except NotFound:
        raise
    except ServiceError as exc:
        session.rollback()
        note, trail = None, None  # the page shows the error alone
        error, status_code = exc.detail, exc.status
    return _detail(
        request,
        context,
        session,
        user=user,
        csrf_token=found.session.csrf_token,
        lock_pk=lock_pk,
        now=now,
        error=error,
        note=note,
        trail=trail,
        status_code=status_code,
    )


# --- auditor --------------------------------------------------------------------------


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a date YYYY-MM-DD.", field=name) from None


@router.get("/audit/locks", response_class=HTMLResponse)
def audit_log(
    request: Request,
    found: AuthDep,
    user: LogReader,
    context: ContextDep,
    session: SessionDep,
    atm_id: str = "",
    who: str = "",
    kind: str = "",
    start: str = "",
    end: str = "",
    offset: Offset = 0,
) -> Response:
    offset = max(0, offset)
    since_day, until_day = _day(start, "start"), _day(end, "end")
    since = datetime.combine(since_day, time(), UTC) if since_day else None
    until = datetime.combine(until_day + timedelta(days=1), time(), UTC) if until_day else None
    all_locks, _ = locks.list_locks(session, limit=500)
    terminals = {
        lock.atm_id: atm.terminal_id
        for lock in all_locks
        if (atm := session.get(Atm, lock.atm_id)) is not None
    }
    chosen: Lock | None = None
    if atm_id.isdigit():
        chosen = locks.lock_for_atm(session, atm_id=int(atm_id))
    number = None
    if who:
        person = users.find_user(session, username=who.strip())
        number = person.id if person is not None else -1
    rows, total = lock_log.query(
        session,
        lock_id=chosen.lock_id if chosen else None,
        username=who.strip() or None,
        user_number=number,
        kind=kind or None,
        since=since,
        until=until,
        limit=PAGE_SIZE,
        offset=offset,
    )
    filters = {"atm_id": atm_id, "who": who, "kind": kind, "start": start, "end": end}
    query = urlencode({k: v for k, v in filters.items() if v})
    return context.templates.TemplateResponse(
        request,
        "audit_locks.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "entries": [lock_log.to_public(row) for row in rows],
            "total": total,
            "size": lock_log.size(session),
            "kinds": lock_log.kinds(session),
            "locks": sorted(
                (
                    (lock.atm_id, terminals.get(lock.atm_id, "?"), lock.lock_id)
                    for lock in all_locks
                ),
                key=lambda item: item[1],
            ),
            "filters": filters,
            "query": query,
            "offset": offset,
            "page_size": PAGE_SIZE,
        },
    )


@router.get("/audit/locks/verification", response_class=HTMLResponse)
def audit_verification(
    request: Request,
    found: AuthDep,
    user: LogReader,
    context: ContextDep,
    session: SessionDep,
) -> Response:
    result = lock_log.verify_stored(session, secrets=context.locks)
    return context.templates.TemplateResponse(
        request,
        "audit_verification.html",
        {"user": user, "csrf_token": found.session.csrf_token, "result": result},
    )


@router.post("/audit/locks/export")
async def audit_export(
    request: Request,
    user: LogReader,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    form = await request.form()
    start_text = form.get("start")
    start_text = start_text.strip() if isinstance(start_text, str) else ""
    if start_text and not start_text.isdigit():
        raise InvalidInput("start must be an entry number (0 for the whole log).", field="start")
    spool = tempfile.SpooledTemporaryFile(max_size=lock_log.SPOOL_BYTES)  # noqa: SIM115 - closed by _stream
    try:
        await run_in_threadpool(
            lock_log.export,
            session,
            secrets=context.locks,
            out=spool,
            by=user.username,
            start=int(start_text or 0),
            now=now,
        )
    except BaseException:
        spool.close()
        raise
    name = f"lock-log-{now:%Y%m%dT%H%M%SZ}.jsonl"
    return StreamingResponse(
        lock_log.read_chunks(spool),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
