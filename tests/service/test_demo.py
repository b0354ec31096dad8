"""The demo seed: engineers with profiles and a few faults, through the real rules, once."""

from __future__ import annotations

from sqlmodel import Session, select

from atm_service.demo import seed
from atm_service.models.engineers import Engineer
from atm_service.models.tasks import Task, TaskKind, TaskState
from atm_service.security.passwords import Passwords
from tests.support import FakeClock


def test_the_demo_has_engineers_and_dispatched_faults(
    session: Session, passwords: Passwords, clock: FakeClock
) -> None:
    logins = seed(session, passwords=passwords, now=clock())
    assert {login.username for login in logins} >= {"engineer", "engineer2", "dispatch"}
    engineers = session.exec(select(Engineer)).all()
    assert {e.home_region for e in engineers} == {"North", "South"}
    assert {e.skills for e in engineers} == {"cash,flm", "cash,flm,slm"}
    found = session.exec(select(Task)).all()
    assert sorted(t.kind for t in found) == [TaskKind.FLM, TaskKind.REPLENISHMENT, TaskKind.SLM]
    # Eli covers the North around the clock, so his tasks are assigned whatever the hour.
    north = [t for t in found if t.kind is not TaskKind.SLM]
    assert all(t.state is TaskState.ASSIGNED for t in north)
    # Seeding again adds nothing.
    seed(session, passwords=passwords, now=clock())
    assert len(session.exec(select(Task)).all()) == 3
    assert len(session.exec(select(Engineer)).all()) == 2
