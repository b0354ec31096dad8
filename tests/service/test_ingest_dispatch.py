"""Device ingest feeds the dispatch rules: each stored record once, whatever is retried or lost."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from atm_service.context import AppContext
from atm_service.models.condition import AtmCondition
from atm_service.models.devices import RecordStream
from atm_service.models.tasks import Task, TaskEvent, TaskKind, TaskState
from atm_service.services import device_rules, ingest
from tests.ingest_support import Fleet, Signed, make_fleet
from tests.service.dispatch_world import World, add_engineer
from tests.service.test_ingest_records import STATUS, record
from tests.support import FakeClock

STREAM = "fedcba9876543210fedcba9876543210"
TERMINAL = "T1000001"


def jam(time: str = "2026-11-16T02:55:00") -> dict[str, Any]:
    return {
        "kind": "hardware_error",
        "time": time,
        "device": "dispenser",
        "severity": "fatal",
        "code": "M-05",
        "description": "note jam in presenter",
    }


@pytest.fixture
def fleet(context: AppContext) -> Fleet:
    fleet = make_fleet(context, TERMINAL)
    world = World(atms=dict(fleet.atm_ids), sites={}, engineers={}, users={})
    with context.database.session() as session:
        add_engineer(
            session,
            world,
            "eli",
            passwords=context.passwords,
            now=context.clock(),
            site="NORTH",
            skills="flm,cash",
            home_region="North",
        )
    return fleet


@pytest.fixture
def device(client: TestClient, context: AppContext, fleet: Fleet) -> Signed:
    return Signed(client, context, fleet.keys[TERMINAL])


def _tasks(context: AppContext, atm_id: int) -> list[Task]:
    with context.database.session() as session:
        return list(
            session.exec(select(Task).where(col(Task.atm_id) == atm_id).order_by(col(Task.id)))
        )


def _history(context: AppContext, task_id: int | None) -> list[str]:
    with context.database.session() as session:
        return [
            event.action
            for event in session.exec(
                select(TaskEvent)
                .where(col(TaskEvent.task_id) == task_id)
                .order_by(col(TaskEvent.id))
            )
        ]


def _stream(context: AppContext) -> RecordStream:
    with context.database.session() as session:
        found = session.exec(select(RecordStream).where(col(RecordStream.stream) == STREAM)).one()
        return found


def _post(device: Signed, records: list[dict[str, Any]]) -> dict[str, Any]:
    response = device.post_records(TERMINAL, STREAM, records)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_uploaded_fault_becomes_an_assigned_task_once(
    device: Signed, context: AppContext, fleet: Fleet
) -> None:
    atm_id = fleet.atm_ids[TERMINAL]
    batch = [record(1, "status", STATUS), record(2, "event", jam())]
    assert _post(device, batch)["stored"] == 2
    (task,) = _tasks(context, atm_id)
    assert task.kind is TaskKind.FLM
    assert task.priority == 1
    assert task.state is TaskState.ASSIGNED
    assert "note jam in presenter" in task.title
    history = _history(context, task.id)

    # The agent never got the answer and sends the same batch again: nothing happens twice.
    again = _post(device, batch)
    assert (again["stored"], again["duplicates"]) == (0, 2)
    (same,) = _tasks(context, atm_id)
    assert same.occurrences == 1
    assert _history(context, task.id) == history
    stream = _stream(context)
    assert (stream.rules_seq, stream.last_seq) == (2, 2)

    # A new report of the same fault folds into the task.
    _post(device, [*batch, record(3, "event", jam("2026-11-16T03:10:00"))])
    (folded,) = _tasks(context, atm_id)
    assert folded.occurrences == 2
    assert _history(context, task.id) == [*history, "signal"]


def test_status_and_counters_go_to_the_rules_in_order(
    device: Signed, context: AppContext, fleet: Fleet
) -> None:
    atm_id = fleet.atm_ids[TERMINAL]
    faulty = {
        **STATUS,
        "time": "2026-11-16T02:00:00",
        "devices": {**STATUS["devices"], "card_reader": "fault"},  # type: ignore[dict-item]
        "details": {"card_reader": "card jammed in reader"},
    }
    units = [
        {"usNumber": n, "usType": 3, "usStatus": 3 if n == 2 else 0, "cUnitID": f"CST0{n}"}
        for n in (1, 2, 3, 4)
    ]
    _post(
        device,
        [
            record(1, "status", faulty),
            record(2, "cash_units", {"reason": "query", "cash_units": units}),
        ],
    )
    kinds = sorted(task.kind.value for task in _tasks(context, atm_id))
    assert kinds == ["flm", "replenishment"]
    with context.database.session() as session:
        condition = session.get(AtmCondition, atm_id)
        assert condition is not None
        assert condition.devices["card_reader"] == "fault"
        assert [unit["usStatus"] for unit in condition.cash_units] == [0, 3, 0, 0]


def test_records_stored_before_a_crash_reach_the_rules_at_the_next_heartbeat(
    device: Signed, context: AppContext, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    atm_id = fleet.atm_ids[TERMINAL]
    # The service dies after the ingest committed and before the rules ran.
    with monkeypatch.context() as patched:
        patched.setattr(ingest.device_rules, "apply_pending", lambda *_a, **_k: None)
        patched.setattr(ingest.device_rules, "apply_stored", lambda *_a, **_k: None)
        _post(device, [record(1, "event", jam())])
    assert _tasks(context, atm_id) == []
    assert _stream(context).rules_seq == 0

    beat = {
        "agent_version": "0.1.0",
        "stream": STREAM,
        "started_at": "2026-11-16T07:00:00+00:00",
        "sent_at": "2026-11-16T08:00:00+00:00",
        "backlog_bytes": 0,
        "backlog_records": 0,
    }
    response = device.request("POST", f"/api/v1/devices/{TERMINAL}/heartbeat", payload=beat)
    assert response.status_code == 200, response.text
    (task,) = _tasks(context, atm_id)
    assert task.state is TaskState.ASSIGNED
    assert _stream(context).rules_seq == 1
    # and a second heartbeat, or the retried upload, applies nothing again
    device.request("POST", f"/api/v1/devices/{TERMINAL}/heartbeat", payload=beat)
    _post(device, [record(1, "event", jam())])
    (same,) = _tasks(context, atm_id)
    assert same.occurrences == 1


def test_the_next_batch_brings_the_rules_up_to_date_on_records_left_behind(
    device: Signed, context: AppContext, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    atm_id = fleet.atm_ids[TERMINAL]
    with monkeypatch.context() as patched:  # the service dies before the rules ran
        patched.setattr(ingest.device_rules, "apply_stored", lambda *_a, **_k: None)
        _post(device, [record(1, "event", jam())])
    assert _stream(context).rules_seq == 0
    # The next batch finds the rules behind: they read back record 1, then apply record 2.
    card = {**jam("2026-11-16T03:10:00"), "device": "card_reader", "code": "C-02"}
    with monkeypatch.context() as patched:
        stored: list[object] = []
        patched.setattr(
            ingest.device_rules,
            "apply_stored",
            lambda *_a, **_k: stored.append("called"),
        )
        _post(device, [record(2, "event", card)])
    assert stored == []  # the in-memory hand-over is only for a stream the rules kept up with
    (task,) = _tasks(context, atm_id)
    assert sorted(task.facts["devices"]) == ["card_reader", "dispenser"]
    assert task.occurrences == 2
    assert _stream(context).rules_seq == 2
    # Up to date again: the next record goes to the rules from memory, once.
    _post(device, [record(3, "event", {**card, "time": "2026-11-16T03:20:00"})])
    (same,) = _tasks(context, atm_id)
    assert same.occurrences == 3
    assert _stream(context).rules_seq == 3


def test_a_record_the_rules_refuse_is_passed_over_and_kept(
    device: Signed, context: AppContext, fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    atm_id = fleet.atm_ids[TERMINAL]
    bad = {"kind": "hardware_error", "time": "2026-11-16T02:50:00", "device": "toaster"}
    with caplog.at_level("WARNING", logger="atm_service.ingest.rules"):
        body = _post(device, [record(1, "event", bad), record(2, "event", jam())])
    assert body["stored"] == 2
    assert any("refused event record 1" in message for message in caplog.messages)
    assert [task.kind for task in _tasks(context, atm_id)] == [TaskKind.FLM]
    assert _stream(context).rules_seq == 2


def test_a_stream_already_claimed_is_left_to_its_claimant(
    device: Signed, context: AppContext, fleet: Fleet, clock: FakeClock
) -> None:
    atm_id = fleet.atm_ids[TERMINAL]
    with context.database.session() as session:
        session.add(
            RecordStream(
                atm_id=atm_id,
                stream=STREAM,
                last_seq=0,
                rules_seq=0,
                created_at=clock(),
                updated_at=clock(),
            )
        )
        session.commit()
    stream_id = _stream(context).id
    assert stream_id is not None
    with context.database.session() as session:
        assert device_rules._claim(session, stream_id, 0, 1)
        # a second claimant that read the same position finds it moved
        assert not device_rules._claim(session, stream_id, 0, 1)
        session.rollback()


def test_a_stream_the_rules_have_caught_up_with_costs_nothing(
    context: AppContext, fleet: Fleet, clock: FakeClock
) -> None:
    atm_id = fleet.atm_ids[TERMINAL]
    with context.database.session() as session:
        stream = RecordStream(
            atm_id=atm_id,
            stream=STREAM,
            last_seq=0,
            created_at=clock(),
            updated_at=clock(),
        )
        session.add(stream)
        session.commit()
        session.refresh(stream)
        assert stream.id is not None
        report = device_rules.apply_pending(
            session, atm_id=atm_id, stream_id=stream.id, now=clock()
        )
    assert (report.applied, report.skipped, report.deferred) == (0, 0, False)
