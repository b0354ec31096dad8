"""Statements that differ by backend: ``INSERT ... ON CONFLICT`` for SQLite and PostgreSQL.

Both backends speak the same ``ON CONFLICT`` clause; SQLAlchemy builds it from
the dialect's own ``insert``. Ingest uses these so that a retried upload is a
no-op instead of a unique-key error, and so one statement does the work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel


def table(model: type[SQLModel]) -> sa.Table:
    """The Core table of a SQLModel table class, for set-based statements."""
    found = sa.inspect(model).local_table
    assert isinstance(found, sa.Table), model
    return found


def _insert(connection: Connection, table: sa.Table) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no ON CONFLICT support for {connection.dialect.name}")


def insert_ignoring_duplicates(
    connection: Connection, table: sa.Table, values: Mapping[str, Any]
) -> int:
    """Insert one row unless its key exists; the number of rows inserted (0 or 1).

    ``RETURNING`` tells, where ``rowcount`` would not: psycopg reports -1 here.
    """
    key = next(iter(table.primary_key.columns))
    statement = (
        _insert(connection, table).values(dict(values)).on_conflict_do_nothing().returning(key)
    )
    return 0 if connection.execute(statement).first() is None else 1


def upsert(
    connection: Connection,
    table: sa.Table,
    *,
    key: Sequence[str],
    values: Mapping[str, Any],
    update: Mapping[str, Any],
) -> None:
    """Insert ``values``, or on a conflict over ``key`` set the columns in ``update``."""
    statement = (
        _insert(connection, table)
        .values(dict(values))
        .on_conflict_do_update(index_elements=list(key), set_=dict(update))
    )
    connection.execute(statement)
