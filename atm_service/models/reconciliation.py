"""Reconciliation in the service: runs, what they read, what they found, and who resolved it.

A :class:`ReconRun` is one execution of the ``reconciliation`` library over a
set of sources: files uploaded for it (:class:`ReconSourceFile`, kept in the
database so whichever service instance runs it can read them) and journals
the agents already uploaded (read from ``journal_file`` when the run starts).
Its state moves ``queued`` → ``running`` → ``done`` or ``failed``; a failed
run carries a sentence saying why, never a traceback.

Each finding of a done run is a :class:`ReconDiscrepancy` with the fields of
``discrepancies.jsonl`` (evidence as JSON) and a status, ``open`` or
``resolved``. Every change of status is a :class:`ReconResolution`: who, when,
from what to what, and the note they wrote. That trail is append-only: the
service never updates or deletes it, and the database refuses to (triggers
installed by the migration). The run's report files (the HTML report with its
charts, the summary, the settlement) are :class:`ReconRunFile` rows.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import UTCDateTime, enum_column_type


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (RunState.DONE, RunState.FAILED)


class RunOrigin(StrEnum):
    """Where the run's journals come from."""

    UPLOAD = "upload"  # every source was uploaded for this run
    INGESTED = "ingested"  # EJs the agents uploaded, for chosen terminals and days


class SourceKind(StrEnum):
    """The library's source kinds (``reconciliation.Sources``)."""

    EJ = "ej"
    PAPER = "paper"
    ISO = "iso"
    CSV = "csv"
    COUNTERS = "counters"

    @property
    def label(self) -> str:
        return {
            SourceKind.EJ: "electronic journal",
            SourceKind.PAPER: "paper journal",
            SourceKind.ISO: "host message log (ISO 8583)",
            SourceKind.CSV: "host settlement export (CSV)",
            SourceKind.COUNTERS: "cash-unit counters",
        }[self]


class DiscrepancyStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class ResolutionAction(StrEnum):
    RESOLVE = "resolve"
    REOPEN = "reopen"

    @property
    def target(self) -> DiscrepancyStatus:
        if self is ResolutionAction.RESOLVE:
            return DiscrepancyStatus.RESOLVED
        return DiscrepancyStatus.OPEN


class ReconRun(SQLModel, table=True):
    __tablename__ = "recon_run"

    id: int | None = Field(default=None, primary_key=True)
    origin: RunOrigin = Field(sa_type=enum_column_type(RunOrigin, 16))
    state: RunState = Field(sa_type=enum_column_type(RunState, 16), index=True)
    description: str = Field(max_length=500, description="What the run reads, in words")
    sources: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="Every source read: kind, name, terminal, day, size, SHA-256, origin",
    )
    selection: dict[str, Any] | None = Field(
        default=None,
        sa_column=sa.Column(sa.JSON, nullable=True),
        description="For a run from ingested days: the terminals and days chosen",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    created_by: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("app_user.id", ondelete="SET NULL"), nullable=True
        ),
    )
    created_by_name: str = Field(max_length=64)
    # Execution: which instance holds it, how far it got, how it ended.
    worker: str = Field(default="", max_length=128)
    attempts: int = 0
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    phase: str = Field(default="", max_length=16)
    progress_done: int = Field(default=0, sa_type=sa.BigInteger)
    progress_total: int = Field(default=0, sa_type=sa.BigInteger)
    error: str = Field(default="", max_length=2000)
    # Outcome (done runs): compact figures; the full summary is the run's summary.json.
    discrepancy_count: int = 0
    summary: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )


class ReconSourceFile(SQLModel, table=True):
    """A file uploaded for a run, exactly as received."""

    __tablename__ = "recon_source_file"
    __table_args__ = (sa.UniqueConstraint("run_id", "kind", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("recon_run.id", ondelete="CASCADE"), nullable=False
        )
    )
    kind: SourceKind = Field(sa_type=enum_column_type(SourceKind, 16))
    name: str = Field(max_length=255, description="The file name the sender gave")
    terminal_id: str = Field(default="", max_length=8, description="'' for host files")
    business_date: date
    size: int = Field(sa_type=sa.BigInteger)
    sha256: str = Field(max_length=64)
    data: bytes = Field(sa_type=sa.LargeBinary)


class ReconRunFile(SQLModel, table=True):
    """A report a done run wrote (``report.html``, ``summary.json``, ``settlement.csv``)."""

    __tablename__ = "recon_run_file"

    run_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("recon_run.id", ondelete="CASCADE"), primary_key=True
        )
    )
    name: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    media_type: str = Field(max_length=100)
    size: int = Field(sa_type=sa.BigInteger)
    data: bytes = Field(sa_type=sa.LargeBinary)


