"""A database that is away answers 503 with Retry-After, not 500; a bad statement is still a bug.

The whole-system behaviour (PostgreSQL restarted under load, nothing lost or
doubled) is ``tests/system/test_fault_restarts.py``; here, the classification of
the driver's errors and the answers of an app whose database refuses connections.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import psycopg.errors
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from atm_service.api.device_guard import DeviceCall
from atm_service.app import create_app
from atm_service.db import Database, create_engine, is_unavailable
from atm_service.services.device_auth import SignedRequest
from device_agent.signing import DeviceKey, new_nonce
from tests.ingest_support import run_async
from tests.support import make_settings


def _wrapped(original: Exception, *, invalidated: bool = False) -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError.instance(
        "SELECT 1", {}, original, psycopg.Error, connection_invalidated=invalidated
    )


@pytest.mark.parametrize(
    "original",
    [
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
        psycopg.errors.TooManyConnections("sorry, too many clients already"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.OperationalError("connection failed: Connection refused"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_server_that_is_away_or_busy_is_unavailable(original: Exception) -> None:
    assert is_unavailable(_wrapped(original))


@pytest.mark.parametrize(
    "original",
    [
        psycopg.errors.UndefinedTable('relation "nothing" does not exist'),
        psycopg.errors.UniqueViolation("duplicate key value"),
        psycopg.errors.SyntaxError("syntax error at or near"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_wrong_statement_is_not_unavailability(original: Exception) -> None:
    assert not is_unavailable(_wrapped(original))


def test_a_lost_connection_and_an_empty_pool_are_unavailable() -> None:
    assert is_unavailable(
        _wrapped(psycopg.InterfaceError("the connection is lost"), invalidated=True)
    )
    assert is_unavailable(sa.exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached"))
    assert not is_unavailable(ValueError("not a database error"))


def test_sqlite_busy_is_unavailable_and_a_missing_table_is_not(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError) as busy:
            other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as missing:
            other.execute("SELECT * FROM nothing")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        other.close()
    assert is_unavailable(sa.exc.OperationalError("BEGIN", {}, busy.value))
    assert not is_unavailable(sa.exc.OperationalError("SELECT", {}, missing.value))


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The app over a PostgreSQL URL where nothing listens: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_engine(
        f"postgresql://postgres@127.0.0.1:{port}/nothing", connect_args={"connect_timeout": 2}
    )
    app = create_app(make_settings(), database=Database(engine), check_migrations=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    engine.dispose()


def _assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503
    headers = response.headers
    assert headers["retry-after"] == "2"
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(response.text)
    assert problem["type"] == "/problems/database-unavailable"
    assert "again" in problem["detail"]
    assert "Traceback" not in problem["detail"]


def test_a_device_request_is_told_to_retry_when_the_database_is_away(client: TestClient) -> None:
    key = DeviceKey.generate()
    body = json.dumps(
        {
            "agent_version": "0.1.0",
            "stream": "0" * 32,
            "started_at": "2026-11-16T08:00:00+00:00",
            "sent_at": "2026-11-16T08:00:00+00:00",
            "backlog_bytes": 0,
            "backlog_records": 0,
        }
    ).encode()
    target = "/api/v1/devices/T1000001/heartbeat"
    headers = key.signature_headers(
        method="POST",
        target=target,
        body=body,
        timestamp=int(datetime.now(UTC).timestamp()),
        nonce=new_nonce(),
    )
    response = client.post(
        target, content=body, headers={**headers, "Content-Type": "application/json"}
    )
    _assert_retry_later(response)


def test_a_login_is_told_to_retry_and_a_page_says_so(client: TestClient) -> None:
    response = client.post("/api/v1/session", json={"username": "dana", "password": "secret"})
    _assert_retry_later(response)
    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    page = client.post(
        "/login", data={"username": "dana", "password": "secret", "csrf_token": csrf[1]}
    )
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"] == "2"
    assert "Database unavailable" in page.text
    assert client.get("/readyz").status_code == 503


def test_work_after_a_device_request_logs_a_database_away_and_goes_on(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    context = client.app.state.context  # type: ignore[attr-defined]
    call = DeviceCall(
        signed=SignedRequest(method="POST", target="/", body=b"", headers={}),
        terminal_id=None,
        context=context,
        now=datetime.now(UTC),
    )
    touched: list[str] = []

    def work(session: Session) -> None:
        touched.append("started")
        session.connection()  # the database refuses the connection

    with caplog.at_level("WARNING", logger="atm_service.ingest"):
        run_async(call.then(work))
    assert touched == ["started"]
    assert any("database is unavailable" in message for message in caplog.messages)
