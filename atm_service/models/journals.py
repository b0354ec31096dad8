"""Electronic journals as the service holds them: exactly the ATM's bytes, per business day.

``journal_file`` is one EJ file (one ATM, one business day ``YYYYMMDD``) with
its size and the number of lines it holds; ``journal_chunk`` holds its bytes as
contiguous chunks keyed by their starting offset, one chunk per accepted
upload. The chunks of a file always tile ``[0, size)`` without a hole or an
overlap, so the file is the concatenation of its chunks in offset order.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import UTCDateTime

JOURNAL_NAME_PATTERN = r"^[0-9]{8}$"


class JournalFile(SQLModel, table=True):
    __tablename__ = "journal_file"
    __table_args__ = (sa.UniqueConstraint("atm_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    atm_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(max_length=8, description="Business day, YYYYMMDD")
    size: int = Field(default=0, sa_type=sa.BigInteger)
    line_count: int = Field(default=0, sa_type=sa.BigInteger)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class JournalChunk(SQLModel, table=True):
    __tablename__ = "journal_chunk"

    journal_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("journal_file.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    start: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    length: int
    data: bytes = Field(sa_type=sa.LargeBinary)
    received_at: datetime = Field(sa_type=UTCDateTime)


class JournalPublic(SQLModel):
    atm_id: int
    terminal_id: str
    name: str
    size: int = Field(description="Bytes held")
    line_count: int = Field(description="Complete lines (LF) held")
    created_at: datetime
    updated_at: datetime


class JournalAck(SQLModel):
    """The answer to a journal upload."""

    name: str
    size: int = Field(description="Bytes of the journal the service now holds")
    appended: int = Field(description="New bytes this request added")
    lines: int = Field(description="Complete lines those bytes added")
