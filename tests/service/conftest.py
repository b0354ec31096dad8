"""Fixtures for the service's dispatch tests: an ORM session and a small world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from atm_service.db import Database
from atm_service.security.passwords import Passwords
from tests.service.dispatch_world import World, build
from tests.support import FakeClock


@pytest.fixture
def passwords() -> Passwords:
    return Passwords(time_cost=1, memory_kib=1024, parallelism=1)


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.session() as session:
        yield session


@pytest.fixture
def world(session: Session, passwords: Passwords, clock: FakeClock) -> World:
    return build(session, passwords=passwords, now=clock())
