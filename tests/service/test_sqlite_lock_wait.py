"""Waiting for SQLite's write lock: promptly after the writer ends, and not for ever."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from atm_service.db import begin_immediate, create_engine, is_unavailable


def holder(path: Path) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    raw.execute("BEGIN IMMEDIATE")
    return raw


def test_a_transaction_starts_within_milliseconds_of_the_writer_ending(tmp_path: Path) -> None:
    path = tmp_path / "wait.db"
    engine = create_engine(f"sqlite:///{path}")
    lateness = []
    for n in range(3):
        other = holder(path)
        ended = 0.0

        def end_soon(other: sqlite3.Connection = other) -> None:
            nonlocal ended
            time.sleep(0.21)
            ended = time.monotonic()
            other.execute("COMMIT")

        thread = threading.Thread(target=end_soon)
        thread.start()
        with engine.begin() as connection:
            started = time.monotonic()
            connection.exec_driver_sql("INSERT INTO t VALUES (?)", (n,))
        thread.join()
        other.close()
        lateness.append(started - ended)
    # SQLite's own busy handler sleeps in 50 ms steps by then and starts ~19 ms late here.
    assert 0 <= sorted(lateness)[1] < 0.012
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 3
    engine.dispose()


def test_a_lock_held_past_the_wait_is_unavailability(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    other = holder(path)
    raw = sqlite3.connect(path, isolation_level=None)
    began = time.monotonic()
    with pytest.raises(sqlite3.OperationalError) as busy:
        begin_immediate(raw, wait_s=0.1)
    assert 0.1 <= time.monotonic() - began < 1.0
    assert is_unavailable(sa.exc.OperationalError("BEGIN IMMEDIATE", None, busy.value))
    # The connection's own busy timeout is back for every other statement.
    assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 10000
    raw.close()
    other.close()
