"""Executing a claimed reconciliation run with the ``reconciliation`` library.

:func:`execute_run` gathers the run's sources (:func:`build_sources`: its
uploaded files, the stored journals of the days chosen, and counters built
from what the devices reported where no counters file was uploaded), calls
:func:`reconciliation.reconcile` with a progress callback that writes into
the run's row, and stores the findings and report files in one transaction.
No database session is open while the library works.

Whatever goes wrong ends the run ``failed`` with a sentence that says what:
input the library cannot use, a journal no longer stored, or, for anything
unexpected, a reference to the logged error. Never a traceback.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel import Session

from atm_service.clock import Clock
from atm_service.db import Database
from atm_service.errors import ServiceError
from atm_service.models.fleet import Atm
from atm_service.models.reconciliation import ReconRun, RunSource, RunState, SourceKind
from atm_service.services import recon_runs
from atm_service.services.device_counters import device_counters
from atm_service.services.journals import JournalDamaged, get_journal
from atm_service.services.recon_runs import REPORT_FILES, RunLost
from reconciliation import Options, Progress, ReconciliationError, RunResult, Sources, write_reports
from reconciliation import reconcile as run_reconciliation

logger = logging.getLogger("atm_service.reconciliation")

PROGRESS_EVERY_S = 0.5


@dataclass
class Built:
    """The library's sources for a run, and the list of them the run records."""

    sources: Sources = field(default_factory=Sources)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        kind: SourceKind,
        name: str,
        data: bytes,
        *,
        terminal_id: str,
        business_date: date,
        origin: str,
    ) -> None:
        day = business_date.isoformat()
        if kind is SourceKind.EJ:
            self.sources.add_ej_bytes(terminal_id, day, data, name=name)
        else:
            self.sources.add_bytes(
                kind.value, name, data, terminal_id=terminal_id, business_date=day
            )
        self.entries.append(
            RunSource(
                kind=kind,
                name=name,
                terminal_id=terminal_id,
                business_date=business_date,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                origin=origin,
            ).model_dump(mode="json")
        )


def _folder(kind: SourceKind) -> str:
    return "host" if kind in (SourceKind.ISO, SourceKind.CSV) else kind.value


def build_sources(session: Session, run: ReconRun, *, now: Any) -> Built:
    """Everything the run reads. Raises :class:`ServiceError` when a chosen journal is gone."""
    assert run.id is not None
    built = Built()
    counters_given: set[tuple[str, date]] = set()
    for stored in recon_runs.source_files(session, run_id=run.id):
        built.add(
            stored.kind,
            f"{_folder(stored.kind)}/{stored.name}",
            bytes(stored.data),
            terminal_id=stored.terminal_id,
            business_date=stored.business_date,
            origin="upload",
        )
        if stored.kind is SourceKind.COUNTERS:
            counters_given.add((stored.terminal_id, stored.business_date))
    selection = run.selection or {}
    from_devices = bool(selection.get("counters_from_devices"))
    for day in selection.get("days", []):
        terminal_id, business_date = day["terminal_id"], date.fromisoformat(day["business_date"])
        compact = business_date.strftime("%Y%m%d")
        atm = session.get(Atm, day["atm_id"])
        if atm is None or atm.terminal_id != terminal_id:
            raise ServiceError(f"The ATM {terminal_id} is no longer in the fleet.")
        try:
            data = get_journal(session, day["atm_id"], compact)
        except ServiceError as exc:
            raise ServiceError(
                f"The journal of {terminal_id} for {business_date} is no longer stored."
            ) from exc
        session.commit()  # one read transaction per journal: SQLite's writers wait less
        built.add(
            SourceKind.EJ,
            f"journal:{terminal_id}_{compact}",
            data,
            terminal_id=terminal_id,
            business_date=business_date,
            origin="journal",
        )
        if from_devices and (terminal_id, business_date) not in counters_given:
            document = device_counters(session, atm=atm, business_date=business_date, now=now)
            if document is not None:
                built.add(
                    SourceKind.COUNTERS,
                    f"device:{terminal_id}_{compact}.json",
                    document,
                    terminal_id=terminal_id,
                    business_date=business_date,
                    origin="device_counters",
                )
    for entry in run.options.get("ignored", []):
        built.sources.ignored.append((str(entry["file"]), str(entry["reason"])))
    return built


