"""Live updates: the outbox cursor, and server-sent events across two service instances."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from atm_service.live import Cursor, format_event
from atm_service.models.users import Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services import users
from tests.service.dispatch_world import World, build, fault
from tests.service.live_servers import (
    EventReader,
    SharedDatabase,
    instance,
    log_in,
    running,
    shared_database,
)
from tests.support import PASSWORD, FakeClock


def test_the_cursor_delivers_each_id_once_and_waits_for_late_commits() -> None:
    cursor = Cursor(10, grace=5)
    assert cursor.take([11, 12, 14]) == [11, 12, 14]
    cursor.advance(now=100.0)
    assert cursor.low == 12  # 13 is not visible yet: keep reading from there
    assert cursor.take([14]) == []  # seen already
    assert cursor.take([13, 14, 15]) == [13, 15]  # 13 committed late
    cursor.advance(now=101.0)
    assert cursor.low == 15
    assert cursor.seen == set()


def test_the_cursor_gives_up_on_a_hole_after_the_grace_time() -> None:
    cursor = Cursor(0, grace=5)
    cursor.take([1, 3])
    cursor.advance(now=0.0)
    assert cursor.low == 1
    cursor.advance(now=4.9)
    assert cursor.low == 1
    cursor.advance(now=5.0)  # 2 was rolled back: skip it
    assert cursor.low == 3


def test_events_are_formatted_as_the_spec_says() -> None:
    text = format_event("task", {"id": 1, "title": "a\nb"}, event_id=7)
    assert text == 'id: 7\nevent: task\ndata: {"id":1,"title":"a\\nb"}\n\n'


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedDatabase]:
    with shared_database(request.param, tmp_path) as shared:
        yield shared


@pytest.fixture
def world(shared: SharedDatabase, clock: FakeClock) -> World:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    with shared.database().session() as session:
        world = build(session, passwords=passwords, now=clock())
        users.create_user(
            session,
            data=UserCreate(
                username="dana", full_name="Dana", role=Role.DISPATCHER, password=PASSWORD
            ),
            passwords=passwords,
            now=clock(),
        )
    return world


def test_a_dispatch_reaches_the_engineer_on_the_other_instance(
    shared: SharedDatabase, world: World, clock: FakeClock
) -> None:
    with ExitStack() as stack:
        first, second = (
            stack.enter_context(running(instance(shared, clock, dispatch_stream_max_seconds=3)))
            for _ in range(2)
        )
        eli = EventReader(log_in(first, "eli"), first, "/my/stream")
        erin = EventReader(log_in(second, "erin"), second, "/my/stream")
        board = EventReader(log_in(first, "dana"), first, "/board/stream")
        for reader in (eli, erin, board):
            assert reader.status == 200
            assert reader.events[0].event == "hello"
            assert "server_time" in reader.events[0].data
        dana = stack.enter_context(log_in(second, "dana").client(second))
        sent = time.monotonic()
        response = dana.post(f"/api/v1/atms/{world.atms['T1000001']}/device-events", json=fault())
        assert response.status_code == 200
        task = response.json()["tasks"][0]
        arrived = eli.wait_for(lambda e: e.event == "task" and e.data["id"] == task["id"])
        assert arrived.data["terminal_id"] == "T1000001"
        assert arrived.data["state"] == "assigned"
        assert arrived.data["removed"] is False
        assert arrived.received - sent < 3.0
        board.wait_for(lambda e: e.event == "task" and e.data["id"] == task["id"])
        # Handed to Erin on the first instance: Eli's list drops it, Erin's gains it.
        moved = stack.enter_context(log_in(first, "dana").client(first)).post(
            f"/api/v1/tasks/{task['id']}/reassign",
            json={"engineer_id": world.engineers["erin"], "reason": "Eli is ill"},
        )
        assert moved.status_code == 200, moved.text
        eli.wait_for(lambda e: e.event == "task" and e.data["removed"] is True)
        gained = erin.wait_for(lambda e: e.event == "task" and e.data["removed"] is False)
        assert gained.data["id"] == task["id"]
        assert gained.data["engineer_name"] == "Erin"
        for reader in (eli, erin, board):
            reader.join()
        # Erin never saw anything while the task was Eli's.
        before = [e for e in erin.events if e.event == "task" and e.received < gained.received]
        assert before == []
        # A page that reconnects says what it saw last, and gets what it missed.
        assert arrived.id is not None
        again = EventReader(log_in(second, "eli"), second, "/my/stream", last_event_id=arrived.id)
        missed = again.wait_for(lambda e: e.event == "task", timeout=2)
        assert missed.data["id"] == task["id"]
        assert missed.data["removed"] is True
        assert int(missed.id or 0) > int(arrived.id)
        again.join()
