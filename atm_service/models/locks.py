"""Safe locks: each ATM's lock, its encrypted keys, the lock-access log, code cycles, alarms.

- :class:`Lock`: one per ATM: the lock's serial (its lock id), model, dual control,
  provisioning state, its policy, and the service's :class:`lockctl.LockChain` as
  JSON (the last confirmed seal value, the code that is out). ``version`` counts
  changes; the row is locked for every change, so instances take turns.
- :class:`LockKeyRecord`: the vault's records (``lockctl.EncryptedKeyRecord``):
  AES-256-GCM ciphertexts under the master key, which is never stored here.
- :class:`LockLogEntry` and :class:`LockLogCheckpoint`: the append-only,
  hash-chained lock-access log (``docs/lock-log.md``), one row per entry with its
  exact line, and the signed checkpoints. The entry's index is the primary key,
  so two writers can never both take a position. The columns beside the line
  (kind, time, lock, actor, users) are copies for filtering; the line is the record.
- :class:`LockIssuance`: one code cycle at a lock: requested, issued, sealed or
  force-closed, with the task it was for and when its seal is due. Never the code.
  ``open_key`` holds the lock's id while the cycle is open (unique), so the
  database itself refuses a second open cycle at one lock.
- :class:`LockAlarm`: what a dispatcher must look at: a seal overdue, an opening
  without an issued code, duress, a lockout, a wrong seal.
- :class:`TaskCustodian`: the second person of a dual-control task.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import MAX_BIG, MAX_ID, UTCDateTime, enum_column_type

LOCK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


class LockState(StrEnum):
    """Provisioning state of a lock."""

    ACTIVE = "active"  # provisioned: codes may be issued
    RETIRED = "retired"  # taken out of service: no codes


class IssuanceKind(StrEnum):
    OPENING = "opening"
    RESYNC = "resync"


class IssuanceState(StrEnum):
    PENDING = "pending"  # dual control: the first person asked; waiting for the second
    OUTSTANDING = "outstanding"  # issued; its close seal is awaited
    SEALED = "sealed"  # the seal came back and matched
    FORCE_CLOSED = "force_closed"  # abandoned by a dispatcher
    SUPERSEDED = "superseded"  # replaced by a resync
    EXPIRED = "expired"  # dual control: nobody asked second in time
    CANCELLED = "cancelled"  # a pending request cancelled by a dispatcher

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


OPEN_ISSUANCE_STATES = frozenset({IssuanceState.PENDING, IssuanceState.OUTSTANDING})


class AlarmKind(StrEnum):
    SEAL_OVERDUE = "seal_overdue"
    OPENED_WITHOUT_CODE = "opened_without_code"
    OPENED_AFTER_FORCE_CLOSE = "opened_after_force_close"
    SEAL_NOT_SHOWN = "seal_not_shown"
    DURESS = "duress"
    LOCKOUT = "lockout"
    SEAL_MISMATCH = "seal_mismatch"

    @property
    def label(self) -> str:
        return _ALARM_LABELS[self]


_ALARM_LABELS = {
    AlarmKind.SEAL_OVERDUE: "Seal overdue",
    AlarmKind.OPENED_WITHOUT_CODE: "Opened without an issued code",
    AlarmKind.OPENED_AFTER_FORCE_CLOSE: "Opened with a force-closed code",
    AlarmKind.SEAL_NOT_SHOWN: "Seal the lock never showed",
    AlarmKind.DURESS: "Duress",
    AlarmKind.LOCKOUT: "Lockout",
    AlarmKind.SEAL_MISMATCH: "Wrong close seal",
}


class AlarmSeverity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


class AlarmState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class Lock(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False, unique=True
        )
    )
    lock_id: str = Field(max_length=32, unique=True, description="The lock's serial (lock id)")
    model: str = Field(max_length=64)
    dual_control: bool = False
    state: LockState = Field(sa_type=enum_column_type(LockState, length=16))
    policy: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    chain: dict[str, Any] = Field(
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="lockctl.LockChain.to_dict(): the last confirmed seal value and what is out",
    )
    trail_next_seq: int = Field(default=0, description="Lock trail records imported below this")
    version: int = 1
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class LockKeyRecord(SQLModel, table=True):
    """One version of a lock's key, encrypted under the master key (never stored here)."""

    __tablename__ = "lock_key_record"

    lock_id: str = Field(max_length=32, primary_key=True)
    version: int = Field(primary_key=True)
    state: str = Field(max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)
    master_key_id: str = Field(max_length=32)
    nonce: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))


