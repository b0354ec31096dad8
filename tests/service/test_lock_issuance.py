"""The issuance rules through the API: each refusal is a clear 403, 409 or 422 problem, each
issuance is in the lock-access log (never the code), and a code is shown once."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from atm_service.app import create_app
from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.db import Database
from atm_service.models.locks import LockLogEntry
from atm_service.models.tasks import TaskKind
from atm_service.models.users import Role
from lockctl import Outcome
from tests.service.dispatch_world import World
from tests.service.lock_world import lock_settings, on_site, provision, simulated
from tests.support import Api, FakeClock, add_user, login, make_settings


@pytest.fixture
def settings() -> Settings:
    return lock_settings()


def as_user(app: FastAPI, name: str) -> Api:
    return login(TestClient(app), name)


def ask(api: Api, atm_id: int, task_id: int, **body: object) -> object:
    return api.post(f"/api/v1/atms/{atm_id}/lock/codes", json={"task_id": task_id, **body})


def problem(response: object, status: int, fragment: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert fragment in str(body["detail"]), body
    return body


def log_lines(session: Session) -> list[dict[str, object]]:
    rows = session.exec(select(LockLogEntry.line).order_by(col(LockLogEntry.position)))
    return [json.loads(line) for line in rows]


def test_the_engineer_on_site_gets_a_code_once_and_it_is_audited_without_the_code(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    eli = as_user(app, "eli")
    response = ask(eli, task.atm_id, task.id)
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["status"] == "issued"
    assert out["operation"] == "flm"
    assert out["user_number"] == world.users["eli"]
    assert len(out["code"]) == 8
    assert out["code"].isdigit()
    assert out["valid_until"] == "2026-11-16T10:00:00Z"
    assert lock.would_accept(out["user_number"], out["code"])
    issued = [e for e in log_lines(session) if e["kind"] == "code-issued"]
    assert len(issued) == 1
    entry = issued[0]
    assert entry["by"] == "eli"
    assert entry["task"] == task.id
    assert entry["atm"] == "T1000001"
    assert entry["user"] == world.users["eli"]
    assert entry["operation"] == "flm"
    assert len(str(entry["code_tag"])) == 32
    for line in session.exec(select(LockLogEntry.line)):
        assert out["code"] not in line
        assert '"code"' not in line
    # Nothing shows it again: no second code while this one is out, and nothing to reveal.
    problem(ask(eli, task.atm_id, task.id), 409, "has a code out since")
    again = eli.post(f"/api/v1/atms/{task.atm_id}/lock/codes/reveal", json={"task_id": task.id})
    problem(again, 409, "already shown once and cannot be shown again")
    lock_page = eli.get(f"/my/tasks/{task.id}/lock")
    assert out["code"] not in lock_page.text
    assert "Report seal" in lock_page.text


def test_not_assigned_is_refused_with_403(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    task = on_site(session, world, clock)
    body = problem(ask(as_user(app, "erin"), task.atm_id, task.id), 403, "not assigned to you")
    assert body["type"] == "/problems/forbidden"


def test_a_task_at_another_atm_is_refused_with_403(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world, "T1000001")
    provision(session, context, world, "T1000002")
    task = on_site(session, world, clock)
    other = world.atms["T1000002"]
    problem(ask(as_user(app, "eli"), other, task.id), 403, "Task")
    response = ask(as_user(app, "eli"), other, task.id)
    assert "is at ATM T1000001" in response.json()["detail"]
    assert "lock of ATM T1000002" in response.json()["detail"]


def test_not_on_site_is_refused_with_409(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    task = on_site(session, world, clock, steps=2)  # accepted and en route, not arrived
    eli = as_user(app, "eli")
    body = problem(ask(eli, task.atm_id, task.id), 409, "Codes are issued on site")
    assert "en route" in str(body["detail"])
    eli.post(f"/api/v1/tasks/{task.id}/arrive")
    assert ask(eli, task.atm_id, task.id).status_code == 201
    # Ending the visit waits for the seal.
    resolved = eli.post(f"/api/v1/tasks/{task.id}/resolve", json={"resolution_code": "cleared_jam"})
    problem(resolved, 409, "Report the safe lock's close seal first")


def test_outside_the_tasks_window_is_refused_with_409(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    task = on_site(session, world, clock)  # arrived 08:00; restore due 11:55
    clock.advance(hours=4, minutes=1)  # past arrival + 240 min
    body = problem(ask(as_user(app, "eli"), task.atm_id, task.id), 409, "access window")
    assert "2026-11-16 08:00 UTC to 2026-11-16 12:00 UTC" in str(body["detail"])


def test_the_wrong_operation_is_refused_with_422(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    task = on_site(session, world, clock)
    eli = as_user(app, "eli")
    body = problem(ask(eli, task.atm_id, task.id, operation="route"), 422, "operation flm")
    assert body["errors"] == [{"location": "body", "field": "operation", "message": body["detail"]}]
    problem(ask(eli, task.atm_id, task.id, operation="vault"), 422, "must be one of")
    assert ask(eli, task.atm_id, task.id, operation="flm").status_code == 201


def test_a_replenishment_opens_for_the_route_operation(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    task = on_site(session, world, clock, kind=TaskKind.REPLENISHMENT)
    response = ask(as_user(app, "eli"), task.atm_id, task.id)
    assert response.status_code == 201, response.text
    assert response.json()["operation"] == "route"


def test_dual_control_needs_a_second_persons_own_request(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world, dual=True)
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    eli, erin = as_user(app, "eli"), as_user(app, "erin")
    first = ask(eli, task.atm_id, task.id)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "waiting"
    assert first.json()["code"] is None
    problem(ask(eli, task.atm_id, task.id), 409, "requested by another person")
    problem(ask(erin, task.atm_id, task.id), 403, "not assigned to you")  # not added yet
    add_user(context, Role.DISPATCHER, "dana")
    dana = as_user(app, "dana")
    added = dana.post(
        f"/api/v1/tasks/{task.id}/custodians", json={"engineer_id": world.engineers["erin"]}
    )
    assert added.status_code == 201, added.text
    clock.advance(seconds=30)
    second = ask(erin, task.atm_id, task.id)
    assert second.status_code == 201, second.text
    erin_code = second.json()["code"]
    assert second.json()["dual_with"] == world.users["eli"]
    reveal = f"/api/v1/atms/{task.atm_id}/lock/codes/reveal"
    mine = eli.post(reveal, json={"task_id": task.id})
    assert mine.status_code == 200, mine.text
    eli_code = mine.json()["code"]
    assert eli_code != erin_code
    problem(eli.post(reveal, json={"task_id": task.id}), 409, "already shown once")
    assert lock.enter_code(world.users["eli"], eli_code) is Outcome.FIRST_CODE
    assert lock.enter_code(world.users["erin"], erin_code) is Outcome.OPENED
    seal = lock.relock()
    done = erin.post(
        f"/api/v1/atms/{task.atm_id}/lock/seal", json={"task_id": task.id, "seal": seal}
    )
    assert done.status_code == 200, done.text
    issued = [e for e in log_lines(session) if e["kind"] == "code-issued"]
    assert sorted((e["user"], e["dual_with"]) for e in issued) == sorted(
        [(world.users["eli"], world.users["erin"]), (world.users["erin"], world.users["eli"])]
    )


def test_a_dual_request_expires_after_the_policys_dual_window(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world, dual=True)
    task = on_site(session, world, clock)
    eli = as_user(app, "eli")
    assert ask(eli, task.atm_id, task.id).status_code == 202
    clock.advance(seconds=121)  # the default dual window is 120 s
    assert ask(eli, task.atm_id, task.id).status_code == 202  # a fresh first request


def test_roles_engineers_cannot_read_the_log_and_auditors_cannot_issue(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    provision(session, context, world)
    task = on_site(session, world, clock)
    add_user(context, Role.AUDITOR, "avery")
    eli, avery = as_user(app, "eli"), as_user(app, "avery")
    for path in ("/api/v1/lock-log", "/api/v1/lock-log/verification"):
        problem(eli.get(path), 403, "The engineer role may not do this")
    assert eli.get("/audit/locks").status_code == 403
    problem(ask(avery, task.atm_id, task.id), 403, "The auditor role may not do this")
    problem(
        avery.post(f"/api/v1/atms/{task.atm_id}/lock/force-close", json={"reason": "testing"}),
        403,
        "auditor",
    )
    assert avery.get("/api/v1/lock-log").status_code == 200
    assert avery.get("/locks").status_code == 200


def test_without_a_master_key_lock_operations_are_refused_with_503(
    session: Session, world: World, database: Database, clock: FakeClock
) -> None:
    app = create_app(make_settings(), database=database, clock=clock)
    context: AppContext = app.state.context
    add_user(context, Role.ADMIN, "root")
    admin = as_user(app, "root")
    response = admin.post(
        f"/api/v1/atms/{world.atms['T1000001']}/lock", json={"lock_id": "CX-0001"}
    )
    body = problem(response, 503, "ATM_LOCK_MASTER_KEY_FILE")
    assert body["type"] == "/problems/not-configured"
    app2 = create_app(
        make_settings(lock_master_key="atm-lock-master-key:v1:bm90LWEta2V5"),
        database=database,
        clock=clock,
    )
    add_user(app2.state.context, Role.ADMIN, "root2")
    response = as_user(app2, "root2").post(
        f"/api/v1/atms/{world.atms['T1000001']}/lock", json={"lock_id": "CX-0001"}
    )
    body = problem(response, 503, "master key is unusable")
    assert "bm90LWEta2V5" not in str(body)


def test_provisioning_is_for_admins_and_refuses_a_second_lock(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> None:
    add_user(context, Role.ADMIN, "root")
    root = as_user(app, "root")
    url = f"/api/v1/atms/{world.atms['T1000001']}/lock"
    created = root.post(url, json={"lock_id": "CX-0001", "dual_control": True})
    assert created.status_code == 201, created.text
    assert created.json()["chain_status"] == "ready"
    assert created.json()["policy"]["dual_control"] == ["bank", "flm", "open", "route"]
    problem(root.post(url, json={"lock_id": "CX-0002"}), 409, "already has a lock")
    problem(
        root.post(f"/api/v1/atms/{world.atms['T1000002']}/lock", json={"lock_id": "CX-0001"}),
        409,
        "already fitted",
    )
    bad = root.post(f"/api/v1/atms/{world.atms['T1000002']}/lock", json={"lock_id": "no spaces"})
    assert bad.status_code == 422
    record = root.post(url + "/provisioning-record", json={"reason": "load the simulator"})
    assert record.status_code == 200
    assert record.json()["format"] == "atm-lock-provisioning"
    assert "attachment" in record.headers["content-disposition"]
    exported = [e for e in log_lines(session) if e["kind"] == "provisioning-exported"]
    assert exported[0]["by"] == "root"
    assert exported[0]["reason"] == "load the simulator"
    assert record.json()["key"] not in json.dumps(log_lines(session))
