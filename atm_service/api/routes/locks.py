"""``/api/v1`` lock control: locks, one-time codes, seals, force-close, resync, trails, alarms.

Engineers on site ask for codes and report seals for the lock of the ATM of
their task (``/atms/{atm_id}/lock/...``); the issuance rules are in
``docs/locks.md``. A code is in the response once and never again. Dispatchers
force-close, authorise resyncs, import lock trails, add the second person of a
dual-control task and acknowledge alarms; administrators provision locks and
export a lock's provisioning record. Every one of these is in the lock-access log.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from atm_service.api.deps import (
    Admin,
    CodeRequestLimit,
    ContextDep,
    Dispatcher,
    EngineerUser,
    LockReader,
    NowDep,
    SessionDep,
)
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.errors import PayloadTooLarge
from atm_service.models.locks import (
    AcknowledgeIn,
    AlarmPublic,
    AlarmState,
    CodeOut,
    CodeRequest,
    CustodianIn,
    CustodianPublic,
    ForceClosedOut,
    IssuancePublic,
    LockCreate,
    LockPublic,
    ProvisioningExportIn,
    ReasonBody,
    ResyncIn,
    SealIn,
    SealOut,
    TaskRef,
    TrailImportOut,
)
from atm_service.services import lock_alarms, lock_trail, locks

router = APIRouter(tags=["locks"], responses=problems(401, 403))

LOCK = "/atms/{atm_id}/lock"


@router.get("/locks", response_model=Page[LockPublic], summary="Every ATM's safe lock")
def list_locks(
    session: SessionDep, _user: LockReader, limit: Limit = 100, offset: Offset = 0
) -> Page[LockPublic]:
    found, total = locks.list_locks(session, limit=limit, offset=offset)
    return Page(
        items=[locks.to_public(session, lock) for lock in found],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    LOCK,
    response_model=LockPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Provision the ATM's lock: a new key in the vault, the chain at its first seal",
    responses=problems(404, 409, 422, 503),
)
def provision_lock(
    atm_id: DbId,
    data: LockCreate,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Admin,
) -> LockPublic:
    lock = locks.provision(
        session, secrets=context.locks, atm_id=atm_id, data=data, by=user, now=now
    )
    return locks.to_public(session, lock)


@router.get(
    LOCK, response_model=LockPublic, summary="The ATM's lock and its chain", responses=problems(404)
)
def get_lock(atm_id: DbId, session: SessionDep, _user: LockReader) -> LockPublic:
    return locks.to_public(session, locks.lock_for_atm(session, atm_id=atm_id))


@router.post(
    LOCK + "/provisioning-record",
    summary="Download the record that loads the lock (its key in clear): audited",
    responses={
        200: {"content": {"application/json": {}}, "description": "atm-lock-provisioning"},
        **problems(404, 422, 503),
    },
)
def export_provisioning(
    atm_id: DbId,
    data: ProvisioningExportIn,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Admin,
) -> Response:
    lock, record = locks.provisioning_record(
        session, secrets=context.locks, atm_id=atm_id, by=user, reason=data.reason, now=now
    )
    return Response(
        record,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{lock.lock_id}.provisioning.json"'},
    )


@router.post(
    LOCK + "/codes",
    response_model=CodeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Ask for a one-time code, on site at the task's ATM (shown once)",
    responses={
        202: {"model": CodeOut, "description": "Dual control: waiting for the second person"},
        **problems(404, 409, 422, 429, 503),
    },
)
def request_code(
    atm_id: DbId,
    data: CodeRequest,
    response: Response,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: EngineerUser,
    _limit: CodeRequestLimit,
) -> CodeOut:
    out = locks.request_code(
        session,
        secrets=context.locks,
        atm_id=atm_id,
        task_id=data.task_id,
        user=user,
        operation=data.operation,
        now=now,
        timing=context.lock_timing,
    )
    if out.status == "waiting":
        response.status_code = status.HTTP_202_ACCEPTED
    return out


@router.post(
    LOCK + "/codes/reveal",
    response_model=CodeOut,
    summary="Show a code issued to me that I have not seen (dual control, resync): once",
    responses=problems(404, 409, 422, 429, 503),
)
def reveal_code(
    atm_id: DbId,
    data: TaskRef,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: EngineerUser,
    _limit: CodeRequestLimit,
) -> CodeOut:
    return locks.reveal_code(
        session,
        secrets=context.locks,
        atm_id=atm_id,
        task_id=data.task_id,
        user=user,
        now=now,
        timing=context.lock_timing,
    )


@router.post(
    LOCK + "/seal",
    response_model=SealOut,
    summary="Report the close seal the lock showed: closes the code cycle",
    responses=problems(404, 409, 422, 429, 503),
)
def report_seal(
    atm_id: DbId,
    data: SealIn,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: EngineerUser,
    _limit: CodeRequestLimit,
) -> SealOut:
    return locks.report_seal(
        session,
        secrets=context.locks,
        atm_id=atm_id,
        task_id=data.task_id,
        seal=data.seal,
        user=user,
        now=now,
    )


@router.post(
    LOCK + "/force-close",
    response_model=ForceClosedOut,
    summary="Abandon the open code without a seal, with a reason",
    responses=problems(404, 409, 422, 503),
)
def force_close(
    atm_id: DbId,
    data: ReasonBody,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Dispatcher,
) -> ForceClosedOut:
    return locks.force_close(
        session, secrets=context.locks, atm_id=atm_id, reason=data.reason, by=user, now=now
    )


@router.post(
    LOCK + "/resync",
    response_model=IssuancePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Authorise a resync code for the engineer on site, with a reason",
    responses=problems(404, 409, 422, 503),
)
def resync(
    atm_id: DbId,
    data: ResyncIn,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Dispatcher,
) -> IssuancePublic:
    return locks.authorise_resync(
        session,
        secrets=context.locks,
        atm_id=atm_id,
        task_id=data.task_id,
        reason=data.reason,
        by=user,
        now=now,
        timing=context.lock_timing,
    )


@router.post(
    LOCK + "/trail",
    response_model=TrailImportOut,
    summary="Import the lock's downloaded trail (JSON lines) and compare it with the log",
    responses=problems(404, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
async def import_trail(
    atm_id: DbId,
    request: Request,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Dispatcher,
) -> TrailImportOut:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > lock_trail.MAX_TRAIL_BYTES:
            raise PayloadTooLarge("A trail file is limited to 1 MiB; download a shorter one.")
    return await run_in_threadpool(
        lock_trail.import_trail,
        session,
        secrets=context.locks,
        atm_id=atm_id,
        data=bytes(body),
        by=user,
        now=now,
    )


@router.post(
    "/tasks/{task_id}/custodians",
    response_model=CustodianPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Add the second person of a dual-control task",
    responses=problems(404, 409, 422),
)
def add_custodian(
    task_id: DbId, data: CustodianIn, session: SessionDep, now: NowDep, user: Dispatcher
) -> CustodianPublic:
    locks.add_custodian(session, task_id=task_id, engineer_id=data.engineer_id, by=user, now=now)
    return next(
        c for c in locks.custodians(session, task_id=task_id) if c.engineer_id == data.engineer_id
    )


@router.get(
    "/tasks/{task_id}/custodians",
    response_model=list[CustodianPublic],
    summary="The second person(s) of a task",
)
def list_custodians(task_id: DbId, session: SessionDep, _user: Dispatcher) -> list[CustodianPublic]:
    return locks.custodians(session, task_id=task_id)


@router.get("/lock-alarms", response_model=Page[AlarmPublic], summary="Lock alarms, newest first")
def list_alarms(
    session: SessionDep,
    _user: LockReader,
    state: AlarmState | None = None,
    atm_id: DbId | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AlarmPublic]:
    found, total = lock_alarms.list_alarms(
        session, state=state, atm_id=atm_id, limit=limit, offset=offset
    )
    return Page(items=lock_alarms.publics(session, found), total=total, limit=limit, offset=offset)


@router.post(
    "/lock-alarms/{alarm_id}/acknowledge",
    response_model=AlarmPublic,
    summary="Acknowledge an alarm with a note (logged)",
    responses=problems(404, 409, 422, 503),
)
def acknowledge_alarm(
    alarm_id: DbId,
    data: AcknowledgeIn,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Dispatcher,
) -> AlarmPublic:
    alarm = lock_alarms.acknowledge(
        session,
        log=context.locks.audit_log(session),
        alarm_id=alarm_id,
        by=user,
        note=data.note,
        now=now,
    )
    return lock_alarms.publics(session, [alarm])[0]