class LockLogEntry(SQLModel, table=True):
    """One entry of the lock-access log: its exact line and that line's SHA-256."""

    __tablename__ = "lock_log_entry"

    position: int = Field(
        sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False),
        description="The entry's index in the log (from 0, no gaps)",
    )
    line: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    digest: str = Field(max_length=64, description="SHA-256 of the line, hex")
    kind: str = Field(max_length=40, index=True)
    time: datetime = Field(sa_type=UTCDateTime, index=True)
    lock_id: str | None = Field(default=None, max_length=32, index=True)
    actor: str | None = Field(default=None, max_length=64, index=True)
    users: str = Field(default="", max_length=200, description="',3,17,': user numbers named")


class LockLogCheckpoint(SQLModel, table=True):
    """A signed checkpoint of the log (``docs/lock-log.md``)."""

    __tablename__ = "lock_log_checkpoint"

    size: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    line: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)


class LockIssuance(SQLModel, table=True):
    """One code cycle at one lock. The code itself is never stored."""

    __tablename__ = "lock_issuance"

    id: int | None = Field(default=None, primary_key=True)
    lock_pk: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("lock.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    task_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("task.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    kind: IssuanceKind = Field(sa_type=enum_column_type(IssuanceKind, length=16))
    state: IssuanceState = Field(sa_type=enum_column_type(IssuanceState, length=16), index=True)
    operation: str | None = Field(default=None, max_length=8)
    window: int | None = None
    users: list[int] = Field(
        default_factory=list,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="Lock user numbers (the users' ids) the code(s) are for",
    )
    shown_to: list[int] = Field(
        default_factory=list,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="Users who have been shown their code (once each)",
    )
    requested_by: str = Field(max_length=64)
    requested_at: datetime = Field(sa_type=UTCDateTime)
    issued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    valid_until: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="The code opens until then"
    )
    seal_due: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=64)
    reason: str = Field(default="", max_length=500)
    overdue_alarmed: bool = False
    open_key: str | None = Field(default=None, max_length=40, unique=True)


class LockAlarm(SQLModel, table=True):
    __tablename__ = "lock_alarm"

    id: int | None = Field(default=None, primary_key=True)
    kind: AlarmKind = Field(sa_type=enum_column_type(AlarmKind, length=32))
    severity: AlarmSeverity = Field(sa_type=enum_column_type(AlarmSeverity, length=16))
    state: AlarmState = Field(sa_type=enum_column_type(AlarmState, length=16), index=True)
    lock_pk: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("lock.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    atm_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False)
    )
    task_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("task.id", ondelete="SET NULL"), nullable=True
        ),
    )
    issuance_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("lock_issuance.id", ondelete="SET NULL"), nullable=True
        ),
    )
    message: str = Field(max_length=500)
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    dedupe_key: str = Field(max_length=120, unique=True)
    raised_at: datetime = Field(sa_type=UTCDateTime, index=True)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=64)
    note: str = Field(default="", max_length=1000)


