"""Devices: the agents' keys, what they report (status, events), and each ATM's latest state.

- ``device_key``: an Ed25519 public key enrolled for one ATM. An ATM may have
  several (key rotation: enrol the new key, switch the agent, revoke the old);
  a revoked key stays, for the record, and is refused.
- ``device_nonce``: nonces of signed requests, kept until their timestamp can
  no longer pass the clock-skew check, so each request is accepted once.
- ``device_record_stream``: one agent spool's record sequence for an ATM, how
  far the service holds it (``last_seq``) and how far the dispatch rules have
  been applied to it (``rules_seq``); records are idempotent by (stream, sequence).
- ``device_status`` and ``device_event``: the records themselves, as sent.
- ``atm_state``: the latest of everything for each ATM, kept up to date on
  ingest so the fleet views read one row per ATM.

Cash-unit snapshots live in :mod:`atm_service.models.cash`, journal bytes in
:mod:`atm_service.models.journals`. The API schemas of the device routes are here too.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import field_validator
from sqlmodel import Field, SQLModel

from atm_service.models.base import MAX_BIG, MAX_ID, UTCDateTime

STREAM_PATTERN = r"^[0-9a-f]{32}$"
KEY_ID_PATTERN = r"^[0-9a-f]{32}$"


def decode_public_key(value: str) -> bytes:
    """A raw 32-byte Ed25519 public key from base64 or base64url, padded or not."""
    text = value.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("public_key is not base64") from exc
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return raw


# --- keys --------------------------------------------------------------------


class DeviceKey(SQLModel, table=True):
    __tablename__ = "device_key"

    id: int | None = Field(default=None, primary_key=True)
    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    key_id: str = Field(max_length=32, unique=True, index=True)
    public_key: str = Field(max_length=64, description="base64url of the raw 32-byte key")
    label: str = Field(default="", max_length=120)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeviceKeyCreate(SQLModel):
    public_key: str = Field(
        min_length=40,
        max_length=64,
        description="The key `atm-agent keygen` printed: base64url (or base64) of 32 bytes",
    )
    label: str = Field(default="", max_length=120, description="Where the key lives, why")

    @field_validator("public_key")
    @classmethod
    def _valid_key(cls, value: str) -> str:
        decode_public_key(value)
        return value.strip()


class DeviceKeyPublic(SQLModel):
    key_id: str
    atm_id: int
    terminal_id: str
    public_key: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class DeviceNonce(SQLModel, table=True):
    """A nonce used by a key (by key id, checked before the key is looked up)."""

    __tablename__ = "device_nonce"

    key_id: str = Field(max_length=32, primary_key=True)
    nonce: str = Field(max_length=64, primary_key=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)


# --- records -------------------------------------------------------------------


class RecordStream(SQLModel, table=True):
    __tablename__ = "device_record_stream"
    __table_args__ = (sa.UniqueConstraint("atm_id", "stream"),)

    id: int | None = Field(default=None, primary_key=True)
    atm_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False)
    )
    stream: str = Field(max_length=32)
    last_seq: int = Field(default=0, sa_type=sa.BigInteger)
    rules_seq: int = Field(
        default=0,
        sa_type=sa.BigInteger,
        description="The last record the dispatch rules were applied to",
    )
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


def _stream_fk() -> sa.Column[int]:
    return sa.Column(
        sa.Integer,
        sa.ForeignKey("device_record_stream.id", ondelete="CASCADE"),
        primary_key=True,
    )


def _atm_fk() -> sa.Column[int]:
    return sa.Column(
        sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False, index=True
    )


class DeviceStatus(SQLModel, table=True):
    """A device status report (``{"time", "in_service", "safe_door", "devices"}``)."""

    __tablename__ = "device_status"

    stream_id: int = Field(sa_column=_stream_fk())
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    atm_id: int = Field(sa_column=_atm_fk())
    device_time: str | None = Field(default=None, max_length=32)
    in_service: bool | None = None
    safe_door: str | None = Field(default=None, max_length=16)
    data: dict[str, Any] = Field(sa_type=sa.JSON)
    stored_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)


class DeviceEvent(SQLModel, table=True):
    """An unsolicited device event (threshold, cash-unit error, hardware, safe door...)."""

    __tablename__ = "device_event"

    stream_id: int = Field(sa_column=_stream_fk())
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    atm_id: int = Field(sa_column=_atm_fk())
    kind: str = Field(max_length=32)
    device_time: str | None = Field(default=None, max_length=32)
    data: dict[str, Any] = Field(sa_type=sa.JSON)
    stored_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)


class RecordKind(StrEnum):
    CASH_UNITS = "cash_units"
    STATUS = "status"
    EVENT = "event"


class RecordIn(SQLModel):
    seq: int = Field(ge=1, le=MAX_BIG, description="The record's number in its stream, from 1")
    kind: RecordKind
    stored_at: datetime = Field(description="When the agent spooled it (UTC)")
    data: dict[str, Any] = Field(
        description=(
            "status: the device status dict; event: the event dict (with `kind`); "
            "cash_units: {`reason`, `cash_units`: XFS WFSCDMCASHUNIT dicts}"
        )
    )

    @field_validator("stored_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("stored_at needs a UTC offset")
        return value


class RecordBatch(SQLModel):
    stream: str = Field(
        schema_extra={"pattern": STREAM_PATTERN}, description="The agent spool's stream id"
    )
    records: list[RecordIn] = Field(min_length=1, max_length=5000)

    @field_validator("records")
    @classmethod
    def _consecutive(cls, value: list[RecordIn]) -> list[RecordIn]:
        for before, after in itertools.pairwise(value):
            if after.seq != before.seq + 1:
                raise ValueError(f"records must be consecutive: {after.seq} follows {before.seq}")
        return value


class RecordsAck(SQLModel):
    stream: str
    acked_seq: int = Field(description="The service holds every record of the stream up to this")
    stored: int = Field(description="Records of this request stored now")
    duplicates: int = Field(description="Records of this request the service already held")


# --- heartbeats, identity --------------------------------------------------------


class HeartbeatIn(SQLModel):
    agent_version: str = Field(max_length=32)
    stream: str = Field(schema_extra={"pattern": STREAM_PATTERN})
    started_at: datetime
    sent_at: datetime
    link: str = Field(default="unknown", max_length=200, description="The serial link's state")
    backlog_bytes: int = Field(
        ge=0, le=MAX_BIG, description="Journal bytes spooled, not yet acknowledged"
    )
    backlog_records: int = Field(
        ge=0, le=MAX_ID, description="Records spooled, not yet acknowledged"
    )
    oldest_pending_at: datetime | None = Field(
        default=None, description="When the oldest unacknowledged item was spooled"
    )
    last_stored_at: datetime | None = Field(
        default=None, description="When the link last delivered anything"
    )
    last_error: str | None = Field(default=None, max_length=500)

    @field_validator("started_at", "sent_at", "oldest_pending_at", "last_stored_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("times need a UTC offset")
        return value


class PendingCommand(SQLModel):
    """A remote command the agent is to run on the device and report on."""

    id: int
    command: str = Field(description="send_counters, go_out_of_service or go_in_service")
    requested_at: datetime


class HeartbeatReply(SQLModel):
    terminal_id: str
    server_time: datetime
    acked_seq: int = Field(description="The service holds the stream's records up to this")
    commands: list[PendingCommand] = Field(
        default_factory=list,
        description="Remote commands waiting for this ATM; report each one's result",
    )


class DeviceWhoAmI(SQLModel):
    terminal_id: str
    key_id: str


# --- latest state ------------------------------------------------------------------


class AtmState(SQLModel, table=True):
    """The latest of what an ATM's agent reported, one row per ATM."""

    __tablename__ = "atm_state"

    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), primary_key=True
        )
    )
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    agent_version: str | None = Field(default=None, max_length=32)
    agent_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    link_state: str | None = Field(default=None, max_length=200)
    agent_error: str | None = Field(default=None, max_length=500)
    backlog_bytes: int = Field(default=0, sa_type=sa.BigInteger)
    backlog_records: int = 0
    ingest_lag_s: int | None = None
    in_service: bool | None = None
    safe_door: str | None = Field(default=None, max_length=16)
    devices: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    status_time: str | None = Field(default=None, max_length=32)
    status_received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cash_units: list[dict[str, Any]] | None = Field(default=None, sa_type=sa.JSON)
    counters_reason: str | None = Field(default=None, max_length=64)
    counters_received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_event_kind: str | None = Field(default=None, max_length=32)
    last_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_journal_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CassetteCount(SQLModel):
    """One bill cassette as the latest counters show it."""

    number: int
    denomination: int | None
    currency: str | None
    count: int | None
    status: str = Field(description="ok, low, empty, inop, missing, or the XFS number")


class AtmStatePublic(SQLModel):
    atm_id: int
    terminal_id: str
    site_id: int
    online: bool = Field(description="Heard from within the offline threshold")
    last_seen_at: datetime | None
    last_heartbeat_at: datetime | None
    agent_version: str | None
    link_state: str | None
    agent_error: str | None
    backlog_bytes: int
    backlog_records: int
    ingest_lag_s: int | None = Field(description="Age of the agent's oldest unsent item")
    in_service: bool | None
    safe_door: str | None
    devices: dict[str, Any] | None
    status_time: str | None = Field(description="The device's own time of the last status")
    cassettes: list[CassetteCount]
    cash_units: list[dict[str, Any]] | None
    counters_reason: str | None
    counters_received_at: datetime | None
    last_event_kind: str | None
    last_event_at: datetime | None
    last_journal_at: datetime | None
