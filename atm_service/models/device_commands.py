"""Remote commands for an ATM's device, and their outcome.

A dispatcher or administrator asks the service to have an ATM run one of the
commands of the serial link (``send_counters``, ``go_out_of_service``,
``go_in_service``). The command waits in ``device_command`` until the ATM's
agent calls in: each heartbeat answer lists the ATM's commands still waiting,
the agent runs them over the link and posts each result. A command nobody
collected before ``expires_at`` expires: an ATM that comes back after a day
must not be taken out of service by yesterday's request.

States: ``pending`` (not yet collected) → ``delivered`` (listed to the agent,
perhaps more than once) → ``succeeded`` | ``failed`` (the device's answer, or
the agent's reason it could not ask); ``pending`` / ``delivered`` →
``expired``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlmodel import Field, SQLModel

from atm_service.models.base import UTCDateTime, enum_column_type


class DeviceCommandName(StrEnum):
    """The remote commands of the serial link (docs/protocol.md, COMMAND)."""

    SEND_COUNTERS = "send_counters"
    GO_OUT_OF_SERVICE = "go_out_of_service"
    GO_IN_SERVICE = "go_in_service"


class CommandState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"


WAITING_STATES = (CommandState.PENDING, CommandState.DELIVERED)


class DeviceCommand(SQLModel, table=True):
    __tablename__ = "device_command"
    __table_args__ = (sa.Index("ix_device_command_atm_id_state", "atm_id", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    atm_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False)
    )
    command: DeviceCommandName = Field(sa_type=enum_column_type(DeviceCommandName, 32))
    state: CommandState = Field(sa_type=enum_column_type(CommandState, 16))
    reason: str = Field(default="", max_length=500)
    requested_by: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("app_user.id", ondelete="SET NULL"), nullable=True
        ),
    )
    requested_by_name: str = Field(max_length=64)
    requested_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deliveries: int = 0
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    result: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON, nullable=True))


# --- API schemas ---------------------------------------------------------------


class DeviceCommandCreate(SQLModel):
    command: DeviceCommandName
    reason: str = Field(default="", max_length=500, description="Why, for the record")


class DeviceCommandPublic(SQLModel):
    id: int
    atm_id: int
    terminal_id: str
    command: DeviceCommandName
    state: CommandState
    reason: str
    requested_by: str = Field(description="The user name of who asked")
    requested_at: datetime
    expires_at: datetime
    delivered_at: datetime | None = Field(description="When the agent first collected it")
    deliveries: int = Field(description="How many heartbeat answers listed it")
    completed_at: datetime | None
    result: dict[str, Any] | None = Field(
        description="The device's answer (`ok`, and what the command reports), as the agent sent it"
    )


class CommandResultIn(BaseModel):
    """What the agent reports: the device's answer, or why it could not be asked."""

    model_config = ConfigDict(extra="allow")

    ok: bool
    error: str | None = None
