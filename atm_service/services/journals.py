"""Reading electronic journals back: a whole day's file, byte for byte, or a range of it.

:func:`get_journal` is what reconciliation consumes: the exact bytes the ATM
wrote for one business day, as far as they have arrived.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from atm_service.errors import InvalidInput, NotFound
from atm_service.models.fleet import Atm
from atm_service.models.journals import JournalChunk, JournalFile, JournalPublic
from atm_service.services.fleet import get_atm
from atm_service.services.sql import table

_FILES = table(JournalFile)
_CHUNKS = table(JournalChunk)
_ATMS = table(Atm)
_NAME = re.compile(r"^[0-9]{8}$")


class JournalDamaged(RuntimeError):
    """The stored chunks of a journal do not tile it: a bug or a damaged database."""


def check_journal_name(name: str) -> None:
    """A journal is named by its business day, ``YYYYMMDD``."""
    if not _NAME.match(name):
        raise InvalidInput(f"Journal name {name!r} is not a date written YYYYMMDD.", field="name")
    try:
        datetime.strptime(name, "%Y%m%d")
    except ValueError:
        raise InvalidInput(f"Journal name {name!r} is not a real date.", field="name") from None


def read_range(connection: Connection, journal_id: int, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of a stored journal (all of them must be held)."""
    if start >= end:
        return b""
    first = connection.execute(
        sa.select(sa.func.max(_CHUNKS.c.start)).where(
            _CHUNKS.c.journal_id == journal_id, _CHUNKS.c.start <= start
        )
    ).scalar()
    if first is None:
        raise JournalDamaged(f"journal {journal_id} has no chunk at offset {start}")
    rows = connection.execute(
        sa.select(_CHUNKS.c.start, _CHUNKS.c.data)
        .where(
            _CHUNKS.c.journal_id == journal_id,
            _CHUNKS.c.start >= first,
            _CHUNKS.c.start < end,
        )
        .order_by(_CHUNKS.c.start)
    ).all()
    whole = _join(journal_id, first, rows)
    if first + len(whole) < end:
        raise JournalDamaged(f"journal {journal_id} ends at {first + len(whole)}, before {end}")
    return whole[start - first : end - first]


def _join(journal_id: int, first: int, rows: Sequence[Sequence[Any]]) -> bytes:
    parts = []
    position = first
    for start, data in rows:
        if start != position:
            raise JournalDamaged(f"journal {journal_id} has a hole or overlap at {position}")
        parts.append(bytes(data))
        position += len(data)
    return b"".join(parts)


def _file(session: Session, atm_id: int, name: str) -> tuple[int, int]:
    check_journal_name(name)
    atm = get_atm(session, atm_id=atm_id)
    row = (
        session.connection()
        .execute(
            sa.select(_FILES.c.id, _FILES.c.size).where(
                _FILES.c.atm_id == atm_id, _FILES.c.name == name
            )
        )
        .first()
    )
    if row is None:
        raise NotFound(f"ATM {atm.terminal_id} has no journal {name}.")
    return int(row[0]), int(row[1])


def get_journal(session: Session, atm_id: int, name: str) -> bytes:
    """The ATM's journal for business day ``name`` (``YYYYMMDD``): every byte received."""
    journal_id, size = _file(session, atm_id, name)
    rows = (
        session.connection()
        .execute(
            sa.select(_CHUNKS.c.start, _CHUNKS.c.data)
            .where(_CHUNKS.c.journal_id == journal_id)
            .order_by(_CHUNKS.c.start)
        )
        .all()
    )
    data = _join(journal_id, 0, rows)
    if len(data) != size:
        raise JournalDamaged(f"journal {journal_id} holds {len(data)} bytes, not {size}")
    return data


def list_journals(session: Session, *, atm_id: int) -> list[JournalPublic]:
    """The ATM's journals, oldest business day first."""
    atm = get_atm(session, atm_id=atm_id)
    rows = (
        session.connection()
        .execute(
            sa.select(
                _FILES.c.name,
                _FILES.c.size,
                _FILES.c.line_count,
                _FILES.c.created_at,
                _FILES.c.updated_at,
            )
            .where(_FILES.c.atm_id == atm_id)
            .order_by(_FILES.c.name)
        )
        .all()
    )
    return [
        JournalPublic(
            atm_id=atm_id,
            terminal_id=atm.terminal_id,
            name=row.name,
            size=row.size,
            line_count=row.line_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def ingested_lines(session: Session) -> int:
    """Journal lines held across the fleet (for capacity figures)."""
    total = session.connection().execute(sa.select(sa.func.sum(_FILES.c.line_count))).scalar()
    return int(total or 0)
