"""Reconciliation runs: starting one, claiming it for execution, its progress and its end.

A run is started from uploaded files (:mod:`atm_service.services.recon_uploads`),
from days already ingested (the journals the agents uploaded, for chosen
terminals and business days), or both. It is stored ``queued`` with its
uploaded files in one transaction, and the caller gets it back at once; a
worker (:mod:`atm_service.recon_worker`) of any instance then claims it
(:func:`claim_next`: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
instances never take the same run; SQLite's single writer does the same),
executes it (:mod:`atm_service.services.recon_execute`) and reports progress
into the row. A run whose instance stops reporting for ``stale_after`` is
claimed again, up to :data:`MAX_ATTEMPTS` times; a worker that finds its run
taken over stops (:class:`RunLost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from atm_service.errors import InvalidInput, NotFound
from atm_service.models.fleet import Atm, Site
from atm_service.models.journals import JournalFile
from atm_service.models.reconciliation import (
    DiscrepancyStatus,
    IngestedDay,
    ReconDiscrepancy,
    ReconRun,
    ReconRunFile,
    ReconSourceFile,
    RunDetail,
    RunOrigin,
    RunProgress,
    RunPublic,
    RunSource,
    RunState,
    SourceKind,
)
from atm_service.models.users import User
from atm_service.services.recon_uploads import Received
from atm_service.services.sql import table

MAX_ATTEMPTS = 3
MAX_SELECTION_DAYS = 92
MAX_WINDOW_SECONDS = 3600
REPORT_FILES = {
    "report.html": "text/html; charset=utf-8",
    "summary.json": "application/json",
    "settlement.csv": "text/csv; charset=utf-8",
    "report.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_RUNS = table(ReconRun)
_DISCREPANCIES = table(ReconDiscrepancy)


class RunLost(Exception):
    """The run is no longer this worker's: another instance took it over, or it ended."""


@dataclass(frozen=True)
class DaySelection:
    """Days already ingested: terminals (none: every one with a journal) and a date range."""

    terminals: tuple[str, ...]
    date_from: date
    date_to: date
    counters_from_devices: bool = True

    def check(self) -> None:
        if self.date_to < self.date_from:
            raise InvalidInput("The last business day comes before the first.", field="date_to")
        days = (self.date_to - self.date_from).days + 1
        if days > MAX_SELECTION_DAYS:
            raise InvalidInput(
                f"{days} business days chosen; one run covers {MAX_SELECTION_DAYS} at most.",
                field="date_to",
            )


def _compact(day: date) -> str:
    return day.strftime("%Y%m%d")


