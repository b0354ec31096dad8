"""Rules: device events, status and cash units become tasks (the entry points ingest calls)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from atm_service.db import Database
from atm_service.errors import InvalidInput, NotFound
from atm_service.models.condition import AtmCondition, AtmOutage
from atm_service.models.device_signals import DeviceName
from atm_service.models.notifications import Audience, DispatchNotification
from atm_service.models.tasks import ResolutionCode, Task, TaskEvent, TaskKind, TaskState
from atm_service.services import dispatch, sweep, tasks
from atm_service.services.dispatch_rules import (
    classify,
    on_cash_units,
    on_device_event,
    on_device_status,
)
from atm_service.services.task_states import Actor
from atm_service.services.tasks import Doer
from tests.service.dispatch_world import World, cash_units, fault

NOW = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # Monday 03:00 in New York


def _tasks(session: Session, atm_id: int) -> list[Task]:
    return list(session.exec(select(Task).where(col(Task.atm_id) == atm_id).order_by(col(Task.id))))


def _actions(session: Session, task: Task) -> list[str]:
    assert task.id is not None
    return [event.action for event in tasks.history(session, task_id=task.id)]


@pytest.mark.parametrize(
    ("device", "code", "description", "kind"),
    [
        (DeviceName.DISPENSER, "M-05", "note jam in presenter", TaskKind.FLM),
        (DeviceName.DISPENSER, "M-03", "pick failure cassette 2", TaskKind.FLM),
        (DeviceName.DISPENSER, "", "dispenser module failure", TaskKind.SLM),
        (DeviceName.CARD_READER, "C-02", "card jammed in reader", TaskKind.FLM),
        (DeviceName.CARD_READER, "", "motor broken", TaskKind.SLM),
        (DeviceName.RECEIPT_PRINTER, "P-01", "paper out", TaskKind.FLM),
        (DeviceName.ENCRYPTING_PIN_PAD, "E-01", "tamper", TaskKind.SLM),
        (DeviceName.JOURNAL_PRINTER, "", "", TaskKind.FLM),
    ],
)
def test_faults_are_first_or_second_line(
    device: DeviceName, code: str, description: str, kind: TaskKind
) -> None:
    assert classify(device, code, description) is kind


def test_a_fatal_dispenser_jam_becomes_an_assigned_first_line_task(
    session: Session, world: World
) -> None:
    atm = world.atms["T1000001"]
    task = on_device_event(session, atm_id=atm, event=fault(), now=NOW)
    assert task is not None
    assert task.kind is TaskKind.FLM
    assert task.priority == 1
    assert task.title == "Dispenser: note jam in presenter"
    # The fault's local time (New York, UTC-5) is when the clock started.
    assert task.opened_at == datetime(2026, 11, 16, 7, 55, tzinfo=UTC)
    assert task.response_due == task.opened_at + timedelta(minutes=120)
    assert task.restore_due == task.opened_at + timedelta(minutes=240)
    # Eli (first line, North, standing at this site) gets it at once.
    assert task.state is TaskState.ASSIGNED
    assert task.engineer_id == world.engineers["eli"]
    assert task.planned_start is not None
    assert task.planned_end is not None
    assert NOW < task.planned_start < NOW + timedelta(minutes=10)
    assert task.planned_end == task.planned_start + timedelta(minutes=45)
    assert _actions(session, task) == ["opened", "assign"]
    # The engineer's page and the board are told.
    updates = list(session.exec(select(DispatchNotification)))
    engineer_updates = [u for u in updates if u.audience is Audience.ENGINEER]
    assert [u.user_id for u in engineer_updates] == [world.users["eli"]]
    assert engineer_updates[0].payload["terminal_id"] == "T1000001"
    assert engineer_updates[0].payload["removed"] is False
    assert any(u.audience is Audience.BOARD for u in updates)


def test_a_repeated_event_updates_the_open_task(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    first = on_device_event(session, atm_id=atm, event=fault(), now=NOW)
    again = on_device_event(
        session, atm_id=atm, event=fault("2026-11-16T02:58:00"), now=NOW + timedelta(minutes=3)
    )
    other = on_device_event(
        session,
        atm_id=atm,
        event=fault("2026-11-16T02:59:00", device="card_reader", description="card jam"),
        now=NOW + timedelta(minutes=4),
    )
    assert first is not None
    assert again is not None
    assert other is not None
    assert first.id == again.id == other.id
    assert len(_tasks(session, atm)) == 1
    assert other.occurrences == 3
    assert other.title == "Card reader: card jam; Dispenser: note jam in presenter"
    assert other.last_signal_at == datetime(2026, 11, 16, 7, 59, tzinfo=UTC)
    assert _actions(session, other) == ["opened", "assign", "signal", "signal"]
    # The first fault time still runs the clock.
    assert other.opened_at == datetime(2026, 11, 16, 7, 55, tzinfo=UTC)


def test_one_open_task_per_kind_but_kinds_are_separate(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    on_device_event(session, atm_id=atm, event=fault(), now=NOW)
    on_cash_units(session, atm_id=atm, units=cash_units(3, 0, 0, 0), now=NOW)
    kinds = sorted(task.kind.value for task in _tasks(session, atm))
    assert kinds == ["flm", "replenishment"]


def test_after_a_task_is_finished_a_new_fault_opens_a_new_one(
    session: Session, world: World
) -> None:
    atm = world.atms["T1000001"]
    first = on_device_event(session, atm_id=atm, event=fault(), now=NOW)
    assert first is not None
    assert first.id is not None
    dispatcher = Doer(name="dana", actor=Actor.DISPATCHER)
    dispatch.cancel(session, task_id=first.id, by=dispatcher, reason="duplicate call", now=NOW)
    second = on_device_event(session, atm_id=atm, event=fault("2026-11-16T03:10:00"), now=NOW)
    assert second is not None
    assert second.id != first.id


def test_second_line_faults_go_to_a_second_line_engineer(session: Session, world: World) -> None:
    task = on_device_event(
        session,
        atm_id=world.atms["T1000001"],
        event=fault(code="", description="dispenser module failure"),
        now=NOW,
    )
    assert task is not None
    assert task.kind is TaskKind.SLM
    # Sam (second line, North) is off shift at 03:00; Erin (South) is on call.
    assert task.engineer_id == world.engineers["erin"]


def test_a_device_that_recovers_resolves_an_untouched_flm_task(
    session: Session, world: World
) -> None:
    atm = world.atms["T1000001"]
    task = on_device_event(session, atm_id=atm, event=fault(), now=NOW)
    assert task is not None
    later = NOW + timedelta(minutes=2)
    recovered = on_device_event(
        session,
        atm_id=atm,
        event={"kind": "hardware_recovered", "time": "2026-11-16T02:57:00", "device": "dispenser"},
        now=later,
    )
    assert recovered is not None
    assert recovered.id == task.id
    assert recovered.state is TaskState.RESOLVED
    assert recovered.resolution_code is ResolutionCode.DEVICE_RECOVERED
    assert recovered.recovered_at == datetime(2026, 11, 16, 7, 57, tzinfo=UTC)
    assert recovered.open_key is None
    assert _actions(session, recovered)[-2:] == ["recovered", "auto_resolve"]
    # Eli's page drops it.
    last = session.exec(
        select(DispatchNotification)
        .where(col(DispatchNotification.audience) == Audience.ENGINEER)
        .order_by(col(DispatchNotification.id).desc())
    ).first()
    assert last is not None
    assert last.payload["removed"] is True


def test_a_recovery_after_acceptance_is_only_noted(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    task = on_device_event(session, atm_id=atm, event=fault(), now=NOW)
    assert task is not None
    assert task.id is not None
    eli = session.get(tasks.Engineer, world.engineers["eli"])
    assert eli is not None
    user = session.get(tasks.User, world.users["eli"])
    assert user is not None
    dispatch.accept(session, task_id=task.id, engineer=eli, by=Doer.of(user), now=NOW)
    on_device_event(
        session,
        atm_id=atm,
        event={"kind": "hardware_recovered", "time": "2026-11-16T02:58:00", "device": "dispenser"},
        now=NOW,
    )
    session.refresh(task)
    assert task.state is TaskState.ACCEPTED
    assert task.recovered_at is not None
    assert task.facts["devices"]["dispenser"]["state"] == "recovered"


def test_second_line_tasks_are_not_resolved_by_a_recovery(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    task = on_device_event(
        session, atm_id=atm, event=fault(description="module failure", code=""), now=NOW
    )
    on_device_event(
        session,
        atm_id=atm,
        event={"kind": "hardware_recovered", "time": "2026-11-16T02:58:00", "device": "dispenser"},
        now=NOW,
    )
    assert task is not None
    session.refresh(task)
    assert task.state is TaskState.ASSIGNED
    assert task.recovered_at is not None


def test_a_partial_recovery_keeps_the_task_open(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    on_device_event(session, atm_id=atm, event=fault(), now=NOW)
    task = on_device_event(
        session,
        atm_id=atm,
        event=fault(device="card_reader", description="card jam", code="C-02"),
        now=NOW,
    )
    on_device_event(
        session,
        atm_id=atm,
        event={"kind": "hardware_recovered", "time": "2026-11-16T02:58:00", "device": "dispenser"},
        now=NOW,
    )
    assert task is not None
    session.refresh(task)
    assert task.state is TaskState.ASSIGNED
    assert task.title == "Card reader: card jam"


def test_low_cash_becomes_replenishment_and_empty_tightens_it(
    session: Session, world: World
) -> None:
    atm = world.atms["T1000001"]
    [low] = on_cash_units(session, atm_id=atm, units=cash_units(3, 0, 0, 0), now=NOW)
    assert low.kind is TaskKind.REPLENISHMENT
    assert low.priority == 3
    assert low.title == "Replenish: cassette 1 low"
    # Priority 3 gets twice the contract's time.
    assert low.response_due == NOW + timedelta(minutes=240)
    assert low.engineer_id == world.engineers["eli"]  # cash skill, North
    later = NOW + timedelta(minutes=30)
    [empty] = on_cash_units(session, atm_id=atm, units=cash_units(3, 4, 0, 0), now=later)
    assert empty.id == low.id
    assert empty.priority == 2
    assert empty.title == "Replenish: cassette 1 low; cassette 2 empty"
    assert empty.response_due == later + timedelta(minutes=120)
    # The same report again changes nothing.
    assert on_cash_units(session, atm_id=atm, units=cash_units(3, 4, 0, 0), now=later) == []
    session.refresh(empty)
    assert empty.occurrences == 2


def test_every_cassette_empty_is_priority_one_and_an_outage(session: Session, world: World) -> None:
    atm = world.atms["T1000002"]
    [task] = on_cash_units(session, atm_id=atm, units=cash_units(4, 4, 4, 4), now=NOW)
    assert task.priority == 1
    outage = session.exec(select(AtmOutage).where(col(AtmOutage.atm_id) == atm)).one()
    assert outage.cause == "out of cash"
    assert outage.ended_at is None


def test_bins_high_join_the_replenishment_and_full_is_first_line(
    session: Session, world: World
) -> None:
    atm = world.atms["T1000001"]
    [high] = on_cash_units(session, atm_id=atm, units=cash_units(0, 0, 0, 0, bins=(2, 0)), now=NOW)
    assert high.kind is TaskKind.REPLENISHMENT
    assert high.priority == 4
    assert high.title == "Replenish: reject bin high"
    [full] = on_cash_units(session, atm_id=atm, units=cash_units(0, 0, 0, 0, bins=(2, 1)), now=NOW)
    assert full.kind is TaskKind.FLM
    assert full.priority == 2
    assert full.title == "retract bin full"


def test_cassette_errors_are_first_line(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    task = on_device_event(
        session,
        atm_id=atm,
        event={"kind": "cash_unit_error", "time": "2026-11-16T02:50:00", "unit": 3, "error": "jam"},
        now=NOW,
    )
    assert task is not None
    assert task.kind is TaskKind.FLM
    assert task.title == "cassette 3 jammed"
    [missing] = on_cash_units(session, atm_id=atm, units=cash_units(0, 6, 0, 0), now=NOW)
    assert missing.id == task.id
    assert missing.title == "cassette 2 missing; cassette 3 jammed"


def test_a_unit_back_to_ok_is_noted(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    on_cash_units(session, atm_id=atm, units=cash_units(3, 3, 0, 0), now=NOW)
    task = on_device_event(
        session,
        atm_id=atm,
        event={
            "kind": "cash_unit_threshold",
            "time": "2026-11-16T03:01:00",
            "unit": 1,
            "status": "ok",
        },
        now=NOW,
    )
    assert task is not None
    assert task.title == "Replenish: cassette 2 low"
    assert task.facts["units"]["1"]["state"] == "ok"
    assert task.state is TaskState.ASSIGNED  # a replenishment is never auto-resolved


def test_status_changes_open_and_recover(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]

    def status(time: str, dispenser: str, in_service: bool = True) -> dict[str, object]:
        return {
            "time": time,
            "in_service": in_service,
            "safe_door": "closed",
            "devices": {"dispenser": dispenser, "card_reader": "ok", "receipt_printer": "warning"},
            "details": {"dispenser": "presenter jam"} if dispenser == "fault" else {},
        }

    assert (
        on_device_status(session, atm_id=atm, status=status("2026-11-16T02:00:00", "ok"), now=NOW)
        == []
    )
    [task] = on_device_status(
        session, atm_id=atm, status=status("2026-11-16T02:10:00", "fault"), now=NOW
    )
    assert task.kind is TaskKind.FLM
    assert task.title == "Dispenser: presenter jam"
    # The same snapshot again, and an older one, change nothing.
    assert (
        on_device_status(
            session, atm_id=atm, status=status("2026-11-16T02:11:00", "fault"), now=NOW
        )
        == []
    )
    assert (
        on_device_status(session, atm_id=atm, status=status("2026-11-16T01:00:00", "ok"), now=NOW)
        == []
    )
    [same] = on_device_status(
        session, atm_id=atm, status=status("2026-11-16T02:20:00", "ok"), now=NOW
    )
    assert same.id == task.id
    assert same.state is TaskState.RESOLVED
    condition = session.get(AtmCondition, atm)
    assert condition is not None
    assert condition.devices["dispenser"] == "ok"
    assert condition.devices["receipt_printer"] == "warning"
    # The dispenser was down from 02:10 to 02:20 local time.
    outage = session.exec(select(AtmOutage).where(col(AtmOutage.atm_id) == atm)).one()
    assert outage.started_at == datetime(2026, 11, 16, 7, 10, tzinfo=UTC)
    assert outage.ended_at == datetime(2026, 11, 16, 7, 20, tzinfo=UTC)
    assert outage.cause == "Dispenser in fault"


def test_out_of_service_is_an_outage_but_not_a_task(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    for time, in_service in (("2026-11-16T02:00:00", False), ("2026-11-16T02:30:00", True)):
        result = on_device_event(
            session,
            atm_id=atm,
            event={"kind": "service_mode", "time": time, "in_service": in_service, "reason": "x"},
            now=NOW,
        )
        assert result is None
    outage = session.exec(select(AtmOutage).where(col(AtmOutage.atm_id) == atm)).one()
    assert outage.ended_at is not None
    assert outage.ended_at - outage.started_at == timedelta(minutes=30)
    assert _tasks(session, atm) == []


def test_the_safe_door_is_noted_on_held_tasks(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    task = on_device_event(session, atm_id=atm, event=fault(), now=NOW)
    door = on_device_event(
        session,
        atm_id=atm,
        event={"kind": "safe_door", "time": "2026-11-16T02:58:00", "state": "open"},
        now=NOW,
    )
    assert task is not None
    assert door is not None
    assert door.id == task.id
    assert _actions(session, task)[-1] == "safe_door"


def test_device_clocks_ahead_of_ours_are_clamped(session: Session, world: World) -> None:
    task = on_device_event(
        session, atm_id=world.atms["T1000001"], event=fault("2026-11-16T09:00:00"), now=NOW
    )
    assert task is not None
    assert task.opened_at == NOW


def test_business_hours_contract_counts_only_service_time(session: Session, world: World) -> None:
    saturday = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)  # 10:00 in New York
    task = on_device_event(
        session,
        atm_id=world.atms["T1000003"],
        event=fault("2026-11-21T10:00:00"),
        now=saturday,
    )
    assert task is not None
    # 240 service minutes from Saturday: Monday 08:00 + 4 h = 12:00 New York = 17:00 UTC.
    assert task.response_due == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert task.restore_due == datetime(2026, 11, 23, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**fault(), "severity": "deadly"}, "event.severity"),
        ({**fault(), "device": "toaster"}, "event.device"),
        ({**fault(), "time": "yesterday"}, "event.time"),
        (
            {
                "kind": "cash_unit_threshold",
                "time": "2026-11-16T03:00:00",
                "unit": 0,
                "status": "low",
            },
            "event.unit",
        ),
        ({"kind": "safe_door", "time": "2026-11-16T03:00:00"}, "event.state"),
    ],
)
def test_bad_events_name_the_field(
    session: Session, world: World, event: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        on_device_event(session, atm_id=world.atms["T1000001"], event=event, now=NOW)
    assert raised.value.field == field


def test_bad_cash_units_and_status_name_the_field(session: Session, world: World) -> None:
    atm = world.atms["T1000001"]
    with pytest.raises(InvalidInput) as raised:
        on_cash_units(session, atm_id=atm, units=[{"usNumber": 1, "usType": 3}], now=NOW)
    assert raised.value.field == "units.0.usStatus"
    with pytest.raises(InvalidInput) as raised:
        on_device_status(
            session, atm_id=atm, status={"time": "2026-11-16T03:00:00", "devices": {}}, now=NOW
        )
    assert raised.value.field == "status.in_service"


def test_unknown_event_kinds_are_ignored_and_unknown_atms_refused(
    session: Session, world: World
) -> None:
    assert (
        on_device_event(
            session, atm_id=world.atms["T1000001"], event={"kind": "firmware_update"}, now=NOW
        )
        is None
    )
    with pytest.raises(NotFound):
        on_device_event(session, atm_id=999_999, event=fault(), now=NOW)


def test_waiting_tasks_are_assigned_when_someone_comes_on_shift(
    session: Session, world: World, database: Database
) -> None:
    # Only Sam does second line in the North, and only 08:00-17:00 on weekdays; Erin is
    # made inactive, so at 03:00 nobody can take it.
    erin = session.get(tasks.Engineer, world.engineers["erin"])
    assert erin is not None
    erin.active = False
    session.add(erin)
    session.commit()
    task = on_device_event(
        session,
        atm_id=world.atms["T1000001"],
        event=fault(code="", description="dispenser module failure"),
        now=NOW,
    )
    assert task is not None
    assert task.id is not None
    assert task.state is TaskState.NEW
    assert _actions(session, task) == ["opened", "waiting"]
    result = sweep.run(database.session, now=NOW + timedelta(minutes=30), speed_kmh=40)
    assert result.assigned == 0
    assert _actions(session, task).count("waiting") == 1  # said once
    morning = datetime(2026, 11, 16, 13, 0, tzinfo=UTC)  # 08:00 in New York
    result = sweep.run(database.session, now=morning, speed_kmh=40)
    assert result.assigned == 1
    session.refresh(task)
    assert task.engineer_id == world.engineers["sam"]


def test_deadlines_at_risk_are_escalated_once_per_level(
    session: Session, world: World, database: Database
) -> None:
    task = on_device_event(session, atm_id=world.atms["T1000004"], event=fault(), now=NOW)
    assert task is not None
    assert task.id is not None

    def sweep_at(moment: datetime) -> int:
        return sweep.run(database.session, now=moment, speed_kmh=40).escalated

    # Albany is ~210 km from Eli: he cannot be there by the response deadline.
    assert task.planned_start is not None
    assert task.planned_start > task.response_due
    assert sweep_at(NOW) == 1
    assert sweep_at(NOW + timedelta(minutes=1)) == 0
    assert sweep_at(task.response_due + timedelta(minutes=1)) == 1
    session.refresh(task)
    assert task.escalation_level == 2
    events = [e for e in tasks.history(session, task_id=task.id) if e.action == "escalated"]
    assert [e.data for e in events] == [{"level": 1}, {"level": 2}]
    assert "breached" in events[1].reason
    assert session.exec(select(TaskEvent).where(col(TaskEvent.action) == "escalated")).all()
