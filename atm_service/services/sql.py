"""Statements that differ by backend, built once: ``INSERT ... ON CONFLICT`` for SQLite and
PostgreSQL.

Both backends speak the same ``ON CONFLICT`` clause; SQLAlchemy builds it from
the dialect's own ``insert``. Ingest uses these so that a retried upload is a
no-op instead of a unique-key error, and so one statement does the work.

Building a SQLAlchemy statement costs more than running it, and ingest runs the
same few statements for every request of the fleet, so they are built once per
(dialect, table, columns) with bound parameters and reused (:func:`cached`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable
from sqlmodel import SQLModel

_BUILT: dict[tuple[str, str], Executable] = {}


def table(model: type[SQLModel]) -> sa.Table:
    """The Core table of a SQLModel table class, for set-based statements."""
    found = sa.inspect(model).local_table
    assert isinstance(found, sa.Table), model
    return found


def cached(name: str, connection: Connection, build: Callable[[], Executable]) -> Executable:
    """The statement called ``name`` for this connection's dialect, built on first use."""
    key = (connection.dialect.name, name)
    statement = _BUILT.get(key)
    if statement is None:
        statement = _BUILT[key] = build()
    return statement


def _insert(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no ON CONFLICT support for {dialect}")


@cache
def _insert_ignoring(dialect: str, table: sa.Table, columns: tuple[str, ...]) -> Executable:
    key = next(iter(table.primary_key.columns))
    statement: Executable = (
        _insert(dialect, table)
        .values({column: sa.bindparam(column) for column in columns})
        .on_conflict_do_nothing()
        .returning(key)
    )
    return statement


@cache
def _upsert(
    dialect: str,
    table: sa.Table,
    key: tuple[str, ...],
    columns: tuple[str, ...],
    update: tuple[str, ...],
) -> Executable:
    insert = _insert(dialect, table).values({column: sa.bindparam(column) for column in columns})
    statement: Executable = insert.on_conflict_do_update(
        index_elements=list(key), set_={column: insert.excluded[column] for column in update}
    )
    return statement


def insert_ignoring_duplicates(
    connection: Connection, table: sa.Table, values: Mapping[str, Any]
) -> int:
    """Insert one row unless its key exists; the number of rows inserted (0 or 1).

    ``RETURNING`` tells, where ``rowcount`` would not: psycopg reports -1 here.
    """
    statement = _insert_ignoring(connection.dialect.name, table, tuple(sorted(values)))
    return 0 if connection.execute(statement, dict(values)).first() is None else 1


def upsert(
    connection: Connection,
    table: sa.Table,
    *,
    key: Sequence[str],
    values: Mapping[str, Any],
    update: Sequence[str],
) -> None:
    """Insert ``values``, or on a conflict over ``key`` set the ``update`` columns to them."""
    statement = _upsert(
        connection.dialect.name, table, tuple(key), tuple(sorted(values)), tuple(sorted(update))
    )
    connection.execute(statement, dict(values))
