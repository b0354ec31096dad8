"""The lock pages without JavaScript: the engineer's card, dual control between two phones,
the dispatcher's lock page and its forms, and the board's alarm box."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.live import Update, event_name
from atm_service.models.users import Role
from lockctl import Outcome
from tests.service.dispatch_world import World
from tests.service.lock_world import lock_settings, on_site, provision, simulated
from tests.support import FakeClock, add_user, login


@pytest.fixture
def settings() -> Settings:
    return lock_settings()


def browser(app: FastAPI, name: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    return client, login(client, name).csrf_token


def code_on(page: str) -> str:
    match = re.search(r'<p class="otc" id="otc"[^>]*>(.*?)</p>', page, re.S)
    assert match, "no code on the page"
    return re.sub(r"<[^>]+>", "", match.group(1))


def test_dual_control_between_two_phones(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    lock_row = provision(session, context, world, dual=True)
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    add_user(context, Role.DISPATCHER, "dana")
    dana, dana_csrf = browser(app, "dana")
    added = dana.post(
        f"/locks/{lock_row.id}/custodian",
        data={"csrf_token": dana_csrf, "task_id": task.id, "engineer_id": world.engineers["erin"]},
    )
    assert "Second person added" in added.text
    eli, eli_csrf = browser(app, "eli")
    erin, erin_csrf = browser(app, "erin")
    detail = eli.get(f"/my/tasks/{task.id}").text
    assert "dual control: two people, two codes" in detail
    waiting = eli.post(f"/my/tasks/{task.id}/lock/code", data={"csrf_token": eli_csrf})
    assert "Waiting for the second person" in waiting.text
    assert f"/my/tasks/{task.id}/lock" in erin.get("/my").text  # listed as second person
    assert "The other person has asked" in erin.get(f"/my/tasks/{task.id}/lock").text
    erin_code = code_on(
        erin.post(f"/my/tasks/{task.id}/lock/code", data={"csrf_token": erin_csrf}).text
    )
    assert "Your code of the pair is ready" in eli.get(f"/my/tasks/{task.id}/lock").text
    eli_code = code_on(
        eli.post(f"/my/tasks/{task.id}/lock/reveal", data={"csrf_token": eli_csrf}).text
    )
    again = eli.post(f"/my/tasks/{task.id}/lock/reveal", data={"csrf_token": eli_csrf})
    assert again.status_code == 409
    assert "already shown once" in again.text
    assert lock.enter_code(world.users["erin"], erin_code) is Outcome.FIRST_CODE
    assert lock.enter_code(world.users["eli"], eli_code) is Outcome.OPENED
    sealed = eli.post(
        f"/my/tasks/{task.id}/lock/seal",
        data={"csrf_token": eli_csrf, "seal": lock.relock()},
    )
    assert "Seal accepted" in sealed.text
    wrong = eli.post(
        f"/my/tasks/{task.id}/lock/seal", data={"csrf_token": eli_csrf, "seal": "12345678"}
    )
    assert wrong.status_code == 409
    assert "no seal is due" in wrong.text


def test_the_dispatchers_lock_page_force_closes_and_the_board_shows_alarms(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    lock_row = provision(session, context, world)
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    eli, eli_csrf = browser(app, "eli")
    code_on(eli.post(f"/my/tasks/{task.id}/lock/code", data={"csrf_token": eli_csrf}).text)
    add_user(context, Role.DISPATCHER, "dana")
    dana, csrf = browser(app, "dana")
    listing = dana.get("/locks").text
    assert "CX-1000001" in listing
    assert "outstanding" in listing
    page = dana.get(f"/locks/{lock_row.id}").text
    assert "Force-close the open code" in page
    assert "Provisioning record" not in page
    short = dana.post(f"/locks/{lock_row.id}/force-close", data={"csrf_token": csrf, "reason": "x"})
    assert short.status_code == 422
    assert "Say why" in short.text
    closed = dana.post(
        f"/locks/{lock_row.id}/force-close",
        data={"csrf_token": csrf, "reason": "safe not opened"},
    )
    assert "still opens it until Mon 16 Nov 05:05" in closed.text  # 10:05 UTC in New York
    # A trail upload through the form; the lock saw five wrong codes.
    for _ in range(5):
        lock.enter_code(999, "00000000")
    uploaded = dana.post(
        f"/locks/{lock_row.id}/trail",
        data={"csrf_token": csrf},
        files={"trail": ("trail.jsonl", lock.trail_jsonl().encode(), "application/json")},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert "Imported 6 new record(s) of 6" in uploaded.text
    board = dana.get("/board").text
    assert 'id="lock-alarms"' in board
    assert "Lockout" in board
    alarms = dana.get("/locks/alarms").text
    assert "Lockout" in alarms
    assert "Acknowledge" in alarms
    eli_page = eli.get(f"/my/tasks/{task.id}").text
    assert "Lockout" not in eli_page
    assert "lock-alarms" not in eli_page
    add_user(context, Role.AUDITOR, "avery")
    avery, _ = browser(app, "avery")
    assert "Acknowledge" not in avery.get("/locks/alarms").text  # read-only
    admin, admin_csrf = browser(app, "ada")
    record = admin.post(
        f"/locks/{lock_row.id}/provisioning-record",
        data={"csrf_token": admin_csrf, "reason": "replace the lock simulator"},
    )
    assert record.status_code == 200
    assert record.json()["lock"] == "CX-1000001"


def test_live_updates_name_alarm_events() -> None:
    assert event_name(Update(id=1, task_id=None, payload={"event": "alarm", "id": 3})) == "alarm"
    assert event_name(Update(id=2, task_id=4, payload={"id": 4, "state": "new"})) == "task"
    assert event_name(Update(id=3, task_id=None, payload={"event": "x\nevil"})) == "task"
