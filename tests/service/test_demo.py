"""The demo seed: engineers with profiles and a few faults, through the real rules, once."""

from __future__ import annotations

from sqlmodel import Session, select

from atm_service.demo import seed
from atm_service.models.cash_planning import CashDemandDay, PlanRequest
from atm_service.models.engineers import Engineer
from atm_service.models.tasks import Task, TaskKind, TaskState
from atm_service.security.passwords import Passwords
from atm_service.services import cash_planning
from tests.support import FakeClock, make_settings


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


def test_the_demo_has_cash_history_to_plan_from(
    session: Session, passwords: Passwords, clock: FakeClock
) -> None:
    seed(session, passwords=passwords, now=clock())
    plan = cash_planning.make_plan(
        session,
        request=PlanRequest(),
        by=None,
        now=clock(),
        settings=make_settings(cash_routing_seconds=0.2, cash_paths=100),
    )
    assert plan.totals["atms"] == 6
    assert plan.totals["planned"] == 6
    assert plan.totals["visits"] > 0
    rows = len(session.exec(select(CashDemandDay)).all())
    seed(session, passwords=passwords, now=clock())
    assert len(session.exec(select(CashDemandDay)).all()) == rows
