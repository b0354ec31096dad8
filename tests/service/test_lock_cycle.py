"""The lock cycle against the simulated lock: code, keypad, relock, seal, the next code chained
to it; duress raises a silent alarm; wrong seals block until a resync; the sweep raises
"seal overdue"; force-close says how long the abandoned code still opens."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.models.locks import AlarmKind, LockAlarm
from atm_service.models.users import Role
from atm_service.services import lock_sweep
from atm_service.services.users import find_user
from lockctl import Outcome
from lockctl import codes as otc
from tests.service.dispatch_world import World
from tests.service.lock_world import lock_settings, on_site, provision, simulated
from tests.support import Api, FakeClock, add_user, login


@pytest.fixture
def settings() -> Settings:
    return lock_settings()


def as_user(app: FastAPI, name: str) -> Api:
    return login(TestClient(app), name)


def code_for(api: Api, atm_id: int, task_id: int) -> str:
    response = api.post(f"/api/v1/atms/{atm_id}/lock/codes", json={"task_id": task_id})
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def seal(api: Api, atm_id: int, task_id: int, digits: str) -> object:
    return api.post(f"/api/v1/atms/{atm_id}/lock/seal", json={"task_id": task_id, "seal": digits})


def dispatcher(app: FastAPI) -> Api:
    with app.state.context.database.session() as session:
        missing = find_user(session, username="dana") is None
    if missing:
        add_user(app.state.context, Role.DISPATCHER, "dana")
    return as_user(app, "dana")


def alarms(app: FastAPI, kind: AlarmKind | None = None) -> list[dict[str, object]]:
    found: list[dict[str, object]] = dispatcher(app).get("/api/v1/lock-alarms").json()["items"]
    return [a for a in found if kind is None or a["kind"] == kind.value]


def test_full_cycle_code_opens_seal_closes_and_the_next_code_chains(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    eli = as_user(app, "eli")
    user = world.users["eli"]
    first = code_for(eli, task.atm_id, task.id)
    clock.advance(minutes=2)
    assert lock.enter_code(user, first) is Outcome.OPENED
    lock.open_door()
    clock.advance(minutes=10)
    shown = lock.close_door()
    assert lock.display == f"SEAL {shown[:4]}-{shown[4:]}"
    done = seal(eli, task.atm_id, task.id, f"{shown[:4]}-{shown[4:]}")
    assert done.status_code == 200, done.text
    assert done.json() == {
        "matched": True,
        "lock_id": "CX-1000001",
        "sequence": 1,
        "purpose": "opening",
    }
    state = as_user(app, "eli").get(f"/my/tasks/{task.id}/lock?sealed=1")
    assert "Seal accepted" in state.text
    # The next code is chained to that seal: it opens, and the first code is dead.
    clock.advance(minutes=5)
    second = code_for(eli, task.atm_id, task.id)
    assert second != first
    assert lock.enter_code(user, first) in (Outcome.WRONG_CODE, Outcome.USED_CODE)
    assert lock.enter_code(user, second) is Outcome.OPENED
    again = lock.relock()
    assert seal(eli, task.atm_id, task.id, again).json()["sequence"] == 2
    resolved = eli.post(f"/api/v1/tasks/{task.id}/resolve", json={"resolution_code": "cleared_jam"})
    assert resolved.status_code == 200, resolved.text


def test_duress_raises_a_silent_alarm_for_dispatchers_only(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    eli = as_user(app, "eli")
    code = code_for(eli, task.atm_id, task.id)
    assert lock.enter_code(world.users["eli"], otc.duress_code(code)) is Outcome.OPENED
    assert lock.alarm
    assert "DURESS" not in lock.display
    answer = seal(eli, task.atm_id, task.id, lock.relock())
    assert answer.status_code == 200
    assert answer.json() == {
        "matched": True,
        "lock_id": "CX-1000001",
        "sequence": 1,
        "purpose": "opening",
    }
    page = eli.get(f"/my/tasks/{task.id}/lock?sealed=1").text
    assert "duress" not in page.lower()
    assert "alarm" not in page.lower()
    raised = alarms(app, AlarmKind.DURESS)
    assert len(raised) == 1
    assert raised[0]["severity"] == "critical"
    assert raised[0]["task_id"] == task.id
    board = as_user(app, "dana").get("/board").text
    assert "Duress at ATM T1000001" in board


def test_wrong_seals_count_then_block_until_a_resync(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    eli = as_user(app, "eli")
    code = code_for(eli, task.atm_id, task.id)
    assert lock.enter_code(world.users["eli"], code) is Outcome.OPENED
    real = lock.relock()
    wrong = f"{(int(real) + 1) % 10**8:08d}"
    first = seal(eli, task.atm_id, task.id, wrong)
    assert first.status_code == 422
    assert first.json()["remaining_attempts"] == 2
    assert first.json()["errors"][0]["field"] == "seal"
    assert seal(eli, task.atm_id, task.id, "12 34").status_code == 422  # not 8 digits
    assert seal(eli, task.atm_id, task.id, wrong).json()["remaining_attempts"] == 1
    blocked = seal(eli, task.atm_id, task.id, wrong)
    assert blocked.status_code == 409
    assert "blocked" in blocked.json()["detail"]
    assert seal(eli, task.atm_id, task.id, real).status_code == 409  # only a resync helps now
    assert {a["kind"] for a in alarms(app)} == {"seal_mismatch", "lockout"}
    dana = dispatcher(app)
    resync = dana.post(
        f"/api/v1/atms/{task.atm_id}/lock/resync",
        json={"task_id": task.id, "reason": "seal typed wrong three times"},
    )
    assert resync.status_code == 201, resync.text
    clock.advance(hours=1)  # a resync is for a window after the lock's last one
    shown = eli.post(f"/api/v1/atms/{task.atm_id}/lock/codes/reveal", json={"task_id": task.id})
    assert shown.status_code == 200, shown.text
    assert shown.json()["purpose"] == "resync"
    # The resync was issued in the earlier window; the lock still accepts it (lookback).
    assert lock.enter_code(world.users["eli"], shown.json()["code"]) is Outcome.RESYNCED
    assert lock.last_seal is not None
    confirmed = seal(eli, task.atm_id, task.id, lock.last_seal)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["purpose"] == "resync"
    fresh = code_for(eli, task.atm_id, task.id)
    assert lock.enter_code(world.users["eli"], fresh) is Outcome.OPENED


def test_a_seal_not_reported_in_time_raises_an_alarm_once(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    task = on_site(session, world, clock)
    code_for(as_user(app, "eli"), task.atm_id, task.id)  # valid until 10:00, seal due 10:35
    assert lock_sweep.run(context.database.session, secrets=context.locks, now=clock()) == 0
    clock.advance(hours=2, minutes=36)
    assert lock_sweep.run(context.database.session, secrets=context.locks, now=clock()) == 1
    assert lock_sweep.run(context.database.session, secrets=context.locks, now=clock()) == 0
    raised = alarms(app, AlarmKind.SEAL_OVERDUE)
    assert len(raised) == 1
    assert "was due by 2026-11-16 10:35 UTC" in str(raised[0]["message"])
    dana = dispatcher(app)
    assert "Seal overdue" in dana.get("/board").text
    # Acknowledged with a note, through the alarms page.
    page = dana.get("/locks/alarms")
    assert "Seal overdue" in page.text
    csrf = dana.csrf_token
    ack = dana.client.post(
        f"/locks/alarms/{raised[0]['id']}/acknowledge",
        data={"csrf_token": csrf, "note": "Called Eli: he forgot, seal now reported."},
        follow_redirects=False,
    )
    assert ack.status_code == 303
    stored = session.exec(select(LockAlarm)).all()
    session.expire_all()
    row = session.get(LockAlarm, stored[0].id)
    assert row is not None
    assert row.state.value == "acknowledged"
    assert row.acknowledged_by == "dana"
    again = dana.post(f"/api/v1/lock-alarms/{row.id}/acknowledge", json={"note": "twice"})
    assert again.status_code == 409


def test_force_close_abandons_the_code_and_says_until_when_it_still_opens(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    eli = as_user(app, "eli")
    code = code_for(eli, task.atm_id, task.id)
    dana = dispatcher(app)
    short = dana.post(f"/api/v1/atms/{task.atm_id}/lock/force-close", json={"reason": "x"})
    assert short.status_code == 422
    closed = dana.post(
        f"/api/v1/atms/{task.atm_id}/lock/force-close",
        json={"reason": "engineer called away before opening"},
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["usable_until"] == "2026-11-16T10:05:00Z"  # window + lookback + skew
    assert closed.json()["abandoned_users"] == [world.users["eli"]]
    assert lock.would_accept(world.users["eli"], code)  # the lock cannot be told
    assert (
        dana.post(
            f"/api/v1/atms/{task.atm_id}/lock/force-close", json={"reason": "again please"}
        ).status_code
        == 409
    )
    # A new code is chained to the same (last confirmed) seal.
    clock.advance(minutes=1)
    assert code_for(eli, task.atm_id, task.id) is not None
