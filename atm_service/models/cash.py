"""Cash: the cash-unit counters the ATMs report.

``counters_snapshot`` keeps every snapshot an agent sends, as the CEN/XFS 3.x
``WFSCDMCASHUNIT`` dicts the device gave (field names as in
``shared/formats`` counters files), with the reason it was taken
(``start_of_day``, ``replenishment``, ``end_of_day``, ``requested``...).
Idempotent by (record stream, sequence), like the other device records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import UTCDateTime


class CountersSnapshot(SQLModel, table=True):
    __tablename__ = "counters_snapshot"

    stream_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("device_record_stream.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    reason: str = Field(max_length=64)
    cash_units: list[dict[str, Any]] = Field(sa_type=sa.JSON)
    stored_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)
