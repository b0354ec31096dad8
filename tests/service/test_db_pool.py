"""Pooled PostgreSQL connections: tested before use only after being idle, replaced when lost.

A connection the server dropped (a restart, an administrator) costs at most the
request that meets it first, which is answered 503 to retry; an idle one is
tested and replaced before anyone meets it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from atm_service import db
from atm_service.db import create_engine, is_unavailable
from tests.conftest import postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, list[int]]]:
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL tests need ATM_TEST_DATABASE_URL")
    engine = create_engine(url, pool_size=1)
    pings: list[int] = []
    real_ping = engine.dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(real_ping(dbapi_connection))

    monkeypatch.setattr(engine.dialect, "do_ping", counting_ping)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at ATM_TEST_DATABASE_URL is unreachable: {exc.orig}")
    yield engine, pings
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    other = create_engine(url)
    with other.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def test_a_connection_in_steady_use_is_not_pinged_and_an_idle_one_is(
    engine: tuple[Engine, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, pings = engine
    for _ in range(3):
        _backend_pid(pool)
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every connection counts as idle
    _backend_pid(pool)
    assert pings == [1]


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    engine: tuple[Engine, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, pings = engine
    first = _backend_pid(pool)
    url = postgres_url()
    assert url is not None
    _terminate(url, first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    assert _backend_pid(pool) != first  # the ping failed; a new connection served
    assert pings


def test_a_busy_connection_the_server_dropped_fails_once_as_unavailable(
    engine: tuple[Engine, list[int]],
) -> None:
    pool, pings = engine
    first = _backend_pid(pool)
    url = postgres_url()
    assert url is not None
    _terminate(url, first)
    with pytest.raises(sa.exc.DBAPIError) as lost:
        _backend_pid(pool)
    assert is_unavailable(lost.value)
    assert _backend_pid(pool) != first  # the pool replaced it
    assert pings == []
