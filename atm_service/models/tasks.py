"""Tasks: the work that faults and low cash create, their history and replenishment counts.

A :class:`Task` is one piece of field work at one ATM: a first-line repair
(FLM), a second-line repair (SLM) or a replenishment. Its life is an explicit
state machine (:mod:`atm_service.services.task_states`); every change is a
:class:`TaskEvent`, timestamped and attributed. A replenishment's counts per
cassette and bin are :class:`ReplenishmentCount` rows, which settlement reads.

``open_key`` is ``"<atm id>:<kind>"`` while a task is open and NULL after, with a
unique index: the database itself refuses a second open task of one kind at
one ATM, whichever service instance tries.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import MAX_ID, UTCDateTime, enum_column_type
from atm_service.models.engineers import Skill


class TaskKind(StrEnum):
    FLM = "flm"
    SLM = "slm"
    REPLENISHMENT = "replenishment"

    @property
    def skill(self) -> Skill:
        return {
            TaskKind.FLM: Skill.FLM,
            TaskKind.SLM: Skill.SLM,
            TaskKind.REPLENISHMENT: Skill.CASH,
        }[self]

    @property
    def label(self) -> str:
        return {
            TaskKind.FLM: "First-line repair",
            TaskKind.SLM: "Second-line repair",
            TaskKind.REPLENISHMENT: "Replenishment",
        }[self]


class TaskState(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    NEEDS_PARTS = "needs_parts"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


# A task in one of these states blocks a second task of its kind at its ATM.
OPEN_STATES = frozenset(
    {TaskState.NEW, TaskState.ASSIGNED, TaskState.ACCEPTED, TaskState.EN_ROUTE, TaskState.ON_SITE}
)
# States in which an engineer holds the task (it is on their list).
HELD_STATES = frozenset(
    {TaskState.ASSIGNED, TaskState.ACCEPTED, TaskState.EN_ROUTE, TaskState.ON_SITE}
)


class TaskSource(StrEnum):
    DEVICE = "device"  # opened by the rules from device status, events or counters
    DISPATCHER = "dispatcher"  # opened by hand
    FOLLOW_UP = "follow_up"  # opened when an engineer needed parts


class ResolutionCode(StrEnum):
    """How a task ended; ``device_recovered`` is set by the rules, never by a person."""

    CLEARED_JAM = "cleared_jam"
    RESEATED_CASSETTE = "reseated_cassette"
    EMPTIED_BIN = "emptied_bin"
    REPLACED_PART = "replaced_part"
    ADJUSTED = "adjusted"
    RESTARTED = "restarted"
    REPLENISHED = "replenished"
    NO_FAULT_FOUND = "no_fault_found"
    OTHER = "other"
    DEVICE_RECOVERED = "device_recovered"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class UnitKind(StrEnum):
    """A cash unit an engineer counts: a bill cassette or one of the two bins."""

    CASSETTE = "cassette"
    REJECT_BIN = "reject_bin"
    RETRACT_BIN = "retract_bin"


class Task(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    kind: TaskKind = Field(sa_type=enum_column_type(TaskKind))
    state: TaskState = Field(sa_type=enum_column_type(TaskState), index=True)
    source: TaskSource = Field(sa_type=enum_column_type(TaskSource))
    priority: int = Field(description="1 (ATM down) .. 4 (can wait)")
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    facts: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="What the device reported: devices and cash units with their states",
    )
    occurrences: int = 1
    opened_at: datetime = Field(sa_type=UTCDateTime, description="When the fault began")
    last_signal_at: datetime = Field(sa_type=UTCDateTime)
    response_due: datetime = Field(sa_type=UTCDateTime)
    restore_due: datetime = Field(sa_type=UTCDateTime)
    engineer_id: int | None = Field(default=None, foreign_key="engineer.id", index=True)
    planned_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    planned_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    departed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    arrived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recovered_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="When the device reported it recovered"
    )
    escalation_level: int = Field(default=0, description="0 on track, 1 at risk, 2 breached")
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution_code: ResolutionCode | None = Field(
        default=None, sa_type=enum_column_type(ResolutionCode)
    )
    resolution_notes: str = Field(default="", max_length=2000)
    parts: str = Field(default="", max_length=500)
    parent_id: int | None = Field(default=None, foreign_key="task.id", index=True)
    open_key: str | None = Field(default=None, max_length=40, unique=True)
    version: int = 1
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class TaskEvent(SQLModel, table=True):
    """One change of a task: who, when, what, why. Append-only."""

    __tablename__ = "task_event"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("task.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    at: datetime = Field(sa_type=UTCDateTime)
    action: str = Field(max_length=32)
    actor: str = Field(max_length=64, description="A user name, or 'rules' / 'dispatch'")
    actor_user_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("app_user.id", ondelete="SET NULL"), nullable=True
        ),
    )
    from_state: TaskState | None = Field(default=None, sa_type=enum_column_type(TaskState))
    to_state: TaskState | None = Field(default=None, sa_type=enum_column_type(TaskState))
    engineer_id: int | None = Field(default=None, foreign_key="engineer.id")
    reason: str = Field(default="", max_length=2000)
    data: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON, nullable=True))
    idempotency_key: str | None = Field(default=None, max_length=64, unique=True)


class ReplenishmentCount(SQLModel, table=True):
    """Notes taken out of and loaded into one cash unit at a replenishment."""

    __tablename__ = "replenishment_count"
    __table_args__ = (sa.UniqueConstraint("task_id", "unit_kind", "unit_number"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("task.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    unit_kind: UnitKind = Field(sa_type=enum_column_type(UnitKind))
    unit_number: int = Field(description="Cassette number (XFS usNumber); 0 for a bin")
    denomination: int | None = Field(default=None, description="Major units; None for a bin")
    currency: str = Field(max_length=3)
    removed: int = Field(description="Notes taken out (physical count)")
    loaded: int = Field(description="Notes put in; 0 for a bin")
    counted_at: datetime = Field(sa_type=UTCDateTime)
    counted_by: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("app_user.id", ondelete="SET NULL"), nullable=True
        ),
    )


# --- API schemas ---------------------------------------------------------------


class Risk(StrEnum):
    """Where a task stands against its deadlines."""

    OK = "ok"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"  # finished within its deadlines
    MISSED = "missed"  # finished, but late

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class TaskCreate(SQLModel):
    """A task opened by hand (a customer call, a planned visit)."""

    atm_id: int = Field(gt=0, le=MAX_ID)
    kind: TaskKind
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=2000)
    priority: int = Field(default=2, ge=1, le=4)


class TaskPublic(SQLModel):
    id: int
    atm_id: int
    terminal_id: str
    site_name: str
    address: str
    region: str
    site_timezone: str
    latitude: float
    longitude: float
    kind: TaskKind
    state: TaskState
    source: TaskSource
    priority: int
    title: str
    description: str
    facts: dict[str, Any]
    occurrences: int
    opened_at: datetime
    last_signal_at: datetime
    response_due: datetime
    restore_due: datetime
    due: datetime = Field(description="The deadline that matters now: response, then restore")
    due_label: str
    risk: Risk
    engineer_id: int | None
    engineer_name: str | None
    planned_start: datetime | None
    planned_end: datetime | None
    assigned_at: datetime | None
    accepted_at: datetime | None
    departed_at: datetime | None
    arrived_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    recovered_at: datetime | None
    escalation_level: int
    escalated_at: datetime | None
    resolution_code: ResolutionCode | None
    resolution_notes: str
    parts: str
    parent_id: int | None
    version: int


class TaskEventPublic(SQLModel):
    at: datetime
    action: str
    actor: str
    from_state: TaskState | None
    to_state: TaskState | None
    engineer_id: int | None
    reason: str
    data: dict[str, Any] | None


class CountIn(SQLModel):
    unit_kind: UnitKind
    unit_number: int = Field(ge=0, le=8, description="Cassette number; 0 for a bin")
    removed: int = Field(ge=0, le=10_000, description="Notes taken out, as counted")
    loaded: int = Field(default=0, ge=0, le=10_000, description="Notes put in; 0 for a bin")


class CountPublic(CountIn):
    denomination: int | None
    currency: str
    counted_at: datetime


class TaskDetail(TaskPublic):
    events: list[TaskEventPublic]
    counts: list[CountPublic]


class Expected(SQLModel):
    version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="Refuse the action if the task has changed since",
    )


class ReasonIn(Expected):
    reason: str = Field(min_length=3, max_length=500)


class ResolveIn(Expected):
    resolution_code: ResolutionCode
    notes: str = Field(default="", max_length=2000)


class NeedsPartsIn(Expected):
    parts: str = Field(min_length=2, max_length=500, description="What must be brought")
    notes: str = Field(default="", max_length=2000)


class AssignIn(Expected):
    engineer_id: int | None = Field(
        default=None,
        gt=0,
        le=MAX_ID,
        description="Leave out to let dispatch choose the best engineer",
    )
    reason: str = Field(default="", max_length=500)


class ReassignIn(Expected):
    engineer_id: int | None = Field(
        default=None,
        gt=0,
        le=MAX_ID,
        description="Leave out to let dispatch choose another engineer",
    )
    reason: str = Field(min_length=3, max_length=500)


class CloseIn(Expected):
    notes: str = Field(default="", max_length=2000)


class CountsIn(Expected):
    units: list[CountIn] = Field(min_length=1, max_length=10)


class NeedsPartsOut(SQLModel):
    task: TaskPublic
    follow_up: TaskPublic = Field(description="The second-line task that brings the parts")


class SignalResult(SQLModel):
    tasks: list[TaskPublic] = Field(description="Tasks the signal opened or updated")
