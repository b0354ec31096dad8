"""Pooled PostgreSQL connections outlive the server dropping them.

A connection the server dropped (a restart, an administrator) is found out when
it is taken from the pool and replaced, so no request meets it; one dropped
while a request uses it fails that request as "unavailable" (503, to retry),
and the pool replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from atm_service.db import create_engine, is_unavailable
from tests.conftest import postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pool() -> Iterator[Engine]:
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL tests need ATM_TEST_DATABASE_URL")
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at ATM_TEST_DATABASE_URL is unreachable: {exc.orig}")
    yield engine
    engine.dispose()


def _backend_pid(connection: sa.Connection) -> int:
    return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    url = postgres_url()
    assert url is not None
    other = create_engine(url)
    with other.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def test_a_pooled_connection_the_server_dropped_is_replaced_before_use(pool: Engine) -> None:
    with pool.connect() as connection:
        first = _backend_pid(connection)
    _terminate(first)
    with pool.connect() as connection:
        assert _backend_pid(connection) != first


def test_a_connection_dropped_in_use_fails_as_unavailable_and_is_replaced(pool: Engine) -> None:
    with pool.connect() as connection:
        first = _backend_pid(connection)
        _terminate(first)
        with pytest.raises(sa.exc.DBAPIError) as lost:
            connection.execute(sa.text("SELECT 1"))
    assert is_unavailable(lost.value)
    with pool.connect() as connection:
        assert _backend_pid(connection) != first