class _Reporter:
    """The library's progress callback: writes progress into the run row, at most every
    ``every`` seconds within a phase (always at a new phase and at a phase's end)."""

    def __init__(
        self, database: Database, run_id: int, worker: str, clock: Clock, every: float
    ) -> None:
        self.database = database
        self.run_id = run_id
        self.worker = worker
        self.clock = clock
        self.every = every
        self.phase: str | None = None
        self.last = 0.0

    def __call__(self, update: Progress) -> None:
        moment = time.monotonic()
        same_phase = update.phase == self.phase
        if same_phase and moment - self.last < self.every and update.done < update.total:
            return
        self.phase, self.last = update.phase, moment
        with self.database.session() as session:
            recon_runs.record_progress(
                session,
                run_id=self.run_id,
                worker=self.worker,
                now=self.clock(),
                phase=update.phase,
                done=update.done,
                total=update.total,
            )


def compact_summary(result: RunResult) -> dict[str, Any]:
    """The figures the run's page shows; the whole summary is its ``summary.json``."""
    full = result.summary()
    kept = {
        name: full[name]
        for name in (
            "terminal_days",
            "transactions",
            "host_messages",
            "ej_bytes",
            "discrepancies",
            "by_kind",
            "amount_minor_by_kind",
            "owed_minor",
            "units_read",
            "units_skipped",
            "timings_seconds",
        )
    }
    kept["files_read"] = len(full["sources"])
    kept["observations"] = full["observations"][:200]
    kept["observations_total"] = len(full["observations"])
    kept["ignored_files"] = full["ignored_files"][:200]
    kept["skipped_sample"] = full["skipped"][:50]
    kept["currency"] = result.discrepancies[0].currency if result.discrepancies else "USD"
    return kept


def report_files(result: RunResult) -> dict[str, bytes]:
    """The report files the run keeps, written by the library."""
    with tempfile.TemporaryDirectory(prefix="recon-") as folder:
        write_reports(result, Path(folder))
        return {
            name: (Path(folder) / name).read_bytes()
            for name in REPORT_FILES
            if (Path(folder) / name).is_file()
        }


def execute_run(
    database: Database,
    run_id: int,
    *,
    worker: str,
    clock: Clock,
    progress_every: float = PROGRESS_EVERY_S,
) -> RunState | None:
    """Execute a run this worker has claimed; ``None`` when another worker took it over."""
    try:
        with database.session() as session:
            run = recon_runs.get_run(session, run_id=run_id)
            built = build_sources(session, run, now=clock())
            window = int(run.options.get("time_window_seconds", 120))
            session.commit()
            recon_runs.record_sources(session, run_id=run_id, worker=worker, entries=built.entries)
        reporter = _Reporter(database, run_id, worker, clock, progress_every)
        result = run_reconciliation(
            built.sources, options=Options(time_window_seconds=window), progress=reporter
        )
        reporter(Progress("report", 0, 1, "files"))
        files = report_files(result)
        with database.session() as session:
            recon_runs.complete_run(
                session,
                run_id=run_id,
                worker=worker,
                discrepancies=[item.to_json() for item in result.discrepancies],
                summary=compact_summary(result),
                files=files,
                now=clock(),
            )
        logger.info(
            "reconciliation run done",
            extra={"run_id": run_id, "discrepancies": len(result.discrepancies)},
        )
        return RunState.DONE
    except RunLost:
        logger.warning("reconciliation run taken over by another worker", extra={"run_id": run_id})
        return None
    except ReconciliationError as exc:
        message = f"The files could not be reconciled: {exc.message}."
    except ServiceError as exc:
        message = exc.detail
    except JournalDamaged as exc:
        message = f"A stored journal is damaged and cannot be read ({exc})."
    except Exception:
        reference = uuid.uuid4().hex[:12]
        logger.exception(
            "reconciliation run failed", extra={"run_id": run_id, "reference": reference}
        )
        message = f"The run stopped on an internal error; quote reference {reference}."
    with database.session() as session:
        recon_runs.fail_run(session, run_id=run_id, worker=worker, message=message, now=clock())
    logger.info("reconciliation run failed", extra={"run_id": run_id, "reason": message})
    return RunState.FAILED
