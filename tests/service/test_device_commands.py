"""Remote commands: a dispatcher asks, the heartbeat answer carries it, the agent reports back."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from atm_service.context import AppContext
from atm_service.models.users import Role
from tests.ingest_support import Fleet, Signed, make_fleet
from tests.support import Api, FakeClock, add_user, login

STREAM = "00112233445566778899aabbccddeeff"


@pytest.fixture
def fleet(context: AppContext) -> Fleet:
    return make_fleet(context, "T1000001", "T1000002")


@pytest.fixture
def device(client: TestClient, context: AppContext, fleet: Fleet) -> Signed:
    return Signed(client, context, fleet.keys["T1000001"])


@pytest.fixture
def dispatcher(client: TestClient, context: AppContext) -> Api:
    return login(client, add_user(context, Role.DISPATCHER))


def _beat(device: Signed, terminal_id: str = "T1000001") -> list[dict[str, Any]]:
    beat = {
        "agent_version": "0.1.0",
        "stream": STREAM,
        "started_at": "2026-11-16T07:00:00+00:00",
        "sent_at": "2026-11-16T08:00:00+00:00",
        "backlog_bytes": 0,
        "backlog_records": 0,
    }
    response = device.request("POST", f"/api/v1/devices/{terminal_id}/heartbeat", payload=beat)
    assert response.status_code == 200, response.text
    commands: list[dict[str, Any]] = response.json()["commands"]
    return commands


def _ask(dispatcher: Api, atm_id: int, command: str, **extra: Any) -> dict[str, Any]:
    response = dispatcher.post(
        f"/api/v1/atms/{atm_id}/commands", json={"command": command, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_command_travels_to_the_agent_and_its_result_back(
    dispatcher: Api, device: Signed, fleet: Fleet, clock: FakeClock
) -> None:
    atm_id = fleet.atm_ids["T1000001"]
    asked = _ask(dispatcher, atm_id, "go_out_of_service", reason="vandalism reported")
    assert asked["state"] == "pending"
    assert asked["terminal_id"] == "T1000001"
    assert asked["requested_by"] == "dispatcher-user"
    assert asked["reason"] == "vandalism reported"

    listed = _beat(device)
    assert [(c["id"], c["command"]) for c in listed] == [(asked["id"], "go_out_of_service")]
    clock.advance(seconds=30)
    assert [c["id"] for c in _beat(device)] == [asked["id"]]  # until a result comes
    state = dispatcher.get(f"/api/v1/atms/{atm_id}/commands/{asked['id']}").json()
    assert (state["state"], state["deliveries"]) == ("delivered", 2)
    assert state["delivered_at"] == "2026-11-16T08:00:00Z"

    path = f"/api/v1/devices/T1000001/commands/{asked['id']}/result"
    answer = device.request("POST", path, payload={"ok": True, "in_service": False})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "succeeded"
    assert answer.json()["result"] == {"ok": True, "in_service": False}
    assert _beat(device) == []
    # a repeated report (an answer lost on the way) changes nothing
    again = device.request("POST", path, payload={"ok": False, "error": "late"})
    assert again.json()["result"] == {"ok": True, "in_service": False}

    page = dispatcher.get(f"/api/v1/atms/{atm_id}/commands").json()
    assert page["total"] == 1
    assert page["items"][0]["state"] == "succeeded"


def test_a_failed_command_records_why(dispatcher: Api, device: Signed, fleet: Fleet) -> None:
    asked = _ask(dispatcher, fleet.atm_ids["T1000001"], "send_counters")
    _beat(device)
    path = f"/api/v1/devices/T1000001/commands/{asked['id']}/result"
    answer = device.request(
        "POST", path, payload={"ok": False, "error": "no session with the device"}
    )
    assert answer.json()["state"] == "failed"
    assert answer.json()["result"]["error"] == "no session with the device"


def test_commands_go_only_to_their_own_atm(
    dispatcher: Api, client: TestClient, context: AppContext, device: Signed, fleet: Fleet
) -> None:
    other = _ask(dispatcher, fleet.atm_ids["T1000002"], "send_counters")
    assert _beat(device) == []
    path = f"/api/v1/devices/T1000001/commands/{other['id']}/result"
    refused = device.request("POST", path, payload={"ok": True})
    assert refused.status_code == 404
    assert "T1000001 has no command" in refused.json()["detail"]
    neighbour = Signed(client, context, fleet.keys["T1000002"])
    assert [c["id"] for c in _beat(neighbour, "T1000002")] == [other["id"]]


def test_an_uncollected_command_expires(
    dispatcher: Api, device: Signed, fleet: Fleet, clock: FakeClock, context: AppContext
) -> None:
    atm_id = fleet.atm_ids["T1000001"]
    asked = _ask(dispatcher, atm_id, "go_in_service")
    clock.advance(seconds=context.settings.device_command_ttl_s + 1)
    assert _beat(device) == []
    assert dispatcher.get(f"/api/v1/atms/{atm_id}/commands/{asked['id']}").json()["state"] == (
        "expired"
    )
    # the device did act on it after all: the result is still recorded
    path = f"/api/v1/devices/T1000001/commands/{asked['id']}/result"
    assert device.request("POST", path, payload={"ok": True}).json()["state"] == "succeeded"


def test_bad_requests_name_what_is_wrong(dispatcher: Api, device: Signed, fleet: Fleet) -> None:
    atm_id = fleet.atm_ids["T1000001"]
    refused = dispatcher.post(f"/api/v1/atms/{atm_id}/commands", json={"command": "reboot"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "command"
    assert (
        dispatcher.post("/api/v1/atms/9999/commands", json={"command": "send_counters"}).status_code
        == 404
    )
    asked = _ask(dispatcher, atm_id, "send_counters")
    path = f"/api/v1/devices/T1000001/commands/{asked['id']}/result"
    no_outcome = device.request("POST", path, payload={"in_service": True})
    assert no_outcome.status_code == 422
    assert no_outcome.json()["errors"][0]["field"] == "ok"


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.RECONCILER, Role.AUDITOR])
def test_only_dispatchers_and_administrators_send_commands(
    role: Role, client: TestClient, context: AppContext, fleet: Fleet
) -> None:
    api = login(client, add_user(context, role))
    atm_id = fleet.atm_ids["T1000001"]
    assert (
        api.post(f"/api/v1/atms/{atm_id}/commands", json={"command": "send_counters"}).status_code
        == 403
    )
    assert api.get(f"/api/v1/atms/{atm_id}/commands").status_code == 403
