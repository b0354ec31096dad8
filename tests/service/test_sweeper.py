"""The sweep runs by itself on each instance, and stops with it."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from sqlmodel import col, select

from atm_service.models.tasks import TaskEvent
from atm_service.security.passwords import Passwords
from atm_service.services.dispatch_rules import on_device_event
from atm_service.sweeper import Sweeper
from tests.service.dispatch_world import build, fault
from tests.service.live_servers import shared_database
from tests.support import FakeClock


def test_the_sweeper_escalates_on_its_own(tmp_path: Path, clock: FakeClock) -> None:
    with shared_database("sqlite", tmp_path) as shared:
        database = shared.database()
        with database.session() as session:
            world = build(
                session,
                passwords=Passwords(time_cost=1, memory_kib=1024, parallelism=1),
                now=clock(),
            )
            # Albany is hours away from everyone: the response deadline is at risk at once.
            task = on_device_event(
                session, atm_id=world.atms["T1000004"], event=fault(), now=clock()
            )
            assert task is not None
        clock.advance(minutes=1)
        sweeper = Sweeper(database, clock=clock, interval=0.05, speed_kmh=40)
        sweeper.start()
        assert sweeper.running
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with database.session() as session:
                    escalated = session.exec(
                        select(TaskEvent).where(col(TaskEvent.action) == "escalated")
                    ).all()
                if escalated:
                    break
                time.sleep(0.05)
        finally:
            sweeper.stop()
        assert [event.task_id for event in escalated] == [task.id]
        assert not sweeper.running
        assert clock.now - task.opened_at < timedelta(hours=1)