class TaskCustodian(SQLModel, table=True):
    """A second person added to a task for dual control (custody of the safe)."""

    __tablename__ = "task_custodian"
    __table_args__ = (sa.UniqueConstraint("task_id", "engineer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("task.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    engineer_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("engineer.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    added_by: str = Field(max_length=64)
    added_at: datetime = Field(sa_type=UTCDateTime)


# --- API schemas ---------------------------------------------------------------


class LockCreate(SQLModel):
    """Provision a lock for an ATM: a new key is made in the vault."""

    lock_id: str = Field(
        max_length=32,
        schema_extra={"pattern": LOCK_ID_PATTERN},
        description="The lock's serial, as keyed into its codes",
    )
    model: str = Field(default="Central-control OTC lock", min_length=1, max_length=64)
    dual_control: bool = Field(
        default=False, description="Every opening needs two people (two codes)"
    )
    window_seconds: int = Field(default=3600, ge=300, le=86400, description="A code's window")


class LockPublic(SQLModel):
    id: int
    atm_id: int
    terminal_id: str
    lock_id: str
    model: str
    dual_control: bool
    state: LockState
    key_version: int
    chain_status: str = Field(description="ready, awaiting-seal or blocked")
    sequence: int = Field(description="Close seals confirmed since provisioning")
    chain_tag: str = Field(description="Public name of the last confirmed seal (docs/otc.md)")
    policy: dict[str, Any]
    open_cycle: IssuancePublic | None
    version: int


class IssuancePublic(SQLModel):
    id: int
    task_id: int | None
    kind: IssuanceKind
    state: IssuanceState
    operation: str | None
    window: int | None
    users: list[int]
    requested_by: str
    requested_at: datetime
    issued_at: datetime | None
    valid_until: datetime | None
    seal_due: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    reason: str


class CodeRequest(SQLModel):
    task_id: int = Field(gt=0, le=MAX_ID, description="The task you are on site for")
    operation: str | None = Field(
        default=None,
        max_length=8,
        description="open, flm, route or bank; leave out for the task's own operation",
    )


class TaskRef(SQLModel):
    task_id: int = Field(gt=0, le=MAX_ID)


class CodeOut(SQLModel):
    """A code, shown once. Key it as: user number, *, the eight digits, #."""

    status: str = Field(description="issued, or waiting (dual control: for the second person)")
    lock_id: str
    task_id: int
    user_number: int
    operation: str
    purpose: str = Field(description="opening or resync")
    code: str | None = Field(default=None, description="Eight digits; shown once, never again")
    valid_from: datetime | None = None
    valid_until: datetime | None = Field(default=None, description="The lock refuses it after")
    waiting_until: datetime | None = Field(
        default=None, description="Dual control: the second person must ask before this"
    )
    dual_with: int | None = None


class SealIn(SQLModel):
    task_id: int = Field(gt=0, le=MAX_ID)
    seal: str = Field(min_length=1, max_length=32, description="The 8 digits the lock showed")


class SealOut(SQLModel):
    matched: bool
    lock_id: str
    sequence: int = Field(description="Close seals confirmed at this lock")
    purpose: str


class ReasonBody(SQLModel):
    reason: str = Field(min_length=3, max_length=500)


class ResyncIn(ReasonBody):
    task_id: int = Field(
        gt=0, le=MAX_ID, description="The on-site task whose engineer keys the resync"
    )


class ForceClosedOut(SQLModel):
    lock_id: str
    abandoned_users: list[int]
    operation: str | None
    usable_until: datetime | None = Field(
        description="The abandoned code still opens the lock until then (the lock cannot be told)"
    )


class CustodianIn(SQLModel):
    engineer_id: int = Field(gt=0, le=MAX_ID)


class CustodianPublic(SQLModel):
    task_id: int
    engineer_id: int
    name: str
    added_by: str
    added_at: datetime


class AlarmPublic(SQLModel):
    id: int
    kind: AlarmKind
    label: str
    severity: AlarmSeverity
    state: AlarmState
    lock_id: str
    atm_id: int
    terminal_id: str
    task_id: int | None
    message: str
    details: dict[str, Any]
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str


class AcknowledgeIn(SQLModel):
    note: str = Field(min_length=3, max_length=1000)


class ProvisioningExportIn(ReasonBody):
    pass


class TrailDiscrepancy(SQLModel):
    severity: str
    kind: str
    message: str
    lock_seq: int | None
    log_index: int | None


class TrailImportOut(SQLModel):
    lock_id: str
    records: int = Field(description="Records in the uploaded trail")
    imported: int = Field(description="New records added to the lock-access log")
    discrepancies: list[TrailDiscrepancy]
    alarms: list[AlarmPublic]


class LogEntryPublic(SQLModel):
    index: int
    time: datetime
    kind: str
    lock_id: str | None
    actor: str | None
    fields: dict[str, Any] = Field(description="The entry's fields (prev, i, time, kind omitted)")
    line: str = Field(description="The exact line, as hashed and exported")


class LogVerification(SQLModel):
    valid: bool
    entries: int = Field(description="Entries in the stored log")
    verified: int = Field(description="Entries checked and found intact, from index 0")
    checkpoints: int
    covered: int = Field(description="Entries covered by the last signed checkpoint")
    first_bad_index: int | None
    reason: str | None
    key_id: str
    public_key: str
    summary: str


class ExportIn(SQLModel):
    start: int = Field(default=0, ge=0, le=MAX_BIG, description="First entry to export")


LockPublic.model_rebuild()
