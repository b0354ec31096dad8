"""Cash planning through the API and the dispatcher's pages: roles, bad input, charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from atm_service.context import AppContext
from atm_service.models.users import Role
from tests.service.cash_world import import_history, report_cash
from tests.service.dispatch_world import World
from tests.support import FakeClock, add_user, login, make_settings

TODAY = date(2026, 11, 16)


@pytest.fixture
def settings():  # type: ignore[no-untyped-def]
    return make_settings(cash_routing_seconds=0.2, cash_paths=100)


@pytest.fixture
def seeded(session: Session, world: World, clock: FakeClock) -> World:
    for n, terminal in enumerate(("T1000001", "T1000002", "T1000003")):
        import_history(session, world.atms[terminal], today=TODAY, days=70, now=clock(), seed=n)
    report_cash(session, world.atms["T1000001"], (150, 0, 900, 1200), now=clock())
    report_cash(session, world.atms["T1000002"], (3000, 3000, 3000, 3000), now=clock())
    report_cash(session, world.atms["T1000003"], (1500, 1500, 1500, 1500), now=clock())
    return world


def _svg(text: str) -> ET.Element:
    assert "style=" not in text
    assert "<script" not in text
    return ET.fromstring(text)  # noqa: S314 - the service's own output


def test_dispatchers_plan_and_read_it_back(
    app: FastAPI, context: AppContext, seeded: World
) -> None:
    api = login(TestClient(app), add_user(context, Role.DISPATCHER))
    made = api.post("/api/v1/cash/plans", json={"region": "North"})
    assert made.status_code == 201, made.text
    plan = made.json()
    assert plan["totals"]["planned"] == 2  # T1000001 and T1000002; T1000004 has no history
    first = next(v for v in plan["visits"] if v["terminal_id"] == "T1000001")
    assert first["day"] == "2026-11-17"  # it is running out of 20s
    assert plan["atms"][0]["terminal_id"] == "T1000001"
    assert plan["routes"]
    listed = api.get("/api/v1/cash/plans").json()
    assert listed["total"] == 1
    assert api.get(f"/api/v1/cash/plans/{plan['id']}").json()["id"] == plan["id"]
    day = plan["routes"][0]["day"]
    chart = api.get(f"/api/v1/cash/plans/{plan['id']}/routes.svg", params={"day": day})
    assert chart.headers["content-type"].startswith("image/svg+xml")
    assert len(_svg(chart.text).findall("{http://www.w3.org/2000/svg}circle")) >= 1
    opened = api.post(f"/api/v1/cash/plans/{plan['id']}/dispatch")
    assert opened.status_code == 200
    task_ids = opened.json()["tasks"]
    assert task_ids
    task = api.get(f"/api/v1/tasks/{task_ids[0]}").json()
    assert task["kind"] == "replenishment"


def test_forecast_and_charts_in_the_api(app: FastAPI, context: AppContext, seeded: World) -> None:
    api = login(TestClient(app), add_user(context, Role.DISPATCHER))
    atm_id = seeded.atms["T1000001"]
    found = api.get(f"/api/v1/cash/atms/{atm_id}/forecast", params={"horizon": 7})
    assert found.status_code == 200, found.text
    body = found.json()
    assert [d["denomination"] for d in body["denominations"]] == [20, 50, 100]
    assert len(body["denominations"][0]["forecast"]) == 7
    assert {c["number"] for c in body["cassettes"]} == {1, 2, 3, 4}
    chart = api.get(f"/api/v1/cash/atms/{atm_id}/forecast.svg", params={"denomination": 20})
    assert chart.status_code == 200
    _svg(chart.text)
    levels = api.get(f"/api/v1/cash/atms/{atm_id}/levels.svg")
    assert levels.status_code == 200
    _svg(levels.text)
    history = api.get(f"/api/v1/cash/atms/{atm_id}/demand", params={"start": "2026-11-01"})
    assert len(history.json()) == 15 * 3


def test_bad_input_is_named(app: FastAPI, context: AppContext, seeded: World) -> None:
    api = login(TestClient(app), add_user(context, Role.DISPATCHER))
    atm_id = seeded.atms["T1000001"]
    bad = api.post("/api/v1/cash/plans", json={"horizon_days": 0})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "horizon_days"
    assert api.post("/api/v1/cash/plans", json={"region": "Atlantis"}).status_code == 422
    wrong = api.put(
        f"/api/v1/cash/atms/{atm_id}/demand",
        json={"days": [{"day": "2026-11-01", "denomination": 10, "notes": 5}]},
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "days.0.denomination"
    chart = api.get(f"/api/v1/cash/atms/{atm_id}/forecast.svg", params={"denomination": 5})
    assert chart.status_code == 422
    thin = api.get(f"/api/v1/cash/atms/{seeded.atms['T1000004']}/forecast")
    assert thin.status_code == 422
    assert "history" in thin.json()["detail"]
    assert api.get("/api/v1/cash/plans/999").status_code == 404
    assert api.get("/api/v1/cash/atms/999/forecast").status_code == 404
    ok = api.put(
        f"/api/v1/cash/atms/{atm_id}/demand",
        json={"days": [{"day": "2026-11-15", "denomination": 20, "notes": 5}]},
    )
    assert ok.json() == {"days": 1}


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.RECONCILER, Role.AUDITOR])
def test_other_roles_may_not(app: FastAPI, context: AppContext, role: Role) -> None:
    api = login(TestClient(app), add_user(context, role))
    assert api.get("/api/v1/cash/plans").status_code == 403
    assert api.post("/api/v1/cash/plans", json={}).status_code == 403
    client = TestClient(app)
    login(client, f"{role.value}-user")
    assert client.get("/cash").status_code == 403


def test_the_pages(app: FastAPI, context: AppContext, seeded: World) -> None:
    client = TestClient(app)
    login(client, add_user(context, Role.DISPATCHER))
    home = client.get("/cash")
    assert home.status_code == 200
    assert "No plan yet" in home.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert token
    made = client.post(
        "/cash/plans",
        data={
            "csrf_token": token.group(1),
            "region": "",
            "horizon_days": "10",
            "visit_cost": "150",
            "idle_cash_rate": "0.08",
            "cashout_target": "0.02",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    plan_page = client.get(made.headers["location"])
    assert plan_page.status_code == 200
    assert "<svg" in plan_page.text  # the route map, inline
    assert "T1000001" in plan_page.text
    home = client.get("/cash")
    assert "at risk" in home.text or "T1000001" in home.text
    dispatched = client.post(
        made.headers["location"] + "/dispatch",
        data={"csrf_token": token.group(1)},
        follow_redirects=True,
    )
    assert "replenishment task" in dispatched.text
    atm_page = client.get(f"/cash/atms/{seeded.atms['T1000001']}")
    assert atm_page.status_code == 200
    assert atm_page.text.count("<svg") == 4  # three denominations and the levels
    thin = client.get(f"/cash/atms/{seeded.atms['T1000004']}")
    assert thin.status_code == 200
    assert "demand history" in thin.text
    bad = client.post(
        "/cash/plans",
        data={"csrf_token": token.group(1), "horizon_days": "many"},
    )
    assert bad.status_code == 422
    assert "horizon days must be a number" in bad.text
