"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

A :class:`Database` hands out sessions; the app and the CLI build one from the
settings, tests build one bound to a connection whose outer transaction they
roll back after each test.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from atm_service.config import Settings


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names (or none)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# SQLSTATE classes and codes that say the server, not the request, is the trouble:
# 08 connection exception, 53 insufficient resources, 57 operator intervention
# (admin shutdown, crash shutdown, cannot connect now), 40001 serialization
# failure, 40P01 deadlock.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")
_TRANSIENT_SQLSTATES = ("40001", "40P01")
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
# How long a transaction waits for SQLite's write lock, and how often it looks again.
SQLITE_LOCK_WAIT_S = 10.0
_SQLITE_POLL_S = (0.0002, 0.002)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot serve now (down, restarting, out of
    connections, busy) rather than that the statement is wrong: the request may be
    retried as it is."""
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:  # SQLAlchemy recognised a lost connection
        return True
    original = exc.orig
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    sqlite_error = getattr(original, "sqlite_errorname", None)
    if sqlite_error is not None:
        return str(sqlite_error) in _SQLITE_BUSY
    # psycopg reports a failed connection attempt (refused, reset) without a SQLSTATE.
    return True


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin,
        # so SAVEPOINTs (and rolled-back test transactions) behave as documented.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_WAIT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock at the start, so concurrent requests wait
        # for each other instead of failing with "database is locked" when a read
        # transaction cannot be upgraded to a write.
        raw = connection.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        try:
            begin_immediate(raw)
        except sqlite3.OperationalError as exc:
            # As SQLAlchemy reports it, so a database that stays busy is a 503.
            raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc


def begin_immediate(raw: sqlite3.Connection, *, wait_s: float = SQLITE_LOCK_WAIT_S) -> None:
    """``BEGIN IMMEDIATE``, waiting up to ``wait_s`` for another writer to finish.

    SQLite's own busy handler sleeps in growing steps (1, 2, 5, 10 ... 100 ms), so a
    request queued behind another for a millisecond could sleep for tens; here the
    lock is tried again every fraction of a millisecond, backing off to a few.
    """
    deadline = time.monotonic() + wait_s
    delay = _SQLITE_POLL_S[0]
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorname not in _SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, _SQLITE_POLL_S[1])
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_WAIT_S * 1000)}")


def create_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings each backend needs.

    Statement parameters are kept out of error messages (``hide_parameters``): they
    hold password hashes, journal bytes with card numbers and encrypted keys, and an
    error message may reach a log.
    """
    url = normalise_url(url)
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_LOCK_WAIT_S}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **kwargs
    )


class Database:
    """Hands out ORM sessions over one engine, or over one connection in tests."""

    def __init__(self, engine: Engine, *, connection: Connection | None = None) -> None:
        self.engine = engine
        self.connection = connection
        if connection is None:
            self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        else:
            self._sessions = sessionmaker(
                bind=connection,
                class_=Session,
                expire_on_commit=False,
                join_transaction_mode="create_savepoint",
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(create_engine(settings.database_url, pool_size=settings.database_pool_size))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self._sessions()

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error."""
        with self.session() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A plain connection (the test connection when there is one)."""
        if self.connection is not None:
            yield self.connection
            return
        with self.engine.connect() as connection:
            yield connection

    def dispose(self) -> None:
        if self.connection is None:
            self.engine.dispose()