def ingested_days(
    session: Session,
    *,
    terminals: Sequence[str] = (),
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 500,
    offset: int = 0,
) -> tuple[list[IngestedDay], int]:
    """Journals the agents uploaded, by terminal and business day (newest day first)."""
    files, atms = table(JournalFile), table(Atm)
    conditions: list[Any] = [files.c.size > 0]
    if terminals:
        conditions.append(atms.c.terminal_id.in_(list(terminals)))
    if date_from is not None:
        conditions.append(files.c.name >= _compact(date_from))
    if date_to is not None:
        conditions.append(files.c.name <= _compact(date_to))
    joined = files.join(atms, atms.c.id == files.c.atm_id)
    connection = session.connection()
    total = connection.execute(
        sa.select(sa.func.count()).select_from(joined).where(*conditions)
    ).scalar_one()
    rows = connection.execute(
        sa.select(
            atms.c.id,
            atms.c.terminal_id,
            files.c.name,
            files.c.size,
            files.c.line_count,
            files.c.updated_at,
        )
        .select_from(joined)
        .where(*conditions)
        .order_by(files.c.name.desc(), atms.c.terminal_id)
        .limit(limit)
        .offset(offset)
    ).all()
    found = [
        IngestedDay(
            atm_id=row.id,
            terminal_id=row.terminal_id,
            business_date=date(int(row.name[:4]), int(row.name[4:6]), int(row.name[6:])),
            size=row.size,
            line_count=row.line_count,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return found, int(total)


def newest_closed_day(session: Session, *, now: datetime) -> date | None:
    """The newest business day ingested that has ended where its ATM is, or None.

    A business day is closed at an ATM once it is a later day in the time zone of
    the ATM's site: usually the newest closed day is yesterday. Today's journals,
    still growing, are what a reconciler does not want to reconcile yet; None when
    they are all there is.
    """
    files, atms, sites = table(JournalFile), table(Atm), table(Site)
    joined = files.join(atms, atms.c.id == files.c.atm_id).join(sites, sites.c.id == atms.c.site_id)
    connection = session.connection()
    zones = connection.execute(
        sa.select(sites.c.timezone).distinct().select_from(joined).where(files.c.size > 0)
    ).scalars()
    newest: str | None = None
    for zone in zones:
        today = now.astimezone(ZoneInfo(zone)).date()
        name = connection.execute(
            sa.select(sa.func.max(files.c.name))
            .select_from(joined)
            .where(files.c.size > 0, sites.c.timezone == zone, files.c.name < _compact(today))
        ).scalar_one()
        if name is not None and (newest is None or name > newest):
            newest = name
    if newest is None:
        return None
    return date(int(newest[:4]), int(newest[4:6]), int(newest[6:]))


def _selected_days(session: Session, selection: DaySelection) -> list[IngestedDay]:
    selection.check()
    if selection.terminals:
        known = set(
            session.exec(
                select(Atm.terminal_id).where(col(Atm.terminal_id).in_(selection.terminals))
            ).all()
        )
        unknown = sorted(set(selection.terminals) - known)
        if unknown:
            raise InvalidInput(f"No ATM with terminal id {', '.join(unknown)}.", field="terminals")
    days, _ = ingested_days(
        session,
        terminals=selection.terminals,
        date_from=selection.date_from,
        date_to=selection.date_to,
        limit=100_000,
    )
    if not days:
        which = ", ".join(selection.terminals) if selection.terminals else "any terminal"
        raise InvalidInput(
            f"No journal is stored for {which} from {selection.date_from} to {selection.date_to}.",
            field="date_from",
        )
    return sorted(days, key=lambda day: (day.terminal_id, day.business_date))


def _span(days: Sequence[date]) -> str:
    first, last = min(days), max(days)
    return str(first) if first == last else f"{first} to {last}"


def describe(received: Received, days: Sequence[IngestedDay]) -> str:
    """The run's sources in a sentence."""
    parts: list[str] = []
    if days:
        terminals = {day.terminal_id for day in days}
        parts.append(
            f"{len(days)} stored journal{'s' if len(days) != 1 else ''} of "
            f"{len(terminals)} terminal{'s' if len(terminals) != 1 else ''}, "
            f"{_span([day.business_date for day in days])}"
        )
    counts = [
        (received.count(SourceKind.EJ), "EJ"),
        (received.count(SourceKind.PAPER), "paper"),
        (received.count(SourceKind.ISO, SourceKind.CSV), "host"),
        (received.count(SourceKind.COUNTERS), "counters"),
    ]
    uploaded = [f"{count} {label}" for count, label in counts if count]
    if uploaded:
        span = _span([source.business_date for source in received.sources])
        parts.append("uploaded " + ", ".join(uploaded) + f" file(s), {span}")
    text = "; ".join(parts)
    return (text[:1].upper() + text[1:])[:500]


def _source_entry(source: Any, origin: str) -> dict[str, Any]:
    return RunSource(
        kind=source.kind,
        name=source.name,
        terminal_id=source.terminal_id,
        business_date=source.business_date,
        size=len(source.data),
        sha256=source.sha256,
        origin=origin,
    ).model_dump(mode="json")


def start_run(
    session: Session,
    *,
    by: User,
    now: datetime,
    received: Received,
    selection: DaySelection | None,
    time_window_seconds: int = 120,
) -> ReconRun:
    """Store a queued run with its uploaded files; a worker will execute it."""
    if not 0 <= time_window_seconds <= MAX_WINDOW_SECONDS:
        raise InvalidInput(
            f"The time window must be 0 to {MAX_WINDOW_SECONDS} seconds.",
            field="time_window_seconds",
        )
    days = _selected_days(session, selection) if selection is not None else []
    if selection is None:
        if not received.sources:
            detail = ""
            if received.ignored:
                name, why = received.ignored[0]
                detail = f" ({len(received.ignored)} file(s) passed over, e.g. {name}: {why})"
            raise InvalidInput(
                "No usable file was uploaded: send EJ, paper, host or counters files, or an "
                "archive of the ej/ paper/ host/ counters/ folders" + detail + ".",
                field="files",
            )
        if not received.count(SourceKind.EJ, SourceKind.ISO, SourceKind.CSV):
            raise InvalidInput(
                "Nothing to reconcile: upload at least an electronic journal or a host file "
                "(ISO 8583 log or CSV export), or choose days already ingested.",
                field="files",
            )
    stored = {(day.terminal_id, day.business_date) for day in days}
    for source in received.sources:
        if source.kind is SourceKind.EJ and (source.terminal_id, source.business_date) in stored:
            raise InvalidInput(
                f"{source.name}: the service already holds this terminal's journal for "
                f"{source.business_date}, and the run reads it; leave the day out of the "
                "selection to reconcile the uploaded file instead.",
                field="ej",
            )
    assert by.id is not None
    run = ReconRun(
        origin=RunOrigin.INGESTED if selection is not None else RunOrigin.UPLOAD,
        state=RunState.QUEUED,
        description=describe(received, days),
        sources=[_source_entry(source, "upload") for source in received.sources],
        selection=None
        if selection is None
        else {
            "terminals": list(selection.terminals),
            "date_from": selection.date_from.isoformat(),
            "date_to": selection.date_to.isoformat(),
            "counters_from_devices": selection.counters_from_devices,
            "days": [
                {
                    "atm_id": day.atm_id,
                    "terminal_id": day.terminal_id,
                    "business_date": day.business_date.isoformat(),
                }
                for day in days
            ],
        },
        options={
            "time_window_seconds": time_window_seconds,
            "ignored": [{"file": name, "reason": why} for name, why in received.ignored[:500]],
        },
        created_at=now,
        created_by=by.id,
        created_by_name=by.username,
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    for source in received.sources:
        session.add(
            ReconSourceFile(
                run_id=run.id,
                kind=source.kind,
                name=source.name,
                terminal_id=source.terminal_id,
                business_date=source.business_date,
                size=len(source.data),
                sha256=source.sha256,
                data=source.data,
            )
        )
    session.commit()
    return run


# --- reading runs ------------------------------------------------------------------------


def get_run(session: Session, *, run_id: int) -> ReconRun:
    run = session.get(ReconRun, run_id)
    if run is None:
        raise NotFound(f"No reconciliation run with id {run_id}.")
    return run


def list_runs(
    session: Session, *, state: RunState | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[ReconRun], int]:
    """Runs, newest first."""
    query = select(ReconRun)
    counting = select(func.count()).select_from(ReconRun)
    if state is not None:
        query = query.where(col(ReconRun.state) == state)
        counting = counting.where(col(ReconRun.state) == state)
    total = session.exec(counting).one()
    runs = session.exec(query.order_by(col(ReconRun.id).desc()).limit(limit).offset(offset)).all()
    return list(runs), int(total)


def open_counts(session: Session, run_ids: Sequence[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    rows = session.exec(
        select(ReconDiscrepancy.run_id, func.count())
        .where(
            col(ReconDiscrepancy.run_id).in_(run_ids),
            col(ReconDiscrepancy.status) == DiscrepancyStatus.OPEN,
        )
        .group_by(col(ReconDiscrepancy.run_id))
    ).all()
    return {int(run_id): int(count) for run_id, count in rows}


def progress_of(run: ReconRun) -> RunProgress:
    if run.state is RunState.DONE:
        percent = 100
    elif run.progress_total > 0:
        percent = min(100, run.progress_done * 100 // run.progress_total)
    else:
        percent = 0
    return RunProgress(
        phase=run.phase, done=run.progress_done, total=run.progress_total, percent=percent
    )


def public(run: ReconRun, *, open_count: int) -> RunPublic:
    assert run.id is not None
    return RunPublic(
        id=run.id,
        origin=run.origin,
        state=run.state,
        description=run.description,
        created_at=run.created_at,
        created_by=run.created_by_name,
        started_at=run.started_at,
        finished_at=run.finished_at,
        progress=progress_of(run),
        error=run.error,
        discrepancy_count=run.discrepancy_count,
        open_count=open_count,
    )


def publics(session: Session, runs: Sequence[ReconRun]) -> list[RunPublic]:
    counts = open_counts(session, [run.id for run in runs if run.id is not None])
    return [public(run, open_count=counts.get(run.id or 0, 0)) for run in runs]


def file_names(session: Session, *, run_id: int) -> list[str]:
    names = session.exec(
        select(ReconRunFile.name)
        .where(col(ReconRunFile.run_id) == run_id)
        .order_by(col(ReconRunFile.name))
    ).all()
    return list(names)


def detail(session: Session, run: ReconRun) -> RunDetail:
    assert run.id is not None
    shown = publics(session, [run])[0]
    return RunDetail(
        **shown.model_dump(),
        sources=[RunSource.model_validate(entry) for entry in run.sources],
        selection=run.selection,
        options=run.options,
        summary=run.summary,
        files=file_names(session, run_id=run.id),
    )


def run_file(session: Session, *, run_id: int, name: str) -> ReconRunFile:
    get_run(session, run_id=run_id)
    found = session.get(ReconRunFile, (run_id, name))
    if found is None:
        raise NotFound(f"Run {run_id} has no file {name} (only done runs have reports).")
    return found


def source_files(session: Session, *, run_id: int) -> list[ReconSourceFile]:
    return list(
        session.exec(
            select(ReconSourceFile)
            .where(col(ReconSourceFile.run_id) == run_id)
            .order_by(col(ReconSourceFile.id))
        ).all()
    )


# --- execution bookkeeping ---------------------------------------------------------------


def _lockable(session: Session, statement: Any) -> Any:
    # SQLite has one writer and BEGIN IMMEDIATE: the transaction itself is the lock.
    if session.get_bind().dialect.name == "postgresql":
        return statement.with_for_update(skip_locked=True)
    return statement


def claim_next(
    session: Session, *, now: datetime, worker: str, stale_after: timedelta
) -> int | None:
    """Take the oldest queued run (or one whose instance went silent) for ``worker``."""
    run: ReconRun | None = session.exec(
        _lockable(
            session,
            select(ReconRun)
            .where(col(ReconRun.state) == RunState.QUEUED)
            .order_by(col(ReconRun.id))
            .limit(1),
        )
    ).first()
    if run is None:
        run = session.exec(
            _lockable(
                session,
                select(ReconRun)
                .where(
                    col(ReconRun.state) == RunState.RUNNING,
                    col(ReconRun.heartbeat_at) < now - stale_after,
                )
                .order_by(col(ReconRun.id))
                .limit(1),
            )
        ).first()
        if run is not None and run.attempts >= MAX_ATTEMPTS:
            run.state = RunState.FAILED
            run.finished_at = now
            run.error = (
                f"The run was interrupted {run.attempts} times (the service instance running "
                "it stopped); start it again, perhaps with fewer files."
            )
            session.add(run)
            session.commit()
            return None
    if run is None:
        session.commit()
        return None
    run.state = RunState.RUNNING
    run.worker = worker
    run.attempts += 1
    run.started_at = now
    run.heartbeat_at = now
    run.phase = ""
    run.progress_done = run.progress_total = 0
    session.add(run)
    session.commit()
    return run.id


def _mine(run_id: int, worker: str) -> Any:
    return sa.and_(
        _RUNS.c.id == run_id, _RUNS.c.worker == worker, _RUNS.c.state == RunState.RUNNING
    )


def record_progress(
    session: Session,
    *,
    run_id: int,
    worker: str,
    now: datetime,
    phase: str | None = None,
    done: int = 0,
    total: int = 0,
) -> None:
    """Progress (and the heartbeat) of a running run; :class:`RunLost` if no longer ours."""
    values: dict[str, Any] = {"heartbeat_at": now}
    if phase is not None:
        values.update(phase=phase[:16], progress_done=done, progress_total=total)
    result = session.connection().execute(
        _RUNS.update().where(_mine(run_id, worker)).values(**values)
    )
    session.commit()
    if result.rowcount == 0:
        raise RunLost(f"run {run_id} is no longer held by {worker}")


def record_sources(
    session: Session, *, run_id: int, worker: str, entries: list[dict[str, Any]]
) -> None:
    """The sources a run actually read, recorded when it starts reading them."""
    result = session.connection().execute(
        _RUNS.update().where(_mine(run_id, worker)).values(sources=entries)
    )
    session.commit()
    if result.rowcount == 0:
        raise RunLost(f"run {run_id} is no longer held by {worker}")


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def complete_run(
    session: Session,
    *,
    run_id: int,
    worker: str,
    discrepancies: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    files: dict[str, bytes],
    now: datetime,
) -> None:
    """Store what a run found and mark it done, in one transaction."""
    connection = session.connection()
    held = connection.execute(
        sa.select(_RUNS.c.id).where(_mine(run_id, worker)).with_for_update()
    ).first()
    if held is None:
        session.rollback()
        raise RunLost(f"run {run_id} is no longer held by {worker}")
    rows = [
        {
            "run_id": run_id,
            "seq": seq,
            "terminal_id": item["terminal_id"],
            "business_date": date.fromisoformat(item["business_date"]),
            "kind": item["kind"],
            "stan": item["stan"],
            "rrn": item["rrn"],
            "amount_minor": item["amount_minor"],
            "currency": item["currency"],
            "owed_to": item["owed_to"],
            "suggested_action": item["suggested_action"],
            "dispute_deadline": _date(item["dispute_deadline"]),
            "scheme": item["scheme"],
            "local_time": item["local_time"],
            "detail": item["detail"],
            "evidence": item["evidence"],
            "status": DiscrepancyStatus.OPEN,
            "status_by": "",
            "note": "",
            "version": 1,
        }
        for seq, item in enumerate(discrepancies, start=1)
    ]
    for start in range(0, len(rows), 1000):
        connection.execute(_DISCREPANCIES.insert(), rows[start : start + 1000])
    for name, data in files.items():
        session.add(
            ReconRunFile(
                run_id=run_id, name=name, media_type=REPORT_FILES[name], size=len(data), data=data
            )
        )
    session.flush()
    connection.execute(
        _RUNS.update()
        .where(_RUNS.c.id == run_id)
        .values(
            state=RunState.DONE,
            finished_at=now,
            heartbeat_at=now,
            discrepancy_count=len(rows),
            summary=summary,
            error="",
        )
    )
    session.commit()


def fail_run(
    session: Session, *, run_id: int, message: str, now: datetime, worker: str | None = None
) -> bool:
    """Mark a queued or running run failed with ``message``; False if it had already ended
    (or, with ``worker``, is no longer that worker's)."""
    condition: Any = _RUNS.c.state.in_([RunState.QUEUED, RunState.RUNNING])
    if worker is not None:
        condition = sa.and_(condition, _RUNS.c.worker == worker)
    result = session.connection().execute(
        _RUNS.update()
        .where(_RUNS.c.id == run_id, condition)
        .values(state=RunState.FAILED, error=message[:2000], finished_at=now)
    )
    session.commit()
    return bool(result.rowcount)
