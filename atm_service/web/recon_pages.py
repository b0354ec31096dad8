"""The reconciliation team's pages: runs, a run's progress and outcome, discrepancies, one
discrepancy with its evidence side by side, and its resolution.

Server-rendered and working without JavaScript: a queued or running run's page
refreshes itself (``<meta http-equiv="refresh">``) until the run ends. The
team (and administrators) start runs and resolve or reopen discrepancies;
auditors see every page and every export, without the forms. Each form
carries the session's CSRF token; a resolve or reopen form also carries a
fresh idempotency key and the version it was made from, so a double submit
does the change once and a stale page is told to reload.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from atm_service.api.deps import (
    AuthDep,
    ContextDep,
    NowDep,
    Reconciler,
    ReconReader,
    SessionDep,
)
from atm_service.api.routes.reconciliation import selection_of, uploads_of
from atm_service.errors import InvalidInput, ServiceError
from atm_service.models.reconciliation import (
    DiscrepancyStatus,
    ReconDiscrepancy,
    ResolutionAction,
    RunState,
)
from atm_service.models.users import Role, User
from atm_service.services import discrepancies, recon_runs
from atm_service.services.discrepancies import SORTS, DiscrepancyFilter
from atm_service.services.recon_runs import DaySelection
from atm_service.services.recon_uploads import receive
from atm_service.web import recon_views
from atm_service.web.recon_views import parse_amount, parse_day
from reconciliation import Kind

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
RUNS_PAGE = 20
REFRESH_SECONDS = 2
API = "/api/v1/reconciliation"
FileField = Annotated[list[UploadFile] | None, File()]


def _can_act(user: User) -> bool:
    return user.role in (Role.ADMIN, Role.RECONCILER)


def _base(user: User, csrf_token: str) -> dict[str, Any]:
    return {
        "user": user,
        "csrf_token": csrf_token,
        "can_act": _can_act(user),
        "kind_label": recon_views.kind_label,
        "action_label": recon_views.action_label,
        "owed_labels": recon_views.OWED_LABELS,
        "api": API,
    }


# --- runs ----------------------------------------------------------------------------


def _ingested_overview(session: SessionDep) -> tuple[list[dict[str, Any]], list[str]]:
    """Recent business days with stored journals (terminals, bytes), and those terminals."""
    days, _ = recon_runs.ingested_days(session, limit=5000)
    by_day: dict[date, list[Any]] = defaultdict(list)
    for day in days:
        by_day[day.business_date].append(day)
    overview = [
        {
            "date": day,
            "terminals": len(entries),
            "size": sum(entry.size for entry in entries),
        }
        for day, entries in sorted(by_day.items(), reverse=True)[:14]
    ]
    terminals = sorted({day.terminal_id for day in days})
    return overview, terminals


def _runs_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    *,
    user: User,
    csrf_token: str,
    now: datetime,
    offset: int = 0,
    error: str | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    runs, total = recon_runs.list_runs(session, limit=RUNS_PAGE, offset=offset)
    overview, terminals = _ingested_overview(session)
    if form is None:
        # Reconcilers reconcile a closed day: the newest one ingested, usually yesterday.
        closed = recon_runs.newest_closed_day(session, now=now)
        day = closed.isoformat() if closed is not None else ""
        form = {"date_from": day, "date_to": day, "time_window_seconds": 120}
    return context.templates.TemplateResponse(
        request,
        "recon_runs.html",
        {
            **_base(user, csrf_token),
            "runs": recon_runs.publics(session, runs),
            "total": total,
            "offset": offset,
            "page_size": RUNS_PAGE,
            "overview": overview,
            "terminals": terminals,
            "error": error,
            "form": form,
            "max_mib": context.settings.recon_upload_max_bytes // (1024 * 1024),
            "phases": recon_views.PHASE_LABELS,
        },
        status_code=status_code,
    )


@router.get("/reconciliation", response_class=HTMLResponse)
def runs_page(
    request: Request,
    found: AuthDep,
    user: ReconReader,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    offset: int = 0,
) -> Response:
    return _runs_page(
        request,
        context,
        session,
        user=user,
        csrf_token=found.session.csrf_token,
        now=now,
        offset=max(offset, 0),
    )


@router.post("/reconciliation/runs")
def start_run(
    request: Request,
    found: AuthDep,
    user: Reconciler,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    source: Annotated[str, Form(max_length=16)] = "files",
    ej: FileField = None,
    paper: FileField = None,
    host: FileField = None,
    counters: FileField = None,
    archive: FileField = None,
    terminals: Annotated[list[str] | None, Form()] = None,
    terminal_ids: Annotated[str, Form(max_length=20000)] = "",
    date_from: Annotated[str, Form(max_length=10)] = "",
    date_to: Annotated[str, Form(max_length=10)] = "",
    counters_from_devices: Annotated[str, Form(max_length=8)] = "",
    time_window_seconds: Annotated[str, Form(max_length=8)] = "120",
) -> Response:
    typed = {
        "source": source,
        "terminals": terminals or [],
        "terminal_ids": terminal_ids,
        "date_from": date_from,
        "date_to": date_to,
        "counters_from_devices": bool(counters_from_devices),
        "time_window_seconds": time_window_seconds,
    }
    try:
        window = time_window_seconds.strip() or "120"
        if not window.isdigit():
            raise InvalidInput("The time window is a whole number of seconds.", field="window")
        selection: DaySelection | None = None
        if source == "ingested":
            first = parse_day(date_from, "date_from")
            if first is None:
                raise InvalidInput("Choose the first business day.", field="date_from")
            selection = selection_of(
                [*(terminals or []), terminal_ids],
                first,
                parse_day(date_to, "date_to"),
                bool(counters_from_devices),
            )
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
            time_window_seconds=int(window),
        )
    except ServiceError as exc:
        session.rollback()
        return _runs_page(
            request,
            context,
            session,
            user=user,
            csrf_token=found.session.csrf_token,
            now=now,
            error=exc.detail,
            form=typed,
            status_code=exc.status,
        )
    context.recon.wake()
    return RedirectResponse(f"/reconciliation/runs/{run.id}", status_code=303)


@router.get("/reconciliation/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    run_id: int,
    request: Request,
    found: AuthDep,
    user: ReconReader,
    context: ContextDep,
    session: SessionDep,
) -> Response:
    run = recon_runs.get_run(session, run_id=run_id)
    shown = recon_runs.detail(session, run)
    summary = shown.summary
    by_kind = [
        {
            "kind": kind,
            "count": count,
            "amount": summary.get("amount_minor_by_kind", {}).get(kind, 0),
            "href": "/reconciliation/discrepancies?" + urlencode({"run_id": run_id, "kind": kind}),
        }
        for kind, count in summary.get("by_kind", {}).items()
    ]
    return context.templates.TemplateResponse(
        request,
        "recon_run.html",
        {
            **_base(user, found.session.csrf_token),
            "run": shown,
            "by_kind": by_kind,
            "currency": summary.get("currency", "USD"),
            "phase": recon_views.PHASE_LABELS.get(shown.progress.phase, shown.progress.phase),
            "refresh": REFRESH_SECONDS if not run.state.finished else None,
            "running": run.state in (RunState.QUEUED, RunState.RUNNING),
            "list_href": f"/reconciliation/discrepancies?run_id={run_id}",
        },
    )


# --- discrepancies ---------------------------------------------------------------------


def _filter_from(params: dict[str, str]) -> DiscrepancyFilter:
    run_text = params.get("run_id", "").strip()
    if run_text and not run_text.isdigit():
        raise InvalidInput("The run is a number.", field="run_id")
    kind = params.get("kind", "").strip() or None
    if kind is not None and kind not in {k.value for k in Kind}:
        raise InvalidInput(f"There is no discrepancy kind {kind!r}.", field="kind")
    status_text = params.get("status", "").strip()
    if status_text and status_text not in {s.value for s in DiscrepancyStatus}:
        raise InvalidInput("The status is open or resolved.", field="status")
    where = DiscrepancyFilter(
        run_id=int(run_text) if run_text else None,
        kind=kind,
        terminal_id=params.get("terminal_id", "").strip() or None,
        date_from=parse_day(params.get("date_from", ""), "date_from"),
        date_to=parse_day(params.get("date_to", ""), "date_to"),
        owed_to=params.get("owed_to", "").strip() or None,
        status=DiscrepancyStatus(status_text) if status_text else None,
        amount_min=parse_amount(params.get("amount_from", ""), "amount_from"),
        amount_max=parse_amount(params.get("amount_to", ""), "amount_to"),
    )
    where.check()
    return where


_FILTER_FIELDS = (
    "run_id",
    "kind",
    "terminal_id",
    "date_from",
    "date_to",
    "owed_to",
    "status",
    "amount_from",
    "amount_to",
    "sort",
)


@router.get("/reconciliation/discrepancies", response_class=HTMLResponse)
def discrepancies_page(
    request: Request,
    found: AuthDep,
    user: ReconReader,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    params = {
        name: value[:64]
        for name, value in request.query_params.items()
        if name in (*_FILTER_FIELDS, "offset")
    }
    sort = params.get("sort") or "position"
    offset_text = params.get("offset", "0")
    offset = int(offset_text) if offset_text.isdigit() else 0
    error = None
    items: list[ReconDiscrepancy] = []
    total = 0
    owed: dict[str, int] = {}
    where = DiscrepancyFilter()
    try:
        if sort not in SORTS:
            raise InvalidInput("Sort by position, amount or deadline.", field="sort")
        where = _filter_from(params)
        items, total = discrepancies.list_discrepancies(
            session, where, sort=sort, limit=PAGE_SIZE, offset=offset
        )
        owed = discrepancies.totals(session, where)
    except InvalidInput as exc:
        error = exc.detail
    kept = {name: params[name] for name in _FILTER_FIELDS if params.get(name)}
    query = urlencode(kept)
    export = urlencode({**where.params(), "sort": sort}) if error is None else ""
    runs, _ = recon_runs.list_runs(session, state=RunState.DONE, limit=50)
    today = now.date()
    return context.templates.TemplateResponse(
        request,
        "recon_discrepancies.html",
        {
            **_base(user, found.session.csrf_token),
            "items": items,
            "deadlines": {
                item.id: recon_views.deadline_words(item.dispute_deadline, today) for item in items
            },
            "total": total,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "owed": owed,
            "form": params,
            "sort": sort,
            "sorts": SORTS,
            "kinds": [kind.value for kind in Kind],
            "statuses": [status.value for status in DiscrepancyStatus],
            "runs": runs,
            "query": query,
            "export": export,
            "back": "/reconciliation/discrepancies" + (f"?{query}" if query else ""),
            "error": error,
        },
        status_code=422 if error else 200,
    )


def _safe_back(target: str, fallback: str) -> str:
    if target.startswith("/reconciliation") and not target.startswith("//"):
        return target
    return fallback


def _discrepancy_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    *,
    user: User,
    csrf_token: str,
    discrepancy_id: int,
    today: date,
    back: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    item = discrepancies.get_discrepancy(session, discrepancy_id=discrepancy_id)
    shown = discrepancies.detail(session, item)
    evidence = item.evidence or {}
    needles = recon_views.needles(item)
    action = (
        ResolutionAction.RESOLVE
        if item.status is DiscrepancyStatus.OPEN
        else ResolutionAction.REOPEN
    )
    return context.templates.TemplateResponse(
        request,
        "recon_discrepancy.html",
        {
            **_base(user, csrf_token),
            "d": shown,
            "facts": recon_views.detail_facts(item.detail, item.currency),
            "deadline_words": recon_views.deadline_words(item.dispute_deadline, today),
            "ej_lines": recon_views.marked_lines(str(evidence.get("ej_excerpt", "")), needles),
            "ej_location": evidence.get("ej_location", ""),
            "paper_lines": recon_views.marked_lines(
                str(evidence.get("paper_excerpt", "")), needles
            ),
            "paper_location": evidence.get("paper_location", ""),
            "host_columns": [label for _, label in recon_views.HOST_COLUMNS],
            "host_rows": recon_views.host_rows(list(evidence.get("host_messages") or [])),
            "counter_columns": [label for _, label in recon_views.COUNTER_COLUMNS],
            "counter_tables": recon_views.counter_tables(dict(evidence.get("counters") or {})),
            "action": action.value,
            "key": secrets.token_urlsafe(16),
            "back": back,
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/reconciliation/discrepancies/{discrepancy_id}", response_class=HTMLResponse)
def discrepancy_page(
    discrepancy_id: int,
    request: Request,
    found: AuthDep,
    user: ReconReader,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    back: str = "",
) -> Response:
    return _discrepancy_page(
        request,
        context,
        session,
        user=user,
        csrf_token=found.session.csrf_token,
        discrepancy_id=discrepancy_id,
        today=now.date(),
        back=_safe_back(back, "/reconciliation/discrepancies"),
    )


@router.post("/reconciliation/discrepancies/{discrepancy_id}/{step}")
def change_status(
    discrepancy_id: int,
    step: str,
    request: Request,
    found: AuthDep,
    user: Reconciler,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    note: Annotated[str, Form(max_length=4000)] = "",
    idempotency_key: Annotated[str, Form(max_length=64)] = "",
    version: Annotated[str, Form(max_length=12)] = "",
    back: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """resolve or reopen, from the discrepancy's page."""
    back = _safe_back(back, "/reconciliation/discrepancies")
    try:
        action = ResolutionAction(step)
    except ValueError:
        raise InvalidInput(f"There is no action {step!r}; resolve or reopen.") from None
    try:
        discrepancies.change_status(
            session,
            discrepancy_id=discrepancy_id,
            action=action,
            note=note,
            by=user,
            now=now,
            version=int(version) if version.isdigit() else None,
            idempotency_key=idempotency_key or None,
        )
    except ServiceError as exc:
        session.rollback()
        if exc.status == 404:
            raise
        return _discrepancy_page(
            request,
            context,
            session,
            user=user,
            csrf_token=found.session.csrf_token,
            discrepancy_id=discrepancy_id,
            today=now.date(),
            back=back,
            error=exc.detail,
            status_code=exc.status,
        )
    target = f"/reconciliation/discrepancies/{discrepancy_id}?" + urlencode({"back": back})
    return RedirectResponse(target, status_code=303)
