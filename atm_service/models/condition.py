"""The condition of each ATM as dispatch last saw it, and its outages.

Dispatch rules compare each new status, event or cash-unit report with the
last one (:class:`AtmCondition`) to see what changed: a device that failed, a
device that recovered, a cassette that ran low. :class:`AtmOutage` records the
intervals in which an ATM could not serve customers; the availability figures
are computed from them within each contract's service hours.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import UTCDateTime


class AtmCondition(SQLModel, table=True):
    __tablename__ = "atm_condition"

    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), primary_key=True
        )
    )
    in_service: bool | None = None
    safe_door: str | None = Field(default=None, max_length=16)
    devices: dict[str, str] = Field(
        default_factory=dict,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="Device name → ok | warning | fault",
    )
    details: dict[str, str] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    cash_units: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="The last XFS cash-unit report",
    )
    status_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cash_units_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class AtmOutage(SQLModel, table=True):
    """An interval in which the ATM could not serve; ``ended_at`` is NULL while it lasts."""

    __tablename__ = "atm_outage"

    id: int | None = Field(default=None, primary_key=True)
    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cause: str = Field(max_length=200)