class ReconDiscrepancy(SQLModel, table=True):
    """One finding of a run, with its evidence and where the team stands on it."""

    __tablename__ = "recon_discrepancy"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "seq"),
        sa.Index("ix_recon_discrepancy_run_id_kind", "run_id", "kind"),
        sa.Index("ix_recon_discrepancy_terminal_id_business_date", "terminal_id", "business_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("recon_run.id", ondelete="CASCADE"), nullable=False
        )
    )
    seq: int = Field(description="Position in the run: terminal, date, time order")
    terminal_id: str = Field(max_length=8)
    business_date: date
    kind: str = Field(max_length=40)
    stan: str | None = Field(default=None, max_length=6)
    rrn: str | None = Field(default=None, max_length=12)
    amount_minor: int = Field(sa_type=sa.BigInteger)
    currency: str = Field(max_length=3)
    owed_to: str = Field(max_length=16, index=True)
    suggested_action: str = Field(max_length=64)
    dispute_deadline: date | None = None
    scheme: str | None = Field(default=None, max_length=32)
    local_time: str | None = Field(default=None, max_length=8)
    detail: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    evidence: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    status: DiscrepancyStatus = Field(
        default=DiscrepancyStatus.OPEN, sa_type=enum_column_type(DiscrepancyStatus, 16), index=True
    )
    status_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_by: str = Field(default="", max_length=64)
    note: str = Field(default="", max_length=2000, description="The note of the last change")
    version: int = 1


class ReconResolution(SQLModel, table=True):
    """One change of a discrepancy's status: append-only."""

    __tablename__ = "recon_resolution"

    id: int | None = Field(default=None, primary_key=True)
    discrepancy_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("recon_discrepancy.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    at: datetime = Field(sa_type=UTCDateTime)
    action: ResolutionAction = Field(sa_type=enum_column_type(ResolutionAction, 16))
    from_status: DiscrepancyStatus = Field(sa_type=enum_column_type(DiscrepancyStatus, 16))
    to_status: DiscrepancyStatus = Field(sa_type=enum_column_type(DiscrepancyStatus, 16))
    note: str = Field(max_length=2000)
    actor: str = Field(max_length=64)
    actor_user_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("app_user.id", ondelete="SET NULL"), nullable=True
        ),
    )
    idempotency_key: str | None = Field(default=None, max_length=64, unique=True)


# --- API schemas ---------------------------------------------------------------


class RunSource(SQLModel):
    kind: SourceKind
    name: str
    terminal_id: str = Field(description="'' for host files")
    business_date: date
    size: int
    sha256: str
    origin: str = Field(description="upload, journal (stored by an agent) or device_counters")


class RunProgress(SQLModel):
    phase: str = Field(description="host, terminals or report; '' before it starts")
    done: int
    total: int
    percent: int = Field(ge=0, le=100, description="Of the current phase")


class RunPublic(SQLModel):
    id: int
    origin: RunOrigin
    state: RunState
    description: str
    created_at: datetime
    created_by: str
    started_at: datetime | None
    finished_at: datetime | None
    progress: RunProgress
    error: str = Field(description="Why a failed run failed; '' otherwise")
    discrepancy_count: int
    open_count: int = Field(description="Findings not resolved yet")


class RunDetail(RunPublic):
    sources: list[RunSource]
    selection: dict[str, Any] | None
    options: dict[str, Any]
    summary: dict[str, Any] = Field(
        description="Counts and amounts by kind, owed totals, accounting of the files read"
    )
    files: list[str] = Field(description="Report files: report.html, summary.json, settlement.csv")


class DiscrepancyPublic(SQLModel):
    id: int
    run_id: int
    terminal_id: str
    business_date: date
    local_time: str | None
    kind: str
    stan: str | None
    rrn: str | None
    amount_minor: int
    currency: str
    owed_to: str
    suggested_action: str
    dispute_deadline: date | None
    scheme: str | None
    text: str = Field(description="The finding in words")
    status: DiscrepancyStatus
    status_at: datetime | None
    status_by: str
    note: str
    version: int


class ResolutionPublic(SQLModel):
    at: datetime
    action: ResolutionAction
    from_status: DiscrepancyStatus
    to_status: DiscrepancyStatus
    note: str
    actor: str


class DiscrepancyDetail(DiscrepancyPublic):
    detail: dict[str, Any]
    evidence: dict[str, Any] = Field(
        description="ej_excerpt, ej_location, paper_excerpt, paper_location, host_messages, "
        "counters"
    )
    history: list[ResolutionPublic]


class NoteIn(SQLModel):
    note: str = Field(min_length=3, max_length=2000, description="Why; kept in the audit trail")
    version: int | None = Field(
        default=None, ge=1, description="Refuse the change if the discrepancy changed since"
    )


class IngestedDay(SQLModel):
    atm_id: int
    terminal_id: str
    business_date: date
    size: int
    line_count: int
    updated_at: datetime
