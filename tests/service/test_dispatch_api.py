"""The dispatch REST API: tasks, engineer actions, counts, engineers, KPIs, signal injection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from atm_service.context import AppContext
from atm_service.models.users import Role
from atm_service.services import tasks
from atm_service.services.users import find_user
from tests.service.dispatch_world import World, cash_units, fault
from tests.support import Api, FakeClock, add_user, login


def as_user(app: FastAPI, username: str) -> Api:
    """A logged-in client of its own, so several users can act in one test."""
    return login(TestClient(app), username)


@pytest.fixture
def dana(app: FastAPI, context: AppContext, world: World) -> Api:
    add_user(context, Role.DISPATCHER, "dana")
    return as_user(app, "dana")


def inject(api: Api, world: World, terminal: str, event: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/api/v1/atms/{world.atms[terminal]}/device-events", json=event)
    assert response.status_code == 200, response.text
    [task] = response.json()["tasks"]
    return dict(task)


def step(api: Api, task: dict[str, Any], action: str, **kwargs: Any) -> Any:
    return api.post(f"/api/v1/tasks/{task['id']}/{action}", **kwargs)


def test_engineers_see_and_touch_only_their_own_tasks(
    app: FastAPI, dana: Api, world: World
) -> None:
    mine = inject(dana, world, "T1000001", fault())
    theirs = inject(dana, world, "T1000003", fault(description="module failure", code=""))
    assert mine["engineer_name"] == "Eli"
    assert theirs["engineer_name"] == "Erin"
    eli = as_user(app, "eli")
    listed = eli.get("/api/v1/tasks").json()
    assert [t["id"] for t in listed["items"]] == [mine["id"]]
    # Asking for someone else's list still shows only mine.
    sneaky = eli.get("/api/v1/tasks", params={"engineer_id": world.engineers["erin"]}).json()
    assert [t["id"] for t in sneaky["items"]] == [mine["id"]]
    assert eli.get(f"/api/v1/tasks/{theirs['id']}").status_code == 404
    for action in ("accept", "depart", "arrive"):
        response = step(eli, theirs, action)
        assert response.status_code == 404, action
        assert response.headers["content-type"] == "application/problem+json"
    assert step(eli, theirs, "decline", json={"reason": "not mine"}).status_code == 404
    assert (
        eli.put(
            f"/api/v1/tasks/{theirs['id']}/counts",
            json={"units": [{"unit_kind": "cassette", "unit_number": 1, "removed": 1}]},
        ).status_code
        == 404
    )
    # The dispatcher sees both, and filters.
    everything = dana.get("/api/v1/tasks", params={"open": True}).json()
    assert {t["id"] for t in everything["items"]} == {mine["id"], theirs["id"]}
    south = dana.get("/api/v1/tasks", params={"region": "South"}).json()
    assert [t["id"] for t in south["items"]] == [theirs["id"]]


def test_an_engineer_works_a_task_and_retries_change_nothing(
    app: FastAPI, dana: Api, world: World, clock: FakeClock
) -> None:
    task = inject(dana, world, "T1000001", fault())
    eli = as_user(app, "eli")
    key = {"Idempotency-Key": "tap-1"}
    first = step(eli, task, "accept", headers=key)
    assert first.status_code == 200, first.text
    again = step(eli, task, "accept", headers=key)
    assert again.status_code == 200
    assert again.json()["version"] == first.json()["version"]
    # A new tap of accept (another key) is an illegal transition, explained.
    illegal = step(eli, task, "accept", headers={"Idempotency-Key": "tap-2"})
    assert illegal.status_code == 409
    assert illegal.json()["type"] == "/problems/illegal-transition"
    assert (
        "task is accepted" in illegal.json()["detail"] or "is accepted" in illegal.json()["detail"]
    )
    # A key already used for another action is refused.
    reused = step(eli, task, "depart", headers=key)
    assert reused.status_code == 409
    assert "idempotency key" in reused.json()["detail"]
    clock.advance(minutes=10)
    assert step(eli, task, "depart").status_code == 200
    stale = step(eli, task, "arrive", json={"version": first.json()["version"]})
    assert stale.status_code == 409
    assert "changed since" in stale.json()["detail"]
    clock.advance(minutes=20)
    arrived = step(eli, task, "arrive", json={"version": first.json()["version"] + 1})
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["state"] == "on_site"
    assert arrived.json()["due_label"] == "restore by"
    bad = step(eli, task, "resolve", json={"resolution_code": "device_recovered"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "resolution_code"
    done = step(eli, task, "resolve", json={"resolution_code": "cleared_jam", "notes": "belt"})
    assert done.status_code == 200
    assert done.json()["state"] == "resolved"
    assert done.json()["risk"] == "met"
    assert step(eli, task, "close", json={}).status_code == 403
    closed = step(dana, task, "close", json={"notes": "ok"})
    assert closed.json()["state"] == "closed"
    detail = dana.get(f"/api/v1/tasks/{task['id']}").json()
    actions = [(e["action"], e["actor"]) for e in detail["events"]]
    assert actions == [
        ("opened", "rules"),
        ("assign", "dispatch"),
        ("accept", "eli"),
        ("depart", "eli"),
        ("arrive", "eli"),
        ("resolve", "eli"),
        ("close", "dana"),
    ]
    assert all(e["at"] for e in detail["events"])


def test_replenishment_needs_counts_and_validates_them(
    app: FastAPI, dana: Api, world: World, session: Session, clock: FakeClock
) -> None:
    response = dana.post(
        f"/api/v1/atms/{world.atms['T1000001']}/cash-units", json=cash_units(3, 4, 0, 0)
    )
    [task] = response.json()["tasks"]
    assert task["kind"] == "replenishment"
    eli = as_user(app, "eli")
    url = f"/api/v1/tasks/{task['id']}/counts"
    one = {"unit_kind": "cassette", "unit_number": 1, "removed": 180, "loaded": 2500}
    # Counts are entered on site.
    assert eli.put(url, json={"units": [one]}).status_code == 409
    for action in ("accept", "depart", "arrive"):
        assert step(eli, task, action).status_code == 200
    missing = step(eli, task, "resolve", json={"resolution_code": "replenished"})
    assert missing.status_code == 409
    assert "cassette 1" in missing.json()["detail"]
    assert "retract bin" in missing.json()["detail"]
    for units, field in (
        ([{**one, "unit_number": 7}], "units.0.unit_number"),
        ([one, one], "units.1.unit_number"),
        (
            [{"unit_kind": "reject_bin", "unit_number": 0, "removed": 3, "loaded": 5}],
            "units.0.loaded",
        ),
        ([{**one, "loaded": 4000}], "units.0.loaded"),
        ([{**one, "removed": -1}], "units.0.removed"),
    ):
        bad = eli.put(url, json={"units": units})
        assert bad.status_code == 422, (units, bad.text)
        assert bad.json()["errors"][0]["field"] == field
    units = [
        {"unit_kind": "cassette", "unit_number": n, "removed": 100 * n, "loaded": 2000}
        for n in (1, 2, 3, 4)
    ] + [
        {"unit_kind": "reject_bin", "unit_number": 0, "removed": 12},
        {"unit_kind": "retract_bin", "unit_number": 0, "removed": 2},
    ]
    saved = eli.put(url, json={"units": units})
    assert saved.status_code == 200, saved.text
    assert [(c["unit_kind"], c["unit_number"], c["denomination"]) for c in saved.json()][:2] == [
        ("cassette", 1, 20),
        ("cassette", 2, 20),
    ]
    # The same counts again record nothing new; a correction replaces one.
    assert eli.put(url, json={"units": units}).status_code == 200
    units[0] = {**units[0], "removed": 99}
    assert eli.put(url, json={"units": units}).status_code == 200
    detail = dana.get(f"/api/v1/tasks/{task['id']}").json()
    assert [e["action"] for e in detail["events"]].count("counts") == 2
    assert detail["counts"][0]["removed"] == 99
    done = step(eli, task, "resolve", json={"resolution_code": "replenished"})
    assert done.status_code == 200, done.text
    # Settlement finds the counts by ATM and time.
    now = clock()
    found = tasks.replenishments(
        session,
        atm_id=world.atms["T1000001"],
        start=now - timedelta(hours=1),
        end=now + timedelta(seconds=1),
    )
    assert [(t.id, len(counts)) for t, counts in found] == [(task["id"], 6)]
    assert found[0][1][0].removed == 99


def test_needs_parts_opens_a_second_line_follow_up(
    app: FastAPI, dana: Api, world: World, clock: FakeClock
) -> None:
    task = inject(dana, world, "T1000001", fault())
    eli = as_user(app, "eli")
    for action in ("accept", "depart", "arrive"):
        assert step(eli, task, action).status_code == 200
    clock.advance(minutes=30)
    response = step(eli, task, "needs-parts", json={"parts": "presenter belt", "notes": "torn"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"]["state"] == "needs_parts"
    follow = body["follow_up"]
    assert follow["kind"] == "slm"
    assert follow["parent_id"] == task["id"]
    assert follow["opened_at"] == task["opened_at"]
    assert follow["restore_due"] >= follow["response_due"]
    assert follow["engineer_name"] == "Erin"
    assert follow["title"] == "Fit parts: presenter belt"
    # The first visit is over: Eli has nothing open.
    assert eli.get("/api/v1/tasks", params={"open": True}).json()["items"] == []


def test_dispatchers_open_assign_reassign_cancel(dana: Api, world: World) -> None:
    created = dana.post(
        "/api/v1/tasks",
        json={"atm_id": world.atms["T1000002"], "kind": "flm", "title": "Customer: no receipt"},
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["source"] == "dispatcher"
    assert task["engineer_name"] == "Eli"
    duplicate = dana.post(
        "/api/v1/tasks", json={"atm_id": world.atms["T1000002"], "kind": "flm", "title": "again"}
    )
    assert duplicate.status_code == 409
    assert f"#{task['id']}" in duplicate.json()["detail"]
    nowhere = dana.post("/api/v1/tasks", json={"atm_id": 999, "kind": "flm", "title": "x" * 5})
    assert nowhere.status_code == 422
    assert step(dana, task, "reassign", json={"reason": ""}).status_code == 422
    moved = step(
        dana, task, "reassign", json={"engineer_id": world.engineers["erin"], "reason": "closer"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["engineer_name"] == "Erin"
    cancelled = step(dana, task, "cancel", json={"reason": "customer fixed it"})
    assert cancelled.json()["state"] == "cancelled"
    again = step(dana, task, "cancel", json={"reason": "customer fixed it"})
    assert again.status_code == 409
    assert "is cancelled" in again.json()["detail"]


def test_engineer_profiles(
    app: FastAPI, dana: Api, context: AppContext, world: World, session: Session
) -> None:
    listed = dana.get("/api/v1/engineers").json()
    assert [e["username"] for e in listed["items"]] == ["eli", "erin", "sam"]
    assert {e["open_tasks"] for e in listed["items"]} == {0}
    north = dana.get("/api/v1/engineers", params={"region": "North"}).json()
    assert north["total"] == 2
    add_user(context, Role.ENGINEER, "nora")
    add_user(context, Role.AUDITOR, "avery")
    nora_user = find_user(session, username="nora")
    avery_user = find_user(session, username="avery")
    assert nora_user is not None
    assert avery_user is not None
    nora_id, avery_id = nora_user.id, avery_user.id
    profile = {
        "skills": ["slm", "flm"],
        "home_region": "North",
        "latitude": 40.7,
        "longitude": -74.0,
        "shift_start": "22:00",
        "shift_end": "06:00",
        "timezone": "America/New_York",
    }
    created = dana.post("/api/v1/engineers", json={**profile, "user_id": nora_id})
    assert created.status_code == 201, created.text
    assert created.json()["skills"] == "flm,slm"
    assert created.json()["username"] == "nora"
    assert dana.post("/api/v1/engineers", json={**profile, "user_id": nora_id}).status_code == 409
    auditor = dana.post("/api/v1/engineers", json={**profile, "user_id": avery_id})
    assert auditor.status_code == 422
    assert "auditor" in auditor.json()["detail"]
    bad = dana.post("/api/v1/engineers", json={**profile, "user_id": nora_id, "skills": "cooking"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "skills"
    engineer_id = created.json()["id"]
    same = dana.patch(f"/api/v1/engineers/{engineer_id}", json={"shift_end": "22:00"})
    assert same.status_code == 422
    moved = dana.patch(f"/api/v1/engineers/{engineer_id}", json={"home_region": "South"})
    assert moved.json()["home_region"] == "South"
    nora = as_user(app, "nora")
    assert nora.get("/api/v1/engineers").status_code == 403
    me = nora.get("/api/v1/engineers/me")
    assert me.json()["username"] == "nora"
    located = nora.put("/api/v1/engineers/me/location", json={"latitude": 41, "longitude": -73.5})
    assert located.status_code == 200
    assert located.json()["latitude"] == 41


def test_kpis(app: FastAPI, dana: Api, context: AppContext, world: World, clock: FakeClock) -> None:
    start = clock.now
    task = inject(dana, world, "T1000001", fault(time="2026-11-16T03:00:00"))  # now
    eli = as_user(app, "eli")
    step(eli, task, "accept")
    step(eli, task, "depart")
    clock.advance(minutes=30)
    step(eli, task, "arrive")
    clock.advance(minutes=30)
    step(eli, task, "resolve", json={"resolution_code": "cleared_jam"})
    dana.post(
        f"/api/v1/atms/{world.atms['T1000001']}/device-events",
        json={"kind": "hardware_recovered", "time": "2026-11-16T04:00:00", "device": "dispenser"},
    )
    second = inject(dana, world, "T1000002", fault(time="2026-11-16T04:00:00"))
    clock.advance(minutes=10)
    for action in ("accept", "depart", "arrive"):
        step(eli, second, action)
    step(eli, second, "needs-parts", json={"parts": "belt"})
    clock.advance(minutes=50)
    figures = dana.get(
        "/api/v1/kpis",
        params={"start": (start - timedelta(hours=1)).isoformat(), "end": clock.now.isoformat()},
    ).json()
    assert figures["responded"] == 2
    assert figures["mean_time_to_respond_minutes"] == 20.0  # 30 and 10 minutes
    assert figures["restored"] == 1
    assert figures["mean_time_to_restore_minutes"] == 60.0
    assert figures["first_visits"] == 2
    assert figures["first_time_fix_rate_pct"] == 50.0
    assert figures["response_sla_pct"] == 100.0
    atms = {a["terminal_id"]: a for a in figures["atms"]}
    # T1000001 was down one hour of the two since it was registered; T1000002 is still down.
    assert atms["T1000001"]["down_hours"] == 1.0
    assert atms["T1000001"]["service_hours"] == 2.0
    assert atms["T1000001"]["availability_pct"] == 50.0
    assert atms["T1000002"]["down_hours"] == 1.0
    assert atms["T1000003"]["service_hours"] == 0.0  # business hours: not yet open
    assert atms["T1000003"]["availability_pct"] is None
    assert figures["open_tasks"] == 1  # the follow-up
    add_user(context, Role.AUDITOR, "avery")
    assert as_user(app, "avery").get("/api/v1/kpis").status_code == 200
    assert as_user(app, "eli").get("/api/v1/kpis").status_code == 403
    naive = dana.get("/api/v1/kpis", params={"start": "2026-11-01T00:00:00"})
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "start"
    backwards = dana.get(
        "/api/v1/kpis", params={"start": "2026-11-20T00:00:00Z", "end": "2026-11-01T00:00:00Z"}
    )
    assert backwards.status_code == 422


def test_signal_injection_is_for_dispatchers_and_validated(
    app: FastAPI, dana: Api, world: World
) -> None:
    atm = world.atms["T1000001"]
    bad = dana.post(f"/api/v1/atms/{atm}/device-events", json={**fault(), "severity": "mild"})
    assert bad.status_code == 422
    assert any("severity" in e["field"] for e in bad.json()["errors"])
    unknown = dana.post(f"/api/v1/atms/{atm}/device-events", json={"kind": "teleport"})
    assert unknown.status_code == 422
    assert dana.post("/api/v1/atms/999999/device-events", json=fault()).status_code == 404
    status = dana.post(
        f"/api/v1/atms/{atm}/device-status",
        json={"time": "2026-11-16T02:00:00", "in_service": True, "devices": {"dispenser": "fault"}},
    )
    assert status.status_code == 200, status.text
    assert status.json()["tasks"][0]["kind"] == "flm"
    eli = as_user(app, "eli")
    assert eli.post(f"/api/v1/atms/{atm}/device-events", json=fault()).status_code == 403
