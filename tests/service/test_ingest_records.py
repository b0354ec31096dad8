"""Records (status, events, counters) and heartbeats: idempotent, and the latest state follows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from atm_service.context import AppContext
from atm_service.models.cash import CountersSnapshot
from atm_service.models.devices import DeviceEvent, DeviceStatus
from atm_service.models.users import Role
from tests.ingest_support import SAMPLE_EJ, Fleet, Signed, make_fleet
from tests.support import Api, FakeClock, add_user, login

STREAM = "0123456789abcdef0123456789abcdef"
STORED_AT = "2026-11-16T07:59:00+00:00"


def sample_cash_units() -> list[dict[str, Any]]:
    path = SAMPLE_EJ.parent / "counters" / "T1000002_20261116.json"
    units: list[dict[str, Any]] = json.loads(path.read_text())["snapshots"][0]["cash_units"]
    return units


STATUS = {
    "time": "2026-11-16T08:00:00",
    "in_service": True,
    "safe_door": "closed",
    "devices": {
        "dispenser": "ok",
        "card_reader": "ok",
        "receipt_printer": "ok",
        "journal_printer": "ok",
        "encrypting_pin_pad": "ok",
    },
}


def record(seq: int, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "stored_at": STORED_AT, "data": data}


def first_records() -> list[dict[str, Any]]:
    return [
        record(1, "status", STATUS),
        record(2, "cash_units", {"reason": "start_of_day", "cash_units": sample_cash_units()}),
        record(
            3,
            "event",
            {
                "kind": "cash_unit_threshold",
                "time": "2026-11-16T08:00:05",
                "unit": 2,
                "status": "low",
            },
        ),
    ]


@pytest.fixture
def fleet(context: AppContext) -> Fleet:
    return make_fleet(context, "T1000001", "T1000002")


@pytest.fixture
def device(client: TestClient, context: AppContext, fleet: Fleet) -> Signed:
    return Signed(client, context, fleet.keys["T1000001"])


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _counts(context: AppContext) -> tuple[int, int, int]:
    with context.database.session() as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(model)).one()
            for model in (DeviceStatus, CountersSnapshot, DeviceEvent)
        )


def test_records_are_stored_once_whatever_is_resent(device: Signed, context: AppContext) -> None:
    records = first_records()
    assert _ok(device.post_records("T1000001", STREAM, records)) == {
        "stream": STREAM,
        "acked_seq": 3,
        "stored": 3,
        "duplicates": 0,
    }
    assert _counts(context) == (1, 1, 1)
    again = _ok(device.post_records("T1000001", STREAM, records))
    assert (again["acked_seq"], again["stored"], again["duplicates"]) == (3, 0, 3)
    more = [*records[1:], record(4, "status", {**STATUS, "in_service": False})]
    overlapping = _ok(device.post_records("T1000001", STREAM, more))
    assert (overlapping["acked_seq"], overlapping["stored"], overlapping["duplicates"]) == (4, 1, 2)
    assert _counts(context) == (2, 1, 1)
    with context.database.session() as session:
        event = session.exec(select(DeviceEvent)).one()
        assert event.kind == "cash_unit_threshold"
        assert event.device_time == "2026-11-16T08:00:05"
        assert event.data["unit"] == 2
        assert event.stored_at == datetime(2026, 11, 16, 7, 59, tzinfo=UTC)
        snapshot = session.exec(select(CountersSnapshot)).one()
        assert snapshot.reason == "start_of_day"
        assert snapshot.cash_units == sample_cash_units()


def test_a_gap_in_the_sequence_is_409_with_the_next_expected(device: Signed) -> None:
    _ok(device.post_records("T1000001", STREAM, first_records()))
    response = device.post_records("T1000001", STREAM, [record(6, "status", STATUS)])
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "/problems/offset-mismatch"
    assert problem["expected_seq"] == 4
    assert problem["stream"] == STREAM


def test_a_new_stream_starts_at_one(device: Signed, context: AppContext) -> None:
    _ok(device.post_records("T1000001", STREAM, first_records()))
    fresh = "f" * 32
    late = device.post_records("T1000001", fresh, [record(2, "status", STATUS)])
    assert late.status_code == 409
    assert late.json()["expected_seq"] == 1
    assert _ok(device.post_records("T1000001", fresh, first_records()))["stored"] == 3
    assert _counts(context) == (2, 2, 2)


@pytest.mark.parametrize(
    ("records", "says"),
    [
        ([record(1, "status", STATUS), record(3, "status", STATUS)], "consecutive"),
        ([record(1, "cash_units", {"reason": "x", "cash_units": "many"})], "record 1: cash_units"),
        ([record(1, "cash_units", {"cash_units": []})], "needs a reason"),
        ([record(1, "event", {"time": "2026-11-16T08:00:00"})], "an event needs a kind"),
        ([record(1, "gossip", {})], "records.0.kind"),
        ([{**record(1, "status", STATUS), "stored_at": "2026-11-16T07:59:00"}], "UTC offset"),
        ([record(0, "status", STATUS)], "records.0.seq"),
    ],
)
def test_malformed_records_are_422_and_name_the_problem(
    device: Signed, context: AppContext, records: list[dict[str, Any]], says: str
) -> None:
    response = device.post_records("T1000001", STREAM, records)
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert _counts(context) == (0, 0, 0)
    assert device.post_records("T1000001", "NOT-HEX", first_records()).status_code == 422


@pytest.fixture
def reader(client: TestClient, context: AppContext) -> Api:
    return login(client, add_user(context, Role.DISPATCHER, "dina"))


def _state(reader: Api, atm_id: int) -> dict[str, Any]:
    response = reader.get(f"/api/v1/atms/{atm_id}/state")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def test_latest_state_follows_status_events_and_counters(
    reader: Api, fleet: Fleet, device: Signed
) -> None:
    atm_id = fleet.atm_ids["T1000001"]
    before = _state(reader, atm_id)
    assert before["last_seen_at"] is None
    assert before["online"] is False
    assert before["cassettes"] == []
    _ok(device.post_records("T1000001", STREAM, first_records()))
    events = [
        record(
            4,
            "event",
            {
                "kind": "hardware_error",
                "time": "2026-11-16T08:01:00",
                "device": "dispenser",
                "severity": "fatal",
                "code": "M-05",
                "description": "note jam in presenter",
            },
        ),
        record(5, "event", {"kind": "safe_door", "time": "2026-11-16T08:02:00", "state": "open"}),
        record(
            6,
            "event",
            {
                "kind": "service_mode",
                "time": "2026-11-16T08:02:01",
                "in_service": False,
                "reason": "supervisor",
            },
        ),
        record(
            7,
            "event",
            {
                "kind": "hardware_error",
                "time": "2026-11-16T08:02:30",
                "device": "receipt_printer",
                "severity": "warning",
                "code": "P-01",
                "description": "paper low",
            },
        ),
    ]
    _ok(device.post_records("T1000001", STREAM, events))
    state = _state(reader, atm_id)
    assert state["terminal_id"] == "T1000001"
    assert state["online"] is True
    assert state["last_seen_at"].startswith("2026-11-16T08:00:00")
    assert state["in_service"] is False
    assert state["safe_door"] == "open"
    assert state["devices"]["dispenser"] == "fault"
    assert state["devices"]["receipt_printer"] == "warning"
    assert state["devices"]["card_reader"] == "ok"
    assert state["status_time"] == "2026-11-16T08:00:00"
    assert state["last_event_kind"] == "hardware_error"
    assert state["counters_reason"] == "start_of_day"
    cassettes = {c["number"]: c for c in state["cassettes"]}
    units = {u["usNumber"]: u for u in sample_cash_units() if u["usType"] == 3}
    assert set(cassettes) == set(units)
    for number, unit in units.items():
        assert cassettes[number]["count"] == unit["ulCount"]
        assert cassettes[number]["denomination"] == unit["ulValues"]
    recovered = [
        record(
            8,
            "event",
            {"kind": "hardware_recovered", "time": "2026-11-16T08:05:00", "device": "dispenser"},
        ),
    ]
    _ok(device.post_records("T1000001", STREAM, recovered))
    assert _state(reader, atm_id)["devices"]["dispenser"] == "ok"


def _beat(**changes: Any) -> dict[str, Any]:
    beat = {
        "agent_version": "0.1.0",
        "stream": STREAM,
        "started_at": "2026-11-16T07:00:00+00:00",
        "sent_at": "2026-11-16T08:00:00+00:00",
        "link": "running",
        "backlog_bytes": 4096,
        "backlog_records": 2,
        "oldest_pending_at": "2026-11-16T07:58:30+00:00",
        "last_stored_at": "2026-11-16T07:59:59+00:00",
        "last_error": None,
    }
    beat.update(changes)
    return beat


def test_heartbeat_keeps_the_agent_state_and_answers_the_stream_position(
    reader: Api, context: AppContext, fleet: Fleet, device: Signed, clock: FakeClock
) -> None:
    path = "/api/v1/devices/T1000001/heartbeat"
    reply = _ok(device.request("POST", path, payload=_beat()))
    assert reply == {
        "terminal_id": "T1000001",
        "server_time": "2026-11-16T08:00:00Z",
        "acked_seq": 0,
        "commands": [],
    }
    _ok(device.post_records("T1000001", STREAM, first_records()))
    assert _ok(device.request("POST", path, payload=_beat()))["acked_seq"] == 3
    state = _state(reader, fleet.atm_ids["T1000001"])
    assert state["agent_version"] == "0.1.0"
    assert state["link_state"] == "running"
    assert (state["backlog_bytes"], state["backlog_records"]) == (4096, 2)
    assert state["ingest_lag_s"] == 90
    assert state["last_heartbeat_at"].startswith("2026-11-16T08:00:00")
    clock.advance(seconds=context.settings.device_offline_after_s + 1)
    assert _state(reader, fleet.atm_ids["T1000001"])["online"] is False
    caught_up = _beat(
        backlog_bytes=0,
        backlog_records=0,
        oldest_pending_at=None,
        last_error="journal 20261115: conflict",
    )
    _ok(device.request("POST", path, payload=caught_up))
    state = _state(reader, fleet.atm_ids["T1000001"])
    assert state["online"] is True
    assert state["ingest_lag_s"] == 0
    assert state["agent_error"] == "journal 20261115: conflict"
    bad = device.request("POST", path, payload=_beat(backlog_bytes=-1))
    assert bad.status_code == 422


def test_fleet_state_lists_every_atm_reported_or_not(
    client: TestClient, context: AppContext, fleet: Fleet, device: Signed
) -> None:
    _ok(device.post_records("T1000001", STREAM, first_records()))
    auditor = login(client, add_user(context, Role.AUDITOR))
    page = auditor.get("/api/v1/fleet/state").json()
    assert page["total"] == 2
    by_terminal = {item["terminal_id"]: item for item in page["items"]}
    assert by_terminal["T1000001"]["online"] is True
    assert by_terminal["T1000002"]["last_seen_at"] is None
    assert auditor.get("/api/v1/fleet/state", params={"region": "Nowhere"}).json()["total"] == 0
    assert auditor.get("/api/v1/atms/9999/state").status_code == 404


def test_fleet_page_shows_status_last_seen_and_cassettes(
    client: TestClient, context: AppContext, fleet: Fleet, device: Signed, clock: FakeClock
) -> None:
    records = [
        *first_records(),
        record(
            4,
            "event",
            {
                "kind": "hardware_error",
                "time": "2026-11-16T08:01:00",
                "device": "dispenser",
                "severity": "fatal",
            },
        ),
    ]
    _ok(device.post_records("T1000001", STREAM, records))
    clock.advance(minutes=2)
    login(client, add_user(context, Role.DISPATCHER))
    page = client.get("/fleet")
    assert page.status_code == 200
    html = page.text
    first, second = html.split("<h2>T1000002")
    assert "Reports in service · last seen 2 min ago" in first
    assert "dispenser fault" in first
    for unit in sample_cash_units():
        if unit["usType"] == 3:
            assert f"{unit['usNumber']}: {unit['ulCount']} × {unit['ulValues']} USD" in first
    assert "No report from the ATM" in second
    clock.advance(minutes=10)
    assert "offline" in client.get("/fleet").text.split("<h2>T1000002")[0]


def test_each_record_kind_lands_in_its_table(device: Signed, context: AppContext) -> None:
    _ok(device.post_records("T1000001", STREAM, first_records()))
    with context.database.session() as session:
        status = session.exec(select(DeviceStatus).where(col(DeviceStatus.seq) == 1)).one()
    assert status.in_service is True
    assert status.safe_door == "closed"
    assert status.data == STATUS
