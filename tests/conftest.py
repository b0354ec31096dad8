"""Fixtures: each test runs on SQLite and, where configured, on PostgreSQL, inside a
transaction that is rolled back afterwards.

PostgreSQL tests use ``ATM_TEST_DATABASE_URL``; without it they skip, unless
``ATM_REQUIRE_POSTGRES=1`` (as in CI), which turns a missing or unreachable
database into a failure. Each test session migrates its own schema and drops it
at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import Engine

from atm_service.app import create_app
from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from tests.support import FakeClock, make_settings

hypothesis_settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile("dev", max_examples=50, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _required(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("db") / "test.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(Database(engine))
    yield engine
    engine.dispose()


def postgres_url() -> str | None:
    url = os.environ.get("ATM_TEST_DATABASE_URL")
    if not url:
        if _required("ATM_REQUIRE_POSTGRES"):
            pytest.fail("ATM_REQUIRE_POSTGRES=1 but ATM_TEST_DATABASE_URL is not set")
        return None
    return url


def new_postgres_schema(url: str) -> tuple[Engine, str]:
    """An engine whose connections work in a new, empty schema."""
    schema = f"atm_test_{secrets.token_hex(6)}"
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL at ATM_TEST_DATABASE_URL is unreachable: {exc.orig}"
        if _required("ATM_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    admin.dispose()
    engine = create_engine(url, connect_args={"options": f"-c search_path={schema}"})
    return engine, schema


def drop_postgres_schema(url: str, schema: str) -> None:
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgresql_engine() -> Iterator[Engine]:
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL tests need ATM_TEST_DATABASE_URL")
    engine, schema = new_postgres_schema(url)
    upgrade(Database(engine))
    yield engine
    engine.dispose()
    drop_postgres_schema(url, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    engine: Engine = request.getfixturevalue(f"{request.param}_engine")
    return engine


@pytest.fixture
def database(engine: Engine) -> Iterator[Database]:
    """A database whose every change is rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    yield Database(engine, connection=connection)
    transaction.rollback()
    connection.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings, database: Database, clock: FakeClock) -> FastAPI:
    return create_app(settings, database=database, clock=clock)


@pytest.fixture
def context(app: FastAPI) -> AppContext:
    context: AppContext = app.state.context
    return context


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
