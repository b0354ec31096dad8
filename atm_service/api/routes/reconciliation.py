"""``/api/v1/reconciliation``: runs, their progress and reports, discrepancies and their resolution.

The reconciliation team (and administrators) start runs and resolve
discrepancies; auditors read everything, the audit trail included. A run is
started with a ``multipart/form-data`` POST: files under ``ej``, ``paper``,
``host``, ``counters`` (each repeatable), or a zip/tar ``archive`` of the
``ej/ paper/ host/ counters/`` tree; and/or days already ingested
(``date_from``, ``date_to``, optional ``terminals``). It answers 202 at once;
the run executes in the background and ``GET /runs/{id}`` shows its progress.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from atm_service.api.deps import (
    ContextDep,
    IdempotencyKey,
    NowDep,
    Reconciler,
    ReconReader,
    SessionDep,
)
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.errors import InvalidInput
from atm_service.models.base import MAX_BIG
from atm_service.models.reconciliation import (
    DiscrepancyDetail,
    DiscrepancyPublic,
    DiscrepancyStatus,
    IngestedDay,
    NoteIn,
    ResolutionAction,
    RunDetail,
    RunPublic,
    RunState,
)
from atm_service.services import discrepancies, recon_exports, recon_runs
from atm_service.services.discrepancies import DiscrepancyFilter
from atm_service.services.recon_runs import REPORT_FILES, DaySelection
from atm_service.services.recon_uploads import Upload, receive
from reconciliation import Kind

router = APIRouter(prefix="/reconciliation", tags=["reconciliation"], responses=problems(401, 403))

_TERMINAL = re.compile(r"^[A-Za-z0-9]{8}$")
# The stored HTML report is the library's self-contained page: inline styles, no script.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)

FileList = list[UploadFile] | None


def uploads_of(fields: dict[str, list[UploadFile] | None]) -> list[Upload]:
    """The files of a form, in field order (the form parser has already bounded them)."""
    found: list[Upload] = []
    for name, files in fields.items():
        for upload in files or []:
            if not upload.filename and upload.size == 0:
                continue  # an empty file input of a browser form
            upload.file.seek(0)
            found.append(Upload(name, upload.filename or "", upload.file.read()))
    return found


def terminals_of(values: list[str]) -> tuple[str, ...]:
    """Terminal ids from repeated fields, each possibly a list split by commas or spaces."""
    found: list[str] = []
    for value in values:
        for part in re.split(r"[\s,;]+", value.strip()):
            if not part:
                continue
            if not _TERMINAL.match(part):
                raise InvalidInput(
                    f"{part!r} is not a terminal id (8 letters and digits).", field="terminals"
                )
            if part not in found:
                found.append(part)
    return tuple(found)


def selection_of(
    terminals: list[str], date_from: date | None, date_to: date | None, from_devices: bool
) -> DaySelection | None:
    chosen = terminals_of(terminals)
    if date_from is None:
        if chosen or date_to is not None:
            raise InvalidInput(
                "Choose the first business day to reconcile stored journals.", field="date_from"
            )
        return None
    return DaySelection(chosen, date_from, date_to or date_from, from_devices)


@router.post(
    "/runs",
    response_model=RunPublic,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a run from uploaded files and/or days already ingested",
    description=(
        "Files are named as in `shared/formats/README.md`: `<TID>_<YYYYMMDD>.txt` (EJ, "
        "paper), `<TID>_<YYYYMMDD>.json` (counters), `<YYYYMMDD>.iso` / `.csv` (host). An "
        "archive (zip, tar, tar.gz) holds them in `ej/`, `paper/`, `host/`, `counters/` "
        "folders; other entries are passed over and listed on the run. With `date_from` the "
        "run also reads the journals agents uploaded for those days (all terminals, or "
        "`terminals`), and counters built from the devices' reports where no counters file is "
        "uploaded (`counters_from_devices`). The run is queued: poll `GET /runs/{id}`."
    ),
    responses=problems(413, 422),
)
def start_run(
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Reconciler,
    response: Response,
    ej: Annotated[FileList, File(description="Electronic journals")] = None,
    paper: Annotated[FileList, File(description="Paper journals (OCR text)")] = None,
    host: Annotated[FileList, File(description="ISO 8583 logs and CSV exports")] = None,
    counters: Annotated[FileList, File(description="XFS counters files")] = None,
    archive: Annotated[
        FileList, File(description="zip or tar of ej/ paper/ host/ counters/")
    ] = None,
    terminals: Annotated[
        list[str] | None, Form(description="Terminal ids for days already ingested")
    ] = None,
    date_from: Annotated[date | None, Form(description="First business day")] = None,
    date_to: Annotated[date | None, Form(description="Last business day")] = None,
    counters_from_devices: Annotated[bool, Form()] = True,
    time_window_seconds: Annotated[int, Form(ge=0, le=3600)] = 120,
) -> RunPublic:
    selection = selection_of(terminals or [], date_from, date_to, counters_from_devices)
    files = uploads_of(
        {"ej": ej, "paper": paper, "host": host, "counters": counters, "archive": archive}
    )
    received = receive(files, max_bytes=context.settings.recon_upload_max_bytes)
    run = recon_runs.start_run(
        session,
        by=user,
        now=now,
        received=received,
        selection=selection,
        time_window_seconds=time_window_seconds,
    )
    context.recon.wake()
    response.headers["Location"] = f"/api/v1/reconciliation/runs/{run.id}"
    return recon_runs.public(run, open_count=0)


@router.get("/runs", response_model=Page[RunPublic], summary="Runs, newest first")
def list_runs(
    session: SessionDep,
    _user: ReconReader,
    state: RunState | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[RunPublic]:
    runs, total = recon_runs.list_runs(session, state=state, limit=limit, offset=offset)
    return Page(items=recon_runs.publics(session, runs), total=total, limit=limit, offset=offset)


@router.get(
    "/runs/{run_id}",
    response_model=RunDetail,
    summary="A run: state, progress, sources, summary, report files",
    responses=problems(404),
)
def get_run(run_id: DbId, session: SessionDep, _user: ReconReader) -> RunDetail:
    return recon_runs.detail(session, recon_runs.get_run(session, run_id=run_id))


ReportName = Literal["report.html", "summary.json", "settlement.csv", "report.xlsx"]


@router.get(
    "/runs/{run_id}/files/{name}",
    response_class=Response,
    summary="A report of a done run: the HTML report with its charts, the summary, the "
    "settlement, the library's workbook",
    responses={
        200: {"content": {media: {} for media in sorted(set(REPORT_FILES.values()))}},
        **problems(404),
    },
)
def get_run_file(
    run_id: DbId,
    name: ReportName,
    session: SessionDep,
    _user: ReconReader,
    download: bool = False,
) -> Response:
    found = recon_runs.run_file(session, run_id=run_id, name=name)
    disposition = "attachment" if download or name != "report.html" else "inline"
    headers = {"Content-Disposition": f'{disposition}; filename="run-{run_id}-{name}"'}
    if name == "report.html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return Response(content=bytes(found.data), media_type=found.media_type, headers=headers)


@router.get(
    "/ingested-days",
    response_model=Page[IngestedDay],
    summary="Journals the agents uploaded, by terminal and business day (newest first)",
)
def list_ingested_days(
    session: SessionDep,
    _user: ReconReader,
    terminals: Annotated[list[str] | None, Query()] = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[IngestedDay]:
    days, total = recon_runs.ingested_days(
        session,
        terminals=terminals_of(terminals or []),
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        offset=offset,
    )
    return Page(items=days, total=total, limit=limit, offset=offset)


def discrepancy_filter(
    run_id: DbId | None = None,
    kind: Kind | None = None,
    terminal_id: Annotated[
        str | None, Query(max_length=8, description="A terminal id, or its start")
    ] = None,
    date_from: Annotated[date | None, Query(description="Business day, inclusive")] = None,
    date_to: Annotated[date | None, Query(description="Business day, inclusive")] = None,
    owed_to: Literal["customer", "bank", "none"] | None = None,
    status: DiscrepancyStatus | None = None,
    amount_min: Annotated[
        int | None, Query(ge=0, le=MAX_BIG, description="Minor units, inclusive")
    ] = None,
    amount_max: Annotated[
        int | None, Query(ge=0, le=MAX_BIG, description="Minor units, inclusive")
    ] = None,
) -> DiscrepancyFilter:
    return DiscrepancyFilter(
        run_id=run_id,
        kind=kind.value if kind else None,
        terminal_id=terminal_id or None,
        date_from=date_from,
        date_to=date_to,
        owed_to=owed_to,
        status=status,
        amount_min=amount_min,
        amount_max=amount_max,
    )


FilterDep = Annotated[DiscrepancyFilter, Depends(discrepancy_filter)]
Sort = Annotated[
    Literal["position", "amount", "deadline"],
    Query(
        description="position: run, then terminal, date and time; amount: largest first; "
        "deadline: nearest dispute deadline first"
    ),
]


@router.get(
    "/discrepancies",
    response_model=Page[DiscrepancyPublic],
    summary="Discrepancies of done runs, filtered",
    responses=problems(422),
)
def list_discrepancies(
    session: SessionDep,
    _user: ReconReader,
    where: FilterDep,
    sort: Sort = "position",
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DiscrepancyPublic]:
    found, total = discrepancies.list_discrepancies(
        session, where, sort=sort, limit=limit, offset=offset
    )
    return Page(items=discrepancies.publics(found), total=total, limit=limit, offset=offset)


@router.get(
    "/discrepancies/export",
    response_class=Response,
    summary="The filtered discrepancies as CSV, XLSX or JSONL (with evidence)",
    responses={
        200: {"content": {media: {} for media in recon_exports.FORMATS.values()}},
        **problems(422),
    },
)
def export_discrepancies(
    session: SessionDep,
    _user: ReconReader,
    where: FilterDep,
    format: Literal["csv", "xlsx", "jsonl"] = "csv",
    sort: Sort = "position",
) -> Response:
    done = recon_exports.export(session, where, fmt=format, sort=sort)
    return StreamingResponse(
        done.chunks(),
        media_type=done.media_type,
        headers={"Content-Disposition": f'attachment; filename="{done.filename}"'},
    )


@router.get(
    "/discrepancies/{discrepancy_id}",
    response_model=DiscrepancyDetail,
    summary="A discrepancy with its evidence and the audit trail of its status",
    responses=problems(404),
)
def get_discrepancy(
    discrepancy_id: DbId, session: SessionDep, _user: ReconReader
) -> DiscrepancyDetail:
    item = discrepancies.get_discrepancy(session, discrepancy_id=discrepancy_id)
    return discrepancies.detail(session, item)


def _change(
    action: ResolutionAction,
    discrepancy_id: DbId,
    data: NoteIn,
    session: SessionDep,
    now: NowDep,
    user: Reconciler,
    key: str | None,
) -> DiscrepancyDetail:
    item = discrepancies.change_status(
        session,
        discrepancy_id=discrepancy_id,
        action=action,
        note=data.note,
        by=user,
        now=now,
        version=data.version,
        idempotency_key=key,
    )
    return discrepancies.detail(session, item)


@router.post(
    "/discrepancies/{discrepancy_id}/resolve",
    response_model=DiscrepancyDetail,
    summary="Mark a discrepancy resolved, with a note (audited)",
    responses=problems(404, 409, 422),
)
def resolve_discrepancy(
    discrepancy_id: DbId,
    data: NoteIn,
    session: SessionDep,
    now: NowDep,
    user: Reconciler,
    key: IdempotencyKey = None,
) -> DiscrepancyDetail:
    return _change(ResolutionAction.RESOLVE, discrepancy_id, data, session, now, user, key)


@router.post(
    "/discrepancies/{discrepancy_id}/reopen",
    response_model=DiscrepancyDetail,
    summary="Reopen a resolved discrepancy, with a note (audited)",
    responses=problems(404, 409, 422),
)
def reopen_discrepancy(
    discrepancy_id: DbId,
    data: NoteIn,
    session: SessionDep,
    now: NowDep,
    user: Reconciler,
    key: IdempotencyKey = None,
) -> DiscrepancyDetail:
    return _change(ResolutionAction.REOPEN, discrepancy_id, data, session, now, user, key)
