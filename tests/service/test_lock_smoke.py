from __future__ import annotations

import pytest
from sqlmodel import Session

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.services import locks
from lockctl import Outcome
from tests.service.dispatch_world import World
from tests.service.lock_world import issue, lock_settings, on_site, provision, simulated, user
from tests.support import FakeClock


@pytest.fixture
def settings() -> Settings:
    return lock_settings()


def test_smoke(session: Session, world: World, context: AppContext, clock: FakeClock) -> None:
    provision(session, context, world)
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    issued = issue(session, context, task)
    assert lock.enter_code(issued.user_number, issued.code) is Outcome.OPENED
    lock.open_door()
    seal = lock.close_door()
    out = locks.report_seal(
        session,
        secrets=context.locks,
        atm_id=task.atm_id,
        task_id=task.id or 0,
        seal=seal,
        user=user(session, "eli"),
        now=clock(),
    )
    assert out.matched and out.sequence == 1
