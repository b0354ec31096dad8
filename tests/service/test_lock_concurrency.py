"""Two service instances on one PostgreSQL: codes for one lock are never issued twice for one
outstanding cycle, however many requests race, and the log stays one unbroken chain."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlmodel import Session, col, select

from atm_service.models.locks import IssuanceState, LockIssuance, LockLogEntry
from atm_service.models.tasks import TaskKind
from atm_service.models.users import Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services import lock_log, users
from atm_service.services.lock_secrets import LockSecrets
from tests.service.dispatch_world import World, build
from tests.service.live_servers import SharedDatabase, instance, log_in, running, shared_database
from tests.service.lock_world import lock_secrets, lock_settings, on_site, provision
from tests.support import PASSWORD, FakeClock

pytestmark = pytest.mark.postgres

ROUNDS = 3
PER_ENGINEER = 8


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[SharedDatabase]:
    with shared_database("postgresql", tmp_path) as shared:
        yield shared


def test_two_instances_never_both_issue_for_one_cycle(
    shared: SharedDatabase, clock: FakeClock
) -> None:
    master, signing = lock_secrets()
    database = shared.database()
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    # What provisioning needs of an app's context, without an app.
    context = SimpleNamespace(locks=LockSecrets(lock_settings()), clock=clock, passwords=passwords)
    with database.session() as session:
        world: World = build(session, passwords=passwords, now=clock())
        provision(session, context, world)  # type: ignore[arg-type]
        add_dispatcher(session, passwords, clock)
        # Two engineers on site at the same ATM, on two tasks: both may ask for its lock.
        flm = on_site(session, world, clock)
        cash = on_site(session, world, clock, kind=TaskKind.REPLENISHMENT, engineer="erin")
    with ExitStack() as stack:
        urls = [
            stack.enter_context(
                running(
                    instance(shared, clock, lock_master_key=master, lock_log_signing_key=signing)
                )
            )
            for _ in range(2)
        ]
        clients = {
            name: [stack.enter_context(log_in(url, name).client(url)) for url in urls]
            for name in ("eli", "erin")
        }
        atm = world.atms["T1000001"]
        for round_ in range(ROUNDS):
            calls = [
                (clients[name][n % 2], task)
                for name, task in (("eli", flm.id), ("erin", cash.id))
                for n in range(PER_ENGINEER)
            ]

            def call(item: tuple[httpx.Client, int | None]) -> httpx.Response:
                client, task_id = item
                return client.post(f"/api/v1/atms/{atm}/lock/codes", json={"task_id": task_id})

            with ThreadPoolExecutor(16) as pool:
                responses = list(pool.map(call, calls))
            statuses = Counter(r.status_code for r in responses)
            assert statuses == {201: 1, 409: len(calls) - 1}, [r.text for r in responses]
            winner = next(r for r in responses if r.status_code == 201).json()
            assert winner["code"]
            # Close the cycle so the next round races again.
            with log_in(urls[round_ % 2], "dana").client(urls[round_ % 2]) as dana:
                closed = dana.post(
                    f"/api/v1/atms/{atm}/lock/force-close", json={"reason": "next round"}
                )
            assert closed.status_code == 200, closed.text
            clock.advance(minutes=1)
    with shared.database().session() as session:
        cycles = list(session.exec(select(LockIssuance)))
        assert len(cycles) == ROUNDS
        assert {c.state for c in cycles} == {IssuanceState.FORCE_CLOSED}
        kinds = Counter(session.exec(select(LockLogEntry.kind)))
        assert kinds["code-issued"] == ROUNDS
        assert kinds["force-close"] == ROUNDS
        positions = list(
            session.exec(select(LockLogEntry.position).order_by(col(LockLogEntry.position)))
        )
        assert positions == list(range(len(positions)))
        result = lock_log.verify_stored(session, secrets=LockSecrets(lock_settings()))
        assert result.valid, result.summary


def add_dispatcher(session: Session, passwords: Passwords, clock: FakeClock) -> None:
    users.create_user(
        session,
        data=UserCreate(username="dana", full_name="Dana", role=Role.DISPATCHER, password=PASSWORD),
        passwords=passwords,
        now=clock(),
    )
