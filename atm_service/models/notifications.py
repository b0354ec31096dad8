"""The outbox of live updates: rows written in the same transaction as the change.

Every service instance polls this table (woken by PostgreSQL NOTIFY where it
can) and pushes new rows to the browsers connected to it by server-sent events,
so an engineer sees a dispatch whichever instance made it. Rows are pruned
after a while; they are a delivery channel, not a record (that is the task
history).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import UTCDateTime, enum_column_type


class Audience(StrEnum):
    ENGINEER = "engineer"  # the one user named by user_id
    BOARD = "board"  # every dispatcher's board


class DispatchNotification(SQLModel, table=True):
    __tablename__ = "dispatch_notification"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    audience: Audience = Field(sa_type=enum_column_type(Audience, length=16))
    user_id: int | None = Field(default=None)
    task_id: int | None = Field(default=None)
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
