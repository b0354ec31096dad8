"""Rate limits: one row per counted attempt, kept while it is inside its window.

A row names its limit (``login-user``, ``login-address``, ``code-user``,
``code-address``) and a digest of the subject (a user name, a user id, a client
address), never the subject itself: a user name typed into the password field
must not be kept. The sliding-window rules are in
:mod:`atm_service.services.rate_limits`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import UTCDateTime


class RateLimitHit(SQLModel, table=True):
    __tablename__ = "rate_limit_hit"
    __table_args__ = (
        sa.Index("ix_rate_limit_hit_limit_subject_at", "limit_name", "subject", "at"),
        sa.Index("ix_rate_limit_hit_at", "at"),
    )

    # 64-bit on PostgreSQL (rows come and go for ever); SQLite's rowid is already 64-bit.
    id: int | None = Field(
        default=None, sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    limit_name: str = Field(max_length=32)
    subject: str = Field(max_length=64, description="SHA-256 (hex) of what is limited")
    at: datetime = Field(sa_type=UTCDateTime)
