"""``/api/v1/lock-log``: the lock-access log for auditors (read-only) and administrators.

Filtered reading, verification of the stored log now, the log's public key, and
a signed export that ``atm-lock verify-export FILE --public-key KEY`` checks
offline (the export itself is logged first).
"""

from __future__ import annotations

import tempfile
from datetime import datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse

from atm_service.api.deps import ContextDep, LogReader, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.models.locks import ExportIn, LogEntryPublic, LogVerification
from atm_service.services import lock_log, locks, users
from lockctl.signing import public_key_text

router = APIRouter(prefix="/lock-log", tags=["lock log"], responses=problems(401, 403))


@router.get(
    "",
    response_model=Page[LogEntryPublic],
    summary="Entries, newest first, filtered",
    responses=problems(404),
)
def list_entries(
    session: SessionDep,
    _user: LogReader,
    atm_id: DbId | None = None,
    user: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[LogEntryPublic]:
    lock_id = locks.lock_for_atm(session, atm_id=atm_id).lock_id if atm_id is not None else None
    number = None
    if user:
        found = users.find_user(session, username=user)
        number = found.id if found is not None else -1
    rows, total = lock_log.query(
        session,
        lock_id=lock_id,
        username=user or None,
        user_number=number,
        kind=kind or None,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return Page(
        items=[lock_log.to_public(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/verification",
    response_model=LogVerification,
    summary="Verify the stored log now: valid up to N, or the first bad entry and why",
    responses=problems(503),
)
def verify(session: SessionDep, context: ContextDep, _user: LogReader) -> LogVerification:
    return lock_log.verify_stored(session, secrets=context.locks)


@router.get(
    "/public-key",
    response_class=PlainTextResponse,
    summary="The log's checkpoint public key (ed25519:<base64>), for verify-export",
    responses=problems(503),
)
def public_key(context: ContextDep, _user: LogReader) -> str:
    return public_key_text(context.locks.signer().public_key) + "\n"


@router.post(
    "/export",
    summary="A signed export for offline verification (the export is logged)",
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "atm-lock-log-export"},
        **problems(422, 503),
    },
)
async def export(
    data: ExportIn, session: SessionDep, context: ContextDep, now: NowDep, user: LogReader
) -> StreamingResponse:
    spool = tempfile.SpooledTemporaryFile(max_size=lock_log.SPOOL_BYTES)  # noqa: SIM115 - closed by _stream
    try:
        await run_in_threadpool(
            lock_log.export,
            session,
            secrets=context.locks,
            out=spool,
            by=user.username,
            start=data.start,
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
